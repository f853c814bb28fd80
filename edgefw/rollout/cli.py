"""``edgefw fleet rollout PLAN [--dry-run]`` and ``edgefw fleet status
PLAN``: staged, health-gated updates of many Linux devices (docs/fleet.md).

Exit codes: 0 done (or a dry run), 1 refused (bad plan, another process
running), 3 stopped at a stage and rolled back.
"""

import json
import sys

from edgefw.rollout import plan as P
from edgefw.rollout import stages as ST
from edgefw.rollout import state as S


def add_parser(p):
    add_commands(p.add_subparsers(dest="fleet_cmd", required=True))


def add_commands(sub):
    """The rollout sub-commands, added to an existing sub-parser set (so a
    ``fleet`` command can hold them beside the registry's)."""
    r = sub.add_parser("rollout", help="roll a bundle out in stages, as the plan says")
    r.add_argument("plan", help="the plan file (TOML or JSON)")
    r.add_argument("--dry-run", action="store_true", help="print the stages and their devices; change nothing")
    r.add_argument("--state", metavar="DIR", help="the rollout's journal (default: PLAN without its extension + .rollout)")
    r.add_argument("--engine", choices=P.ENGINES, help="override the plan's engine")
    r.set_defaults(fn=cmd_rollout)
    s = sub.add_parser("status", help="where a rollout stands, from its journal")
    s.add_argument("plan")
    s.add_argument("--state", metavar="DIR")
    s.add_argument("--json", action="store_true", help="the whole journal document")
    s.set_defaults(fn=cmd_status)


def main(args):
    return args.fn(args)


def dry_run(plan, devices, out=print):
    lay = P.layout(plan, devices)
    out("plan %s: bundle %s, %d devices from %s, offline policy %s%s, engine %s" % (
        plan.path, plan.bundle, len(devices), plan.inventory, plan.offline,
        " (wait %.0f s)" % plan.offline_wait_s if plan.offline == "wait" else "", plan.engine))
    total = 0
    for k, (stage, devs) in enumerate(lay):
        total += len(devs)
        out("stage %d (%s): %d devices, %d of %d in all; deadline %.0f s, healthy %.0f s; stop when more than %s%% of the judged devices failed (minimum sample %d)" % (
            k + 1, stage.size, len(devs), total, len(devices), stage.deadline_s, stage.healthy_s, ST.pct(stage.max_failed), stage.min_sample))
        out("  " + " ".join(d.id for d in devs))
    if total < len(devices):
        out("the last stage stops at %d of %d devices" % (total, len(devices)))
    return lay


def cmd_rollout(a):
    try:
        plan = P.load(a.plan)
        if a.engine:
            plan.engine = a.engine
        devices = plan.devices()
    except (P.PlanError, ValueError) as e:
        print("refused: %s" % e, file=sys.stderr)
        return 1
    if a.dry_run:
        dry_run(plan, devices)
        if plan.engine == "ansible":
            from edgefw.rollout import ansible

            print(ansible.describe(plan, devices))
        return 0
    try:
        if plan.engine == "ansible":
            from edgefw.rollout import ansible

            return ansible.run(plan, devices, a.state)
        from edgefw.rollout import engine

        if plan.engine == "mqtt":
            from edgefw.rollout.mqtt import MqttRollout as Rollout
        else:
            Rollout = engine.Rollout
        r = Rollout(plan, a.state, out=lambda m: print(m, flush=True))
    except (P.PlanError, ST.StageError) as e:
        print("refused: %s" % e, file=sys.stderr)
        return 1
    return r.run()


def cmd_status(a):
    d = a.state or S.default_dir(a.plan)
    doc = S.read(d)
    if doc is None:
        print("no rollout has run from %s" % d, file=sys.stderr)
        return 1
    if a.json:
        print(json.dumps(doc, indent=1, sort_keys=True))
        return 0
    print("%s: %s, %s; %d stages judged" % (doc["version"], doc["status"], doc["stopped"] or "", doc["stages_done"]))
    for dev_id, r in sorted(doc["devices"].items(), key=lambda kv: (kv[1]["stage"], kv[0])):
        line = "  stage %d %-16s %-9s %s" % (r["stage"] + 1, dev_id, r["state"], r["reason"] or "")
        if r.get("rollback"):
            line += " | %s: %s" % (r["rollback"], r.get("rollback_reason"))
        print(line.rstrip())
    return 0
