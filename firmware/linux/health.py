"""``health``: the default health check of an installed slot where the
service does not judge it (no systemd, or an install into another root;
on the device under systemd firmware.linux.update.service_health does):
run the firmware from this slot for a few cycles with a scratch journal
and print ``READY`` when it ran every cycle on time, opened and wrote its
journal and saw no trip.

    PYTHONPATH=/opt/edgefw/b/app python -m firmware.linux health [--cycles N]
"""

import json
import subprocess
import sys
import tempfile


def add_parser(p):
    p.add_argument("--cycles", type=int, default=50, metavar="N", help="cycles to run (default 50)")


def main(args):
    cycles = args.cycles
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "firmware.linux", "run", "--cycles", str(cycles), "--json", "--journal", tmp + "/journal"]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            print("not ready: the firmware did not finish %d cycles in 120 s" % cycles)
            return 1
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        print("not ready: exit %d, no JSON summary: %s" % (r.returncode, r.stderr.strip()[-300:]))
        return 1
    why = []
    if r.returncode:
        why.append("exit %d" % r.returncode)
    if out.get("cycles") != cycles or out.get("overruns"):
        why.append("%s of %d cycles, %s overruns" % (out.get("cycles"), cycles, out.get("overruns")))
    if out.get("trips"):
        why.append("trips: %s" % out["trips"])
    if not out.get("journal_records") or out.get("store", {}).get("lost_io"):
        why.append("journal not written")
    if why:
        print("not ready: " + "; ".join(why))
        return 1
    print("READY", flush=True)
    return 0
