"""The same plan run by Ansible: ``engine = "ansible"`` in the plan, or
``rollout PLAN --engine ansible``.

Each stage becomes one play over an inventory group of that stage's
devices, with ``serial`` the stage's size (one batch) and
``max_fail_percentage`` chosen so that Ansible's rule (failed / batch
*exceeds* the value) stops exactly where ``stages.exceeded`` would on that
batch alone; a play that stops ends the playbook, so later stages never
start. The role (deploy/ansible/roles/edgefw_update) installs with
edgefw's own installer and fails a device that is not committed, changed
within the healthy time, or unreachable (Ansible leaves unreachable hosts
out of max_fail_percentage; the role's health tasks make them failures,
or end them quietly under the "skip" policy).

Where Ansible differs from the in-process engine (printed by --dry-run):
a stage is judged on its own devices, not cumulatively; a batch in which
every host failed stops the play whatever the percentage; healthy is
checked at the start and end of the healthy time, not polled; and the
playbook does not roll back by itself: after a stop, the devices that
committed are re-installed with their previous bundle by a second run of
the role with ``--allow-downgrade``.
"""

import json
import os
import re
import shlex
import shutil
import subprocess

from edgefw.deploy import update_ssh
from edgefw.rollout import engine as EN
from edgefw.rollout import plan as P
from edgefw.rollout import stages as ST
from edgefw.rollout import state as S
from edgefw.util import ROOT

ROLES = os.path.join(str(ROOT), "deploy", "ansible", "roles")
# Ansible compares floats: a hair above the exact value keeps "equal"
# from stopping where float rounding would tip it, and is far below the
# step one more failed host makes (1 / batch)
NUDGE = 1e-9


def _hostvars(d):
    hv = {"ansible_host": d.address, "ansible_port": d.port, "ansible_user": d.user, "ansible_python_interpreter": d.python,
          "edgefw_root": d.root, "edgefw_python": d.python}
    if d.identity:
        hv["ansible_ssh_private_key_file"] = d.identity
    if d.options:
        hv["ansible_ssh_common_args"] = " ".join("-o %s" % shlex.quote(o) for o in d.options)
    return hv


def inventory(layout):
    """Ansible's YAML inventory (written as JSON, a subset of YAML): one
    group per stage."""
    groups = {}
    for k, (_, devs) in enumerate(layout):
        groups["stage_%d" % (k + 1)] = {"hosts": {d.id: _hostvars(d) for d in devs}}
    return {"all": {"children": groups}}


def playbook(plan, layout, version, installer, bundle=None, allow_downgrade=False, thresholds=True):
    plays = []
    for k, (stage, devs) in enumerate(layout):
        play = {
            "name": "edgefw %s, stage %d of %d" % (version, k + 1, len(layout)),
            "hosts": "stage_%d" % (k + 1),
            "gather_facts": False,
            "serial": len(devs),
            "roles": ["edgefw_update"],
            "vars": {
                "edgefw_bundle": bundle or plan.bundle, "edgefw_installer_tar": installer, "edgefw_version": version,
                "edgefw_allow_downgrade": allow_downgrade, "edgefw_healthy_s": stage.healthy_s,
                "edgefw_install_timeout": plan.install["timeout"], "edgefw_install_settle": plan.install["settle"],
                "edgefw_install_max_restarts": plan.install["max_restarts"],
                "edgefw_offline_policy": plan.offline, "edgefw_offline_wait_s": plan.offline_wait_s,
            },
        }
        if thresholds:
            play["max_fail_percentage"] = float(ST.ansible_percentage(stage.max_failed, len(devs), stage.min_sample)) + NUDGE
        plays.append(play)
    return plays


def describe(plan, devices):
    lay = P.layout(plan, devices)
    out = ["ansible: one play per stage"]
    for k, (stage, devs) in enumerate(lay):
        mfp = ST.ansible_percentage(stage.max_failed, len(devs), stage.min_sample)
        line = "  play %d: hosts stage_%d, serial %d, max_fail_percentage %s" % (k + 1, k + 1, len(devs), ST.pct(mfp))
        if mfp >= 100:
            line += " (Ansible stops a batch in which every host failed, where the plan would go on)"
        out.append(line)
    out.append("  each stage is judged on its own devices (the in-process engine counts the whole rollout so far)")
    return "\n".join(out)


FATAL = re.compile(r"^fatal: \[(\S+)\]: (FAILED|UNREACHABLE)! => (.*)$", re.M)
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)


def plan_forks(plays):
    return max([10] + [p["serial"] for p in plays])


def _run_playbook(workdir, name, inv, plays, out):
    with open(os.path.join(workdir, name + ".inventory.yml"), "w") as f:
        json.dump(inv, f, indent=1)
    with open(os.path.join(workdir, name + ".yml"), "w") as f:
        json.dump(plays, f, indent=1)
    # one result per line (the reasons are read back from it); pipelining
    # spares each task a file transfer
    env = dict(os.environ, ANSIBLE_ROLES_PATH=ROLES, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORKS=str(plan_forks(plays)), ANSIBLE_PIPELINING="True", ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_CALLBACK_FORMAT_PRETTY="False")
    exe = shutil.which("ansible-playbook") or os.path.join(os.path.dirname(os.path.realpath(__import__("sys").executable)), "ansible-playbook")
    argv = [exe, "-i", os.path.join(workdir, name + ".inventory.yml"), os.path.join(workdir, name + ".yml")]
    with open(os.path.join(workdir, name + ".log"), "w") as log:
        p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=workdir)
        log.write(p.stdout)
    fatal = {}
    for m in FATAL.finditer(p.stdout):
        try:
            res = json.loads(m.group(3))
            why = res.get("msg") or ""
            if res.get("stdout"):
                why = (why + ": " if why else "") + " | ".join(res["stdout"].strip().splitlines()[-2:])
        except ValueError:
            why = m.group(3)[:300]
        fatal[m.group(1)] = ("unreachable: " if m.group(2) == "UNREACHABLE" else "") + why
    hosts = {}
    for m in RECAP.finditer(p.stdout):
        unreachable, failed = int(m.group(4)), int(m.group(5))
        state = "failed" if failed else ("skipped" if unreachable else "healthy")
        reason = None
        if state != "healthy":
            reason = fatal.get(m.group(1), "see %s" % os.path.join(workdir, name + ".log"))
        hosts[m.group(1)] = (state, reason)
    return p.returncode, hosts, p.stdout


def run(plan, devices, state_dir=None, out=print):
    version, board, _ = EN.bundle_info(plan.bundle)
    if any(d.board != board for d in devices):
        out("refused: the bundle is for %s; targeted devices of another board: %s" % (board, ", ".join(d.id for d in devices if d.board != board)))
        return EN.REFUSED
    workdir = os.path.join(state_dir or S.default_dir(plan.path), "ansible")
    os.makedirs(workdir, exist_ok=True)
    installer = os.path.join(workdir, "installer.tar")
    with open(installer, "wb") as f:
        f.write(update_ssh.installer_tar())
    lay = P.layout(plan, devices)
    stage_of = {d.id: k for k, (_, ds) in enumerate(lay) for d in ds}
    rc, hosts, _ = _run_playbook(workdir, "rollout", inventory(lay), playbook(plan, lay, version, installer), out)
    for dev_id in sorted(hosts, key=lambda i: (stage_of.get(i, 0), i)):
        state, reason = hosts[dev_id]
        out("  stage %d %-16s %-8s %s" % (stage_of[dev_id] + 1, dev_id, state, reason or ""))
    reached = max((stage_of[h] for h in hosts), default=-1)
    untouched = [d.id for d in devices if d.id not in hosts]
    over = [k for k, (stage, ds) in enumerate(lay) if ST.exceeded(
        sum(1 for d in ds if hosts.get(d.id, ("",))[0] == "failed"), sum(1 for d in ds if hosts.get(d.id, ("",))[0] in ("failed", "healthy")),
        stage.max_failed, stage.min_sample)]
    if not untouched and not over:
        # ansible-playbook exits 2 when any host failed, also below the threshold
        out("done: %d devices, every stage within its threshold (ansible-playbook exit %d)" % (len(devices), rc))
        return EN.DONE
    out("STOPPED at stage %d (ansible-playbook exit %d); %d devices never started" % (reached + 1, rc, len(untouched)))
    committed = [d for d in devices if hosts.get(d.id, (None,))[0] == "healthy"]
    return _rollback(plan, committed, workdir, installer, out)


def _rollback(plan, devices, workdir, installer, out):
    """Re-install the plan's rollback bundle on the devices that
    committed. With Ansible the previous version is not read per device
    first, so exactly one rollback bundle must be named."""
    if not devices:
        return EN.STOPPED
    if len(plan.rollback_bundles) != 1:
        out("not rolled back: the Ansible engine needs exactly one rollback bundle in the plan (it has %d): %s" % (len(plan.rollback_bundles), " ".join(d.id for d in devices)))
        return EN.STOPPED
    bundle = plan.rollback_bundles[0]
    version, _, _ = EN.bundle_info(bundle)
    lay = [(plan.stages[0], devices)]
    plays = playbook(plan, lay, version, installer, bundle=bundle, allow_downgrade=True, thresholds=False)
    for play in plays:
        play["name"] = "edgefw rollback to %s" % version
        play["vars"]["edgefw_healthy_s"] = 0
    rc, hosts, _ = _run_playbook(workdir, "rollback", inventory(lay), plays, out)
    for d in devices:
        state, reason = hosts.get(d.id, ("failed", "not run"))
        out("  %-16s %s" % (d.id, "rolled-back to %s" % version if state == "healthy" else "rollback-failed: %s" % reason))
    return EN.STOPPED
