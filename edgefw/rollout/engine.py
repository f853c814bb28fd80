"""The in-process engine: stages over SSH with edgefw's own installer
(``edgefw.deploy.update_ssh.ssh_install``), each device held to
committed-and-healthy (``health``), every transition journaled
(``state``), the whole rollout stopped and rolled back when a stage's
failure rate is exceeded (``stages.exceeded``).

Rollback re-installs, with ``--allow-downgrade``, the bundle of the
version each device ran before this rollout (the plan's
``rollback_bundles``, matched by version): the device's installer has no
command to go back to its ``previous`` slot once a slot is committed,
and a re-install goes through the same verify and health gate.
"""

import hashlib
import json
import os
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

from edgefw.deploy import update_ssh
from edgefw.rollout import health as H
from edgefw.rollout import plan as P
from edgefw.rollout import stages as ST
from edgefw.rollout import state as S
from firmware.linux import update as U

DONE, REFUSED, STOPPED = 0, 1, 3


def bundle_info(path):
    """(version, board, sha256) of a bundle, read without verifying: the
    device verifies; this only names what is rolled out."""
    try:
        with tarfile.open(path, "r:") as tar:
            if "manifest" in tar.getnames():
                # an ESP32 bundle (edgefw.fleet.ota)
                from edgefw.fleet.ota import read_manifest

                m = read_manifest(tar.extractfile("manifest").read())
            else:
                m = json.loads(tar.extractfile("manifest.json").read())
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return m["version"], m["board"], h.hexdigest()
    except (OSError, KeyError, ValueError, AttributeError, tarfile.TarError) as e:
        raise P.PlanError("%s is not a bundle: %s" % (path, e))


class Rollout:
    def __init__(self, plan, state_dir=None, out=print, sources=None, poll_s=None):
        self.plan = plan
        self.dir = state_dir or S.default_dir(plan.path)
        self.out = out
        self.sources = sources or [H.SSHStatus()]
        if sources is None and plan.ingest_db:
            from edgefw.fleet.ops import image_hash

            self.sources.append(H.IngestBoots(plan.ingest_db, image_hash(plan.bundle)))
        self.poll_s = poll_s
        self.version, self.board, self.sha = bundle_info(plan.bundle)
        self.rollback = {}
        for b in plan.rollback_bundles:
            v, board, _ = bundle_info(b)
            self.rollback[v] = b
        self.devices = plan.devices()
        wrong = [d.id for d in self.devices if d.board != self.board]
        if wrong:
            raise P.PlanError("%s: the bundle is for %s; targeted devices of another board: %s" % (plan.path, self.board, ", ".join(wrong)))
        if not self.devices:
            raise P.PlanError("%s: no device in %s matches the targets" % (plan.path, plan.inventory))
        self.layout = P.layout(plan, self.devices)
        self.st = S.State(self.dir)

    # --- journal -------------------------------------------------------------
    def _fresh(self):
        devs = {}
        for k, (_, ds) in enumerate(self.layout):
            for d in ds:
                devs[d.id] = {"stage": k, "state": "pending", "reason": None, "previous": None, "rollback": None}
        return {
            "plan": self.plan.path, "bundle": self.plan.bundle, "bundle_sha256": self.sha, "version": self.version,
            "status": "running", "stages_done": 0, "stopped": None, "devices": devs, "stage_times": {},
        }

    def log(self, dev, msg):
        with open(os.path.join(self.dir, "logs", dev.id + ".log"), "a") as f:
            f.write("%.3f %s\n" % (time.time(), msg))

    # --- one device ----------------------------------------------------------
    def _observe(self, dev):
        try:
            # the device's own status decides what to install and undo;
            # the other sources speak only while a device is held healthy
            return [self.sources[0].observe(dev)], None
        except H.Unreachable as e:
            return None, str(e)
        except (ValueError, update_ssh.SSHError) as e:
            return None, "status: %s" % e

    def _install(self, dev, bundle, allow_downgrade=False):
        msgs = []

        def progress(m):
            msgs.append(m)
            self.log(dev, m)

        code = update_ssh.ssh_install(
            dev.dest, bundle, port=dev.port, identity=dev.identity, options=dev.options, remote_python=dev.python,
            remote_root=dev.root, progress=progress, allow_downgrade=allow_downgrade, **self.plan.install,
        )
        why = next((m.strip()[len("device: "):] for m in reversed(msgs) if m.strip().startswith(("device: refused", "device: rolled back"))), None)
        failed = next((m[len("failed: "):] for m in msgs if m.startswith("failed: ")), None)
        return code, why or failed or (msgs[-1] if msgs else "no output")

    def _forward(self, dev, stage, until):
        """Bring one device to healthy or a final failure; (state, reason)."""
        rec = self.st.device(dev.id)
        wait = self.plan.offline == "wait"
        wait_until = min(until, time.monotonic() + self.plan.offline_wait_s) if wait else until
        open_until = None
        while True:
            obs, away = self._observe(dev)
            if obs is None:
                if away.startswith("status:"):
                    return "failed", away
                if self.plan.offline == "skip":
                    return "skipped", "unreachable: %s" % away
                if not wait or time.monotonic() >= wait_until:
                    return "failed", "unreachable%s: %s" % (" for %.0f s" % self.plan.offline_wait_s if wait else "", away)
                time.sleep(min(2.0, max(0.0, wait_until - time.monotonic())))
                continue
            verdict, _ = H.judge(obs[0], self.version)
            if verdict == "pending":
                # an update is open there: most likely ours, from a run that
                # was killed while its installer went on; let it finish
                # rather than start a second installer on the same root
                ins = self.plan.install
                open_until = open_until or time.monotonic() + ins["timeout"] * (ins["max_restarts"] + 1) + ins["settle"] + 30
                if time.monotonic() < min(until, open_until):
                    time.sleep(2.0)
                    continue
            if rec["state"] == "pending":
                self.st.set_device(dev.id, previous=obs[0]["version"])
            if verdict != "committed":
                if time.monotonic() >= until:
                    return "failed", "deadline: not installed before the stage deadline"
                self.st.set_device(dev.id, state="installing", attempted=True)
                code, why = self._install(dev, self.plan.bundle)
                if code == U.ROLLED_BACK:
                    return "failed", "the device rolled back: %s" % why
                if code != U.OK:
                    if why.startswith(("unreachable", "timeout")):
                        if self.plan.offline == "skip":
                            return "skipped", "unreachable during install: %s" % why
                        if wait and time.monotonic() < wait_until:
                            continue
                        return "failed", "unreachable during install: %s" % why
                    return "failed", "install refused: %s" % why
            self.st.set_device(dev.id, state="watching")
            result, why = H.watch(dev, self.version, stage.healthy_s, until, self.sources, wait_offline=wait, poll_s=self.poll_s)
            if result == "healthy":
                return "healthy", None
            if result == "unreachable" and self.plan.offline == "skip":
                return "skipped", "unreachable while held healthy: %s" % why
            return "failed", "%s: %s" % (result, why) if result != "failed" else why

    def _run_device(self, dev, stage, until):
        try:
            state, reason = self._forward(dev, stage, until)
        except Exception as e:  # one device's surprise must not stop the others' journaling
            state, reason = "failed", "engine error: %r" % (e,)
        self.st.set_device(dev.id, state=state, reason=reason)
        self.out("  %-16s %-8s %s" % (dev.id, state, reason or ""))
        return state

    # --- stages --------------------------------------------------------------
    def counts(self, upto):
        """(failed, judged) over the devices of stages 0..upto; skipped
        devices are outside both."""
        recs = [r for r in self.st.doc["devices"].values() if r["stage"] <= upto]
        failed = sum(1 for r in recs if r["state"] == "failed")
        judged = sum(1 for r in recs if r["state"] in ("failed", "healthy"))
        return failed, judged

    def run(self):
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        try:
            resumed = self.st.open(self._fresh())
        except S.StateError as e:
            self.out("refused: %s" % e)
            return REFUSED
        try:
            return self._run(resumed)
        finally:
            self.st.close()

    def _run(self, resumed):
        doc = self.st.doc
        if resumed:
            self.out("resuming the rollout of %s (%s) from %s" % (self.version, doc["status"], self.dir))
        if doc["status"] == "done":
            self.out("already done: %s" % self.summary())
            return DONE
        if doc["status"] in ("rolling-back", "rolled-back"):
            return self._rollback(doc["stopped"])
        pool = ThreadPoolExecutor(max_workers=self.plan.parallel)
        try:
            for k, (stage, devs) in enumerate(self.layout):
                if k < doc["stages_done"]:
                    continue
                todo = [d for d in devs if self.st.device(d.id)["state"] not in S.FINAL]
                t0 = time.monotonic()
                until = t0 + stage.deadline_s
                self.out("stage %d/%d: %d devices (%d to do), deadline %.0f s, healthy %.0f s" % (k + 1, len(self.layout), len(devs), len(todo), stage.deadline_s, stage.healthy_s))
                self.st.event("stage-start", stage=k, devices=[d.id for d in todo])
                list(pool.map(self._run_device, todo, [stage] * len(todo), [until] * len(todo)))
                failed, judged = self.counts(k)
                took = round(time.monotonic() - t0, 2)
                times = dict(doc["stage_times"])
                times[str(k)] = took
                self.out("stage %d: %d failed of %d judged (threshold %s%%, minimum sample %d), %.1f s" % (k + 1, failed, judged, ST.pct(stage.max_failed), stage.min_sample, took))
                if ST.exceeded(failed, judged, stage.max_failed, stage.min_sample):
                    why = "stage %d: %d failed of %d judged exceeds %s%% (minimum sample %d)" % (k + 1, failed, judged, ST.pct(stage.max_failed), stage.min_sample)
                    self.st.set(status="rolling-back", stopped=why, stage_times=times)
                    self.out("STOPPED: %s; rolling back the devices updated in this rollout" % why)
                    return self._rollback(why, pool)
                self.st.set(stages_done=k + 1, stage_times=times)
        finally:
            pool.shutdown(wait=True)
        self.st.set(status="done")
        self.out("done: %s" % self.summary())
        return DONE

    # --- fleet-level reaction ------------------------------------------------
    def _undo_needed(self, dev):
        """(None, the version to go back to) when ``dev`` runs this
        rollout's version and ran another before; else ((result, reason),
        None): nothing to undo, or no way to."""
        prev = self.st.device(dev.id)["previous"]
        obs, away = self._observe(dev)
        if obs is None:
            return ("rollback-failed", "unreachable: %s" % away), None
        now = obs[0]["version"]
        if now != self.version:
            return ("unchanged", "runs %s, not %s" % (now, self.version)), None
        if prev == self.version:
            return ("unchanged", "ran %s before this rollout" % prev), None
        if prev is None:
            return ("rollback-failed", "nothing ran before %s: no previous version to go back to" % self.version), None
        return None, prev

    def _undo(self, dev):
        done, prev = self._undo_needed(dev)
        if done is not None:
            return done
        bundle = self.rollback.get(prev)
        if bundle is None:
            return "rollback-failed", "no rollback bundle for its previous version %s (plan's rollback_bundles)" % prev
        code, why = self._install(dev, bundle, allow_downgrade=True)
        if code != U.OK:
            return "rollback-failed", "re-installing %s: exit %d: %s" % (prev, code, why)
        obs, away = self._observe(dev)
        if obs is None:
            return "rollback-failed", "unreachable after re-installing %s: %s" % (prev, away)
        verdict, why = H.judge(obs[0], prev)
        if verdict != "committed":
            return "rollback-failed", why
        return "rolled-back", "back to %s" % prev

    def _rollback(self, why, pool=None):
        # only devices an install was started on: one failed before that
        # (unreachable from the start) runs what it ran
        touched = [d for d in self.devices if self.st.device(d.id).get("attempted") and self.st.device(d.id)["rollback"] in (None, "rollback-failed")]
        self.out("rolling back %d devices (%s)" % (len(touched), why))

        def one(d):
            try:
                r, reason = self._undo(d)
            except Exception as e:  # as in _run_device: keep journaling the others
                r, reason = "rollback-failed", "engine error: %r" % (e,)
            self.st.set_device(d.id, rollback=r, rollback_reason=reason)
            self.out("  %-16s %-15s %s" % (d.id, r, reason))
            return r

        own = pool is None
        pool = pool or ThreadPoolExecutor(max_workers=self.plan.parallel)
        try:
            results = list(pool.map(one, touched))
        finally:
            if own:
                pool.shutdown(wait=True)
        self.st.set(status="rolled-back")
        left = sum(1 for r in results if r == "rollback-failed")
        self.out("stopped: %s; %s" % (why, "%d devices could not be rolled back" % left if left else "every updated device rolled back"))
        return STOPPED

    def summary(self):
        by = {}
        for r in self.st.doc["devices"].values():
            by[r["state"]] = by.get(r["state"], 0) + 1
        return ", ".join("%d %s" % (n, s) for s, n in sorted(by.items()))
