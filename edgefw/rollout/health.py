"""Healthy means *committed and unchanged for the minimum healthy time*,
never merely "installed".

A device is judged from its own A/B status (``python -m firmware.linux
update status``, run over SSH with the code of the slot that runs): the
running slot holds the rollout's version, that slot is ``committed``, the
root has no problems, and none of this changes during the healthy time:
same slot, same commit time, and, where the device runs the systemd
service, the same main PID and restart count. A device that rolls itself
back, restarts or switches slot in that time failed.

The status comes from *sources*, and ``watch`` requires every source to
agree. A source is any object with ``observe(device) -> dict`` raising
``Unreachable``, and optionally its own ``judge(obs, version)`` and
``fingerprint(obs)`` (else the SSH status's below are used):

- ``SSHStatus``: the device's own A/B status over SSH;
- ``IngestBoots``: what reached ingest (the plan's ``[health] ingest_db``):
  the device's latest boot event must name the rollout's image
  (``firmware.attest``, ingest's ``attestations`` table), no trip may
  follow it, and no new boot event may come during the healthy time (a
  restart).
"""

import json
import re
import shlex
import time

from edgefw.deploy.update_ssh import Remote, SSHError


class Unreachable(Exception):
    pass


def status_command(device):
    root = device.root.rstrip("/") or "/"
    app = shlex.quote((root if root != "/" else "") + "/opt/edgefw/current/app")
    py = shlex.quote(device.python)
    r = shlex.quote(root)
    # an installer still at work on this root (one whose ssh client went
    # away goes on until it next writes); "[f]" keeps the pattern from
    # matching the shell that runs this very command
    busy = shlex.quote("[f]irmware.linux update install --rootfs %s( |$)" % re.escape(root))
    return (
        "if [ -d %s ]; then PYTHONPATH=%s %s -m firmware.linux update status --rootfs %s; else echo '{}'; fi; "
        "echo '--- systemd'; if [ %s = / ] && command -v systemctl >/dev/null 2>&1; then "
        "systemctl show edgefw.service -p ActiveState,MainPID,NRestarts; fi; "
        "pgrep -f -- %s >/dev/null 2>&1 && echo INSTALLER-RUNNING; true"
    ) % (app, app, py, r, r, busy)


def parse_status(text):
    """The observation from the status command's output."""
    body, _, sysd = text.partition("--- systemd")
    try:
        st = json.loads(body) if body.strip() else {}
    except ValueError:
        raise ValueError("the device's update status is not JSON: %s" % body.strip()[-200:])
    cur = st.get("current")
    slot = (st.get("slots") or {}).get(cur) or {}
    unit = dict(ln.split("=", 1) for ln in sysd.strip().splitlines() if "=" in ln) or None
    installing = "INSTALLER-RUNNING" in sysd.split()
    last = st.get("last") or {}
    return {
        "slot": cur,
        "version": slot.get("version"),
        "state": slot.get("state"),
        "open": st.get("txn") is not None,
        "txn": st.get("txn"),
        "installing": installing,
        "last": last,
        "problems": st.get("problems") or [],
        "unit": unit,
    }


class SSHStatus:
    """The device's own status over SSH."""

    def __init__(self, timeout=30):
        self.timeout = timeout

    def observe(self, device):
        r = Remote(device.dest, device.port, device.identity, device.options, timeout=self.timeout)
        try:
            code, out, err = r.run(status_command(device))
        except SSHError as e:
            if e.reason in ("unreachable", "timeout"):
                raise Unreachable(str(e))
            raise
        if code:
            raise ValueError("update status exited %d: %s" % (code, (err or out).strip()[-200:]))
        return parse_status(out)


class IngestBoots:
    """What reached ingest from the device: its latest boot event's image
    hash and the trips recorded after it. ``db``: ingest's database (a
    SQLite path or a postgresql:// URL, read only); ``image``: the hash
    the rollout's bundle boots as (``edgefw.fleet.ops.image_hash``)."""

    LATEST = "SELECT seq, reported FROM attestations WHERE device = ? ORDER BY seq DESC LIMIT 1"
    TRIPS = "SELECT count(*) FROM records WHERE device = ? AND kind = 'trip' AND seq > ?"

    def __init__(self, db, image):
        self.db = db
        self.image = image

    def _query(self, device):
        if self.db.lower().startswith(("postgresql:", "postgres:")):
            import psycopg

            try:
                with psycopg.connect(self.db, connect_timeout=10) as c:
                    row = c.execute(self.LATEST.replace("?", "%s"), (device,)).fetchone()
                    trips = c.execute(self.TRIPS.replace("?", "%s"), (device, row[0])).fetchone()[0] if row else 0
            except psycopg.OperationalError as e:
                raise Unreachable("ingest's database: %s" % str(e).strip())
            return row, trips
        import sqlite3

        try:
            c = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=10)
            try:
                row = c.execute(self.LATEST, (device,)).fetchone()
                trips = c.execute(self.TRIPS, (device, row[0])).fetchone()[0] if row else 0
            finally:
                c.close()
        except sqlite3.OperationalError as e:
            raise Unreachable("ingest's database %s: %s" % (self.db, e))
        return row, trips

    def observe(self, device):
        row, trips = self._query(device.id)
        return {"boot_seq": row[0] if row else None, "fw": row[1] if row else None, "trips": trips}

    def judge(self, obs, version):
        if obs["fw"] is None:
            return "pending", "no boot event of the device has reached ingest"
        if obs["fw"] != self.image:
            return "pending", "its last boot event at ingest names image %s, not %s" % (obs["fw"][:16], self.image[:16])
        if obs["trips"]:
            return "failed", "%d trips reached ingest after it booted %s" % (obs["trips"], version)
        return "committed", None

    def fingerprint(self, obs):
        return (obs["boot_seq"],)


def judge(obs, version):
    """("committed", None) when ``obs`` shows ``version`` committed in the
    running slot and nothing wrong; ("pending", why) while an installer
    runs there; ("failed", why) otherwise."""
    if obs.get("installing"):
        return "pending", "an installer is running on the device"
    if obs["open"]:
        return "failed", "an interrupted update is open on the device (phase %s)" % ((obs.get("txn") or {}).get("phase"))
    if obs["version"] == version and obs["state"] == "committed" and not obs["problems"]:
        unit = obs["unit"]
        if unit and unit.get("ActiveState") != "active":
            return "failed", "committed, but the service is %s" % unit.get("ActiveState")
        return "committed", None
    last = obs["last"]
    if last.get("version") == version and last.get("result") in ("rolled-back", "abandoned"):
        return "failed", "the device %s %s: %s" % (last["result"], version, last.get("reason"))
    if obs["problems"]:
        return "failed", "the device's root is inconsistent: %s" % "; ".join(obs["problems"])
    return "failed", "the device runs %s (%s), not %s committed" % (obs["version"], obs["state"], version)


def fingerprint(obs):
    """What must not change while a device is held to be healthy."""
    unit = obs["unit"] or {}
    return (obs["slot"], obs["version"], obs["last"].get("t"), unit.get("MainPID"), unit.get("NRestarts"))


def watch(device, version, healthy_s, until, sources, wait_offline=False, poll_s=None, clock=time.monotonic, sleep=time.sleep):
    """Hold ``device`` to ``version``, committed and unchanged, for
    ``healthy_s`` seconds by every source, before the monotonic time
    ``until``. Returns ("healthy" | "failed" | "unreachable" | "deadline",
    reason). With ``wait_offline`` an unreachable device is asked again
    until ``until``."""
    poll_s = poll_s if poll_s is not None else max(0.5, min(5.0, healthy_s / 4 or 0.5))
    since = None
    prints = None
    away = None
    while True:
        try:
            obs = [s.observe(device) for s in sources]
        except Unreachable as e:
            if not wait_offline:
                return "unreachable", str(e)
            away = away or str(e)
            if clock() >= until:
                return "unreachable", "still unreachable at the stage deadline: %s" % away
            sleep(poll_s)
            continue
        except (ValueError, SSHError) as e:
            return "failed", str(e)
        away = None
        verdicts = [getattr(s, "judge", judge)(o, version) for s, o in zip(sources, obs, strict=True)]
        bad = [why for v, why in verdicts if v == "failed"]
        if bad:
            return "failed", bad[0]
        if all(v == "committed" for v, _ in verdicts):
            fp = [getattr(s, "fingerprint", fingerprint)(o) for s, o in zip(sources, obs, strict=True)]
            if prints is None:
                prints, since = fp, clock()
            elif fp != prints:
                return "failed", "changed while being held healthy (slot, commit time, service PID or restarts): %s -> %s" % (prints, fp)
            if clock() - since >= healthy_s:
                return "healthy", None
        if clock() >= until:
            if since is not None:
                return "deadline", "committed for only %.0f s of the %.0f s required by the stage deadline" % (clock() - since, healthy_s)
            return "deadline", "not committed by the stage deadline"
        sleep(min(poll_s, max(0.0, until - clock())))
