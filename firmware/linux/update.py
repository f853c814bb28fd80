"""A/B application updates on a Linux board (device side; CPython only,
never part of a device image).

    from firmware.linux import update
    code = update.install("/", "edgefw-rpi4.edgefw", board="rpi4")
    update.recover("/")                # at boot, or after a power cut
    problems = update.check_root("/")  # [] when the root is consistent

Layout under a root (``/`` on the device, any directory with ``--rootfs``)::

    opt/edgefw/a, opt/edgefw/b   the slots: app/, config/, model/, manifest.json
    opt/edgefw/current           symlink to "a" or "b": what runs
    var/lib/edgefw/update.json   slot states, the open transaction, the last result
    var/lib/edgefw/journal       the journal (firmware.store.journal); never replaced
    etc/edgefw/                  edgefw.json, board, keys/*.pub; never replaced

Every step is written to update.json (atomically: write, sync, rename)
before it is taken, so a kill at any point leaves either the old slot or
the new committed slot running, after ``recover``. The running slot is
never written; ``current`` is switched by renaming a new symlink over it.
A new slot is committed only when its health check prints READY within
``timeout`` and does not fail for ``settle`` seconds; otherwise the
previous slot is restored and the failure recorded, in update.json and as
an ``update`` event in the journal.

Exit codes: 0 committed (or nothing to do), 1 refused before any change,
2 bad usage, 3 rolled back.
"""

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

from firmware.linux import bundle as B

OK, REFUSED, USAGE, ROLLED_BACK = 0, 1, 2, 3
SLOTS = ("a", "b")
# every named step, in order; each is reported through ``progress`` as
# "step NAME" as it is reached (the power-cut tests cut there)
STEPS = (
    "verified",
    "txn-begun",
    "slot-cleared",
    "extracting",
    "slot-written",
    "migrating",
    "migrated",
    "switching",
    "link-tmp",
    "switched",
    "service-started",
    "ready",
    "committed",
    "event-logged",
    "rollback-begun",
    "rollback-switched",
    "rolled-back",
)


class Layout:
    def __init__(self, root):
        self.root = os.path.abspath(root)
        j = lambda *p: os.path.join(self.root, *p)  # noqa: E731
        self.slots = j("opt", "edgefw")
        self.current = j("opt", "edgefw", "current")
        self.state = j("var", "lib", "edgefw")
        self.status = j("var", "lib", "edgefw", "update.json")
        self.journal = j("var", "lib", "edgefw", "journal")
        self.etc = j("etc", "edgefw")
        self.keys = j("etc", "edgefw", "keys")
        self.board = j("etc", "edgefw", "board")
        self.config = j("etc", "edgefw", "edgefw.json")

    def slot(self, name):
        return os.path.join(self.slots, name)


def _progress(msg):
    print(msg, flush=True)


def step(name, progress=_progress):
    progress("step %s" % name)


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path))


def load_status(lay):
    try:
        with open(lay.status) as f:
            st = json.load(f)
    except FileNotFoundError:
        st = {}
    st.setdefault("slots", {s: {"state": "empty"} for s in SLOTS})
    st.setdefault("current", None)
    st.setdefault("txn", None)
    return st


def save_status(lay, st):
    os.makedirs(lay.state, exist_ok=True)
    _write_atomic(lay.status, json.dumps(st, indent=1, sort_keys=True).encode())


def current_slot(lay):
    """The slot ``current`` points to, or None."""
    try:
        t = os.readlink(lay.current)
    except OSError:
        return None
    return t if t in SLOTS else None


def slot_manifest(lay, slot):
    try:
        with open(os.path.join(lay.slot(slot), "manifest.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _point(lay, slot, progress):
    """Switch ``current`` to ``slot`` (None: remove it) atomically."""
    tmp = lay.current + ".new"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    if slot is None:
        if os.path.lexists(lay.current):
            os.unlink(lay.current)
        _fsync_dir(lay.slots)
        return
    os.symlink(slot, tmp)
    step("link-tmp", progress)
    os.replace(tmp, lay.current)
    _fsync_dir(lay.slots)


def log_event(lay, st):
    """Append the pending ``update`` event to the journal, then forget it."""
    ev = st.get("pending_event")
    if not ev:
        return
    from firmware.store.journal import PRIO_EVENT, Journal

    j = Journal(lay.journal, durability="fsync")
    try:
        j.append(ev, PRIO_EVENT)
        j.flush()
    finally:
        j.close()
    st["pending_event"] = None
    save_status(lay, st)


def _event(result, st, txn, reason=None):
    ev = {"k": "update", "t": int(time.time()), "result": result, "slot": txn["target"], "version": txn["version"]}
    if txn.get("from_version"):
        ev["from"] = txn["from_version"]
    if reason:
        ev["reason"] = reason
    return ev


def _migrate(lay, txn, direction):
    script = os.path.join(lay.slot(txn["target"]), "migration", "migrate.py")
    os.makedirs(lay.journal, exist_ok=True)
    try:
        r = subprocess.run([sys.executable, script, direction, lay.journal], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "journal migration %s failed: %s" % (direction, e)
    if r.returncode:
        return "journal migration %s exited %d: %s" % (direction, r.returncode, (r.stderr or r.stdout).strip()[-300:])
    return None


def _finish_rollback(lay, st, reason, progress, result="rolled-back"):
    txn = st["txn"]
    if txn.get("phase") != "rolling-back":
        txn["phase"] = "rolling-back"
        save_status(lay, st)
    step("rollback-begun", progress)
    back = txn.get("from")
    _point(lay, back, progress)
    step("rollback-switched", progress)
    if txn.get("migrated"):
        err = _migrate(lay, txn, "down")
        if err:
            reason += "; " + err
    st["slots"][txn["target"]] = {"state": "failed", "version": txn["version"], "reason": reason}
    if back:
        st["slots"][back]["state"] = "committed"
    st["current"] = back
    st["last"] = {"result": result, "version": txn["version"], "reason": reason, "t": int(time.time())}
    st["pending_event"] = _event(result, st, txn, reason)
    st["txn"] = None
    save_status(lay, st)
    step("rolled-back", progress)
    log_event(lay, st)
    progress("rolled back to %s: %s" % (back and "slot %s (%s)" % (back, txn.get("from_version")) or "nothing installed", reason))


def _restart_previous(lay, slot, board, progress):
    """After a rollback on the device: the previous slot's unit, running
    again; with no previous slot the service is stopped."""
    if not slot:
        _systemctl("stop", UNIT)
        return
    err = use_slot_unit(lay, slot, board, progress)
    rc, out = _systemctl("restart", UNIT, timeout=120)
    if err or rc:
        progress("the previous slot's service did not start again: %s" % (err or out))
    else:
        progress("service running slot %s again" % slot)


def recover(root, progress=_progress):
    """Bring ``root`` to a consistent state after an interrupted update:
    an update that had not switched is abandoned, one that had switched
    but not committed is rolled back. Safe to run at every boot."""
    lay = Layout(root)
    if os.path.lexists(lay.current + ".new"):
        os.unlink(lay.current + ".new")
    st = load_status(lay)
    txn = st["txn"]
    if txn is None:
        link = current_slot(lay)
        if st["current"] != link:
            st["current"] = link
            save_status(lay, st)
        log_event(lay, st)
        return OK
    phase = txn["phase"]
    progress("recovering an update interrupted in phase %s" % phase)
    if phase in ("writing", "installed", "migrating", "migrated"):
        if txn.get("migrated") or phase == "migrating":
            txn["migrated"] = True
        if txn.get("migrated"):
            _migrate(lay, txn, "down")
        shutil.rmtree(lay.slot(txn["target"]), ignore_errors=True)
        _fsync_dir(lay.slots)
        st["slots"][txn["target"]] = {"state": "empty"}
        st["current"] = current_slot(lay)
        st["last"] = {"result": "abandoned", "version": txn["version"], "reason": "interrupted in phase %s" % phase, "t": int(time.time())}
        st["pending_event"] = _event("abandoned", st, txn, "interrupted in phase %s" % phase)
        st["txn"] = None
        save_status(lay, st)
        log_event(lay, st)
        return OK
    # switching, trying, rolling-back: never committed, so back to the old slot
    _finish_rollback(lay, st, "interrupted in phase %s" % phase, progress)
    return OK


def device_board(lay, board=None):
    if board:
        return board
    try:
        with open(lay.board) as f:
            b = f.read().strip()
            if b:
                return b
    except OSError:
        pass
    if os.environ.get("EDGEFW_BOARD"):
        return os.environ["EDGEFW_BOARD"]
    if lay.root == "/":
        try:
            with open("/proc/device-tree/compatible", "rb") as f:
                import boards

                return boards.match_compatible(f.read().decode("latin-1"))
        except (OSError, ImportError, AttributeError):
            return None
    return None


def _free_bytes(path):
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return shutil.disk_usage(path).free


def run_health(lay, slot, argv, timeout, settle, max_restarts, progress=_progress):
    """Run the slot's health check; (True, None) when it printed READY in
    time and did not fail for ``settle`` s, else (False, reason)."""
    d = lay.slot(slot)
    argv = [a.replace("{python}", sys.executable).replace("{slot}", d) for a in argv]
    path = os.path.join(d, "app")
    if lay.root != "/":
        # installing into another root (an image being prepared): the
        # check runs here, on a machine that is not the board, so after the
        # slot's own code it may find the simulated board this installer
        # came with, as the bundle no longer carries it
        path += os.pathsep + os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=path, EDGEFW_SLOT=d, EDGEFW_ROOT=lay.root, EDGEFW_JOURNAL=lay.journal)
    deadline = time.monotonic() + timeout
    starts = 0
    while True:
        starts += 1
        try:
            p = subprocess.Popen(argv, cwd=os.path.join(d, "app"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            return False, "health check could not start: %s" % e
        step("service-started", progress)
        ok, reason, tail = _watch(p, deadline, settle, progress)
        if ok or reason:
            return ok, reason
        if starts > max_restarts:
            return False, "crash loop: exited %d times before READY (last exit %s: %s)" % (starts, p.returncode, tail)
        progress("health check exited %s before READY; restart %d of %d" % (p.returncode, starts, max_restarts))


UNIT = "edgefw.service"


def under_systemd(lay):
    """The device itself, booted with systemd: the new slot is started and
    judged as the service (``service_health``), not as a command."""
    return lay.root == "/" and os.path.isdir("/run/systemd/system") and shutil.which("systemctl") is not None


def _systemctl(*args, timeout=60):
    try:
        p = subprocess.run(["systemctl"] + list(args), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, "systemctl %s: no answer in %d s" % (" ".join(args), timeout)
    return p.returncode, (p.stdout + p.stderr).strip()


def _unit_state():
    _, out = _systemctl("show", UNIT, "-p", "ActiveState,SubState,NRestarts,MainPID")
    return dict(ln.split("=", 1) for ln in out.splitlines() if "=" in ln)


def _last_log(n=3):
    """The service's own last lines (its output, not systemd's about it)."""
    try:
        out = subprocess.run(
            ["journalctl", "_SYSTEMD_UNIT=" + UNIT, "-n", str(n), "-o", "cat", "--no-pager"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return " | ".join(ln.strip() for ln in out.splitlines() if ln.strip())


def use_slot_unit(lay, slot, board, progress=_progress):
    """(Re)write the service's unit with ``slot``'s own renderer, so the
    unit always matches the code it starts; enabled, not started."""
    d = lay.slot(slot)
    env = dict(os.environ, PYTHONPATH=os.path.join(d, "app"))
    # a slot from before the board's runtime moved to firmware/linux (0.1
    # and earlier) renders its unit with its own tools.cli
    if os.path.exists(os.path.join(d, "app", "firmware", "linux", "__main__.py")) or not os.path.exists(os.path.join(d, "app", "tools", "cli.py")):
        cmd = [sys.executable, "-m", "firmware.linux", "service", "install", "--board", board, "--slots", "--no-start"]
    else:
        cmd = [sys.executable, "-m", "tools.cli", "service", "install", "--board", board, "--slots", "--no-start"]
    try:
        p = subprocess.run(cmd, cwd=os.path.join(d, "app"), env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "the unit of slot %s: edgefw service install did not finish in 120 s" % slot
    if p.returncode:
        return "the unit of slot %s: %s" % (slot, (p.stdout + p.stderr).strip()[-300:])
    return None


def service_health(lay, slot, board, timeout, settle, max_restarts, progress=_progress):
    """(True, None) when the service, started from ``slot``, reached READY
    (systemd's Type=notify start job succeeded: the self-test passed and a
    cycle ran) within ``timeout`` and then stayed up, same process, for
    ``settle`` s; else (False, reason)."""
    err = use_slot_unit(lay, slot, board, progress)
    if err:
        return False, err
    step("service-started", progress)
    rc, out = _systemctl("restart", UNIT, timeout=max(5, int(timeout)))
    if rc:
        return False, "the service did not reach READY (%s): %s" % (out.splitlines()[0] if out else "systemctl exit %d" % rc, _last_log())
    step("ready", progress)
    first = _unit_state()
    end = time.monotonic() + settle
    while time.monotonic() < end:
        time.sleep(0.5)
        now = _unit_state()
        if now.get("ActiveState") != "active" or now.get("MainPID") != first.get("MainPID") or now.get("NRestarts") != first.get("NRestarts"):
            return False, "the service failed within the settle time (%s, %s restarts): %s" % (now.get("SubState"), now.get("NRestarts"), _last_log())
    return True, None


def _stop(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)


def _watch(p, deadline, settle, progress):
    """(ok, reason, tail): ok after READY + settle; reason on a failure that
    ends the check; (False, None, tail) when it exited before READY."""
    buf = b""
    lines = []
    ready_at = None
    fd = p.stdout.fileno()
    try:
        while True:
            now = time.monotonic()
            if ready_at is not None and now >= ready_at + settle:
                return True, None, ""
            if ready_at is None and now >= deadline:
                return False, "no READY within the timeout (last output: %s)" % (" | ".join(lines[-3:]) or "none"), ""
            until = ready_at + settle if ready_at is not None else deadline
            r, _, _ = select.select([fd], [], [], max(0.0, min(0.2, until - now)))
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    code = p.wait(timeout=10)
                    if ready_at is not None:
                        if code == 0:
                            return True, None, ""
                        return False, "exited %d %.1f s after READY, within the settle time" % (code, time.monotonic() - ready_at), ""
                    return False, None, " | ".join(lines[-3:]) or "no output"
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    text = line.decode("utf-8", "replace").strip()
                    lines.append(text)
                    if text == "READY" and ready_at is None:
                        ready_at = time.monotonic()
                        step("ready", progress)
    finally:
        _stop(p)
        p.stdout.close()


def install(root, path, board=None, allow_downgrade=False, timeout=60.0, settle=5.0, max_restarts=2, add_keys=(), progress=_progress, skip_health=False):
    """Verify ``path`` and install it into the free slot under ``root``;
    return an exit code (module docstring). ``skip_health``: commit
    without running the slot (an SD-card image prepared elsewhere)."""
    lay = Layout(root)
    recover(root, progress)
    for k in add_keys:
        os.makedirs(lay.keys, exist_ok=True)
        shutil.copyfile(k, os.path.join(lay.keys, os.path.basename(k)))
    st = load_status(lay)
    cur = current_slot(lay)
    cm = slot_manifest(lay, cur) if cur else None
    try:
        board = device_board(lay, board)
        if not board:
            raise B.BundleError("unknown-board", "this device's board is unknown: give --board or write it to %s" % lay.board)
        m = B.read_manifest(path, lay.keys)
        B.check_target(m, board, cm and cm["version"], allow_downgrade, cm and cm["journal_format"])
        B.check_payload(path, m)
        need = B.payload_bytes(path, m) * 2 + (1 << 20)
        free = _free_bytes(lay.slots)
        if free < need:
            raise B.BundleError("no-space", "%d kB free under %s, the update needs %d kB" % (free >> 10, lay.slots, need >> 10))
    except B.BundleError as e:
        progress("refused: %s" % e)
        return REFUSED
    step("verified", progress)
    target = "b" if cur == "a" else "a"
    txn = {"phase": "writing", "target": target, "from": cur, "version": m["version"], "from_version": cm and cm["version"]}
    st["txn"] = txn
    st["slots"][target] = {"state": "writing", "version": m["version"]}
    save_status(lay, st)
    step("txn-begun", progress)
    d = lay.slot(target)
    shutil.rmtree(d, ignore_errors=True)
    step("slot-cleared", progress)
    os.makedirs(d)
    B.extract(path, m, d, hook=lambda n: n == 0 and step("extracting", progress))
    import tarfile

    with tarfile.open(path, "r:") as tar:
        for name in ("manifest.sig", "manifest.json"):
            data = tar.extractfile(name).read()
            _write_atomic(os.path.join(d, name), data)
    _fsync_dir(d)
    txn["phase"] = "installed"
    st["slots"][target] = {"state": "installed", "version": m["version"]}
    save_status(lay, st)
    step("slot-written", progress)
    if not os.path.exists(lay.config):
        os.makedirs(lay.etc, exist_ok=True)
        shutil.copyfile(os.path.join(d, "config", "edgefw.json"), lay.config)
    if cm and m["journal_format"] != cm["journal_format"]:
        txn["phase"] = "migrating"
        save_status(lay, st)
        step("migrating", progress)
        txn["migrated"] = True
        err = _migrate(lay, txn, "up")
        if err:
            _finish_rollback(lay, st, err, progress)
            return ROLLED_BACK
        txn["phase"] = "migrated"
        save_status(lay, st)
        step("migrated", progress)
    txn["phase"] = "switching"
    save_status(lay, st)
    step("switching", progress)
    _point(lay, target, progress)
    step("switched", progress)
    txn["phase"] = "trying"
    st["slots"][target]["state"] = "trying"
    st["current"] = target
    save_status(lay, st)
    t0 = time.monotonic()
    if skip_health:
        ok, reason = True, None
    elif under_systemd(lay):
        ok, reason = service_health(lay, target, board, timeout, settle, max_restarts, progress)
    else:
        ok, reason = run_health(lay, target, m["health"], timeout, settle, max_restarts, progress)
    if not ok:
        _finish_rollback(lay, st, reason, progress)
        if under_systemd(lay):
            _restart_previous(lay, cur, board, progress)
        return ROLLED_BACK
    st["slots"][target] = {"state": "committed", "version": m["version"]}
    if cur:
        st["slots"][cur]["state"] = "previous"
    st["last"] = {"result": "committed", "version": m["version"], "health_s": round(time.monotonic() - t0, 2), "t": int(time.time())}
    st["pending_event"] = _event("committed", st, txn)
    st["txn"] = None
    save_status(lay, st)
    step("committed", progress)
    log_event(lay, st)
    step("event-logged", progress)
    progress("committed %s in slot %s" % (m["version"], target))
    return OK


def check_root(root):
    """What is inconsistent under ``root``: [] when nothing is."""
    lay = Layout(root)
    bad = []
    st = load_status(lay)
    if st["txn"] is not None:
        bad.append("an update is open (phase %s): run recover" % st["txn"]["phase"])
    if os.path.lexists(lay.current + ".new"):
        bad.append("a stray current.new link")
    cur = current_slot(lay)
    if os.path.lexists(lay.current) and cur is None:
        bad.append("current points to neither slot")
    if st["current"] != cur:
        bad.append("update.json says slot %s runs, current points to %s" % (st["current"], cur))
    if cur:
        m = slot_manifest(lay, cur)
        if m is None:
            bad.append("slot %s has no manifest" % cur)
        else:
            for name, h in m["files"].items():
                p = os.path.join(lay.slot(cur), *name.split("/"))
                if not os.path.isfile(p) or B.sha256_file(p) != h:
                    bad.append("slot %s: %s missing or changed" % (cur, name))
                    break
        if st["slots"].get(cur, {}).get("state") not in ("committed",):
            bad.append("the running slot %s is %s, not committed" % (cur, st["slots"].get(cur, {}).get("state")))
    return bad
