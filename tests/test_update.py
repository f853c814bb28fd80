"""Signed bundles, A/B install, health-gated commit, rollback, and a kill
at every step of an update followed by recover."""

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import time

import pytest
from Crypto.Signature import eddsa

from edgefw.deploy import bundle as DB
from firmware.linux import bundle as B
from firmware.linux import update as U
from tests.conftest import ROOT

PY = sys.executable
READY = ["{python}", "-c", "print('READY', flush=True)"]
CRASH = ["{python}", "-c", "import sys; print('boom'); sys.exit(1)"]
SILENT = ["{python}", "-c", "import time; time.sleep(30)"]
DIES_AFTER_READY = ["{python}", "-c", "import sys, time; print('READY', flush=True); time.sleep(0.3); sys.exit(3)"]
MIGRATE = """import os, sys
d = sys.argv[2]
os.makedirs(d, exist_ok=True)
with open(os.path.join(d, "FORMAT"), "w") as f:
    f.write("2" if sys.argv[1] == "up" else "1")
"""
FAST = dict(timeout=10.0, settle=0.2, max_restarts=1)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    d = tmp_path_factory.mktemp("kit")
    DB.keygen(str(d / "rel"))
    DB.keygen(str(d / "other"))
    keys = d / "keys"
    keys.mkdir()
    shutil.copy(d / "rel.pub", keys / "rel.pub")
    (d / "migrate.py").write_text(MIGRATE)

    def make(name, version, board="rpi4", health=READY, key="rel", **kw):
        out = str(d / name)
        if not os.path.exists(out):
            DB.build(board, str(d / (key + ".key")), out, version=version, health=health, **kw)
        return out

    k = {"dir": d, "keys": str(keys), "make": make}
    k["v1"] = make("v1.edgefw", "1.0.0")
    k["v2"] = make("v2.edgefw", "2.0.0")
    k["v2mig"] = make("v2mig.edgefw", "2.0.0", journal_format=2, migration=str(d / "migrate.py"))
    k["v3bad"] = make("v3bad.edgefw", "3.0.0", health=CRASH)
    return k


def new_root(tmp_path, kit, name="root"):
    r = tmp_path / name
    (r / "etc" / "edgefw" / "keys").mkdir(parents=True)
    shutil.copy(os.path.join(kit["keys"], "rel.pub"), r / "etc" / "edgefw" / "keys" / "rel.pub")
    (r / "etc" / "edgefw" / "board").write_text("rpi4\n")
    return str(r)


def quiet(_msg):
    pass


def tree(path):
    """{relative path: sha256 or link target} of everything under path."""
    out = {}
    for d, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, path)
            if os.path.islink(p):
                out[rel] = "-> " + os.readlink(p)
            elif os.path.isfile(p):
                out[rel] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def events(root):
    from firmware.store.journal import Journal

    j = Journal(os.path.join(root, "var", "lib", "edgefw", "journal"))
    try:
        return [r for _, r in j.records() if isinstance(r, dict) and r.get("k") == "update"]
    finally:
        j.close()


def running(root):
    lay = U.Layout(root)
    cur = U.current_slot(lay)
    return cur and U.slot_manifest(lay, cur)["version"]


# --- keys and bundles ---------------------------------------------------------
def test_keygen_private_key_is_0600_and_ids_differ(kit):
    d = kit["dir"]
    assert stat.S_IMODE(os.stat(d / "rel.key").st_mode) == 0o600
    assert B.trusted_keys(kit["keys"]).keys() != {B.key_id(DB.load_private(str(d / "other.key")).public_key())}


def test_bundle_is_one_signed_file_naming_every_payload_hash(kit):
    m = B.verify(kit["v1"], kit["keys"], board="rpi4")
    assert m["version"] == "1.0.0" and m["board"] == "rpi4" and m["min_python"] == B.MIN_PYTHON
    assert "app/firmware/store/journal.py" in m["files"] and "config/edgefw.json" in m["files"]
    src = hashlib.sha256(open(os.path.join(ROOT, "firmware", "store", "journal.py"), "rb").read()).hexdigest()
    assert m["files"]["app/firmware/store/journal.py"] == src


def _resign(src, out, key_path, edit_manifest=None, edit_members=None, sign=True):
    """Rewrite bundle ``src`` as ``out`` with changes, re-signed with key_path."""
    with tarfile.open(src) as tar:
        items = [(i, tar.extractfile(i).read() if i.isfile() else None) for i in tar.getmembers()]
    mans = dict((i.name, data) for i, data in items)
    m = json.loads(mans["manifest.json"])
    members = [(i, data) for i, data in items if i.name not in ("manifest.json", "manifest.sig")]
    if edit_members:
        members = edit_members(members, m)
    if edit_manifest:
        edit_manifest(m)
    mb = json.dumps(m).encode()
    key = DB.load_private(key_path)
    sig = {"key": B.key_id(key.public_key()), "sig": eddsa.new(key, "rfc8032").sign(mb).hex()}
    sb = mans["manifest.sig"] if not sign else json.dumps(sig).encode()
    with tarfile.open(out, "w") as tar:
        for name, data in (("manifest.json", mb), ("manifest.sig", sb)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out


def _add_member(name, kind="file", link=""):
    def edit(members, m):
        info = tarfile.TarInfo(name)
        if kind == "sym":
            info.type, info.linkname = tarfile.SYMTYPE, link
            members.append((info, None))
        else:
            data = b"x"
            info.size = 1
            members.append((info, data))
        rel = name[len("payload/"):] if name.startswith("payload/") else name
        m["files"][rel] = hashlib.sha256(b"x").hexdigest()
        return members

    return edit


def _tamper_file(members, m):
    out = []
    for info, data in members:
        if info.name == "payload/app/firmware/store/journal.py":
            data = data + b"\n# changed\n"
            info.size = len(data)
        out.append((info, data))
    return out


REFUSALS = {
    "bad-signature": lambda k, o: _resign(k["v2"], o, str(k["dir"] / "rel.key"), edit_manifest=lambda m: m.update(board="rpi4", created=1), sign=False),
    "unknown-key": lambda k, o: k["make"]("other.edgefw", "2.0.0", key="other"),
    "wrong-board": lambda k, o: k["make"]("rpi5.edgefw", "2.0.0", board="rpi5"),
    "hash-mismatch": lambda k, o: _resign(k["v2"], o, str(k["dir"] / "rel.key"), edit_members=_tamper_file),
    "downgrade": lambda k, o: k["make"]("v0.edgefw", "0.9.0"),
    "journal-format": lambda k, o: k["make"]("v2fmt.edgefw", "2.0.0", journal_format=2),
    "malformed": lambda k, o: (open(o, "wb").write(b"not a tar file at all" * 100), o)[1],
    "unsafe-path:abs": lambda k, o: _resign(k["v2"], o, str(k["dir"] / "rel.key"), edit_members=_add_member("/etc/passwd")),
    "unsafe-path:dotdot": lambda k, o: _resign(k["v2"], o, str(k["dir"] / "rel.key"), edit_members=_add_member("payload/app/../../x")),
    "unsafe-path:symlink": lambda k, o: _resign(k["v2"], o, str(k["dir"] / "rel.key"), edit_members=_add_member("payload/app/evil", "sym", "/etc/shadow")),
}


@pytest.mark.parametrize("why", sorted(REFUSALS))
def test_each_refusal_names_its_reason_and_changes_nothing(kit, tmp_path, why, capsys):
    root = new_root(tmp_path, kit)
    assert U.install(root, kit["v1"], progress=quiet, **FAST) == U.OK
    before = tree(root)
    path = REFUSALS[why](kit, str(tmp_path / "b.edgefw"))
    msgs = []
    assert U.install(root, path, progress=msgs.append, **FAST) == U.REFUSED
    reason = why.split(":")[0]
    assert any(x.startswith("refused: %s:" % reason) for x in msgs), msgs
    assert tree(root) == before
    with pytest.raises(B.BundleError) as e:
        B.verify(path, kit["keys"], board="rpi4", running="1.0.0", journal_format=1)
    assert e.value.reason == reason


def test_allow_downgrade_installs_an_older_version(kit, tmp_path):
    root = new_root(tmp_path, kit)
    assert U.install(root, kit["v2"], progress=quiet, **FAST) == U.OK
    assert U.install(root, kit["v1"], progress=quiet, **FAST) == U.REFUSED
    assert U.install(root, kit["v1"], allow_downgrade=True, progress=quiet, **FAST) == U.OK
    assert running(root) == "1.0.0"


def test_unknown_board_is_refused(kit, tmp_path):
    root = new_root(tmp_path, kit)
    os.unlink(os.path.join(root, "etc", "edgefw", "board"))
    msgs = []
    assert U.install(root, kit["v1"], progress=msgs.append, **FAST) == U.REFUSED
    assert any("unknown-board" in x for x in msgs)


# --- install, upgrade, rollback --------------------------------------------------
def test_install_upgrade_rollback_keep_journal_config_and_the_running_slot(kit, tmp_path):
    root = new_root(tmp_path, kit)
    lay = U.Layout(root)
    t0 = time.monotonic()
    assert U.install(root, kit["v1"], progress=quiet, **FAST) == U.OK
    t_install = time.monotonic() - t0
    assert os.readlink(lay.current) == "a" and running(root) == "1.0.0" and U.check_root(root) == []
    with open(lay.config, "a") as f:
        f.write(" ")  # the device's own edit
    cfg = open(lay.config).read()
    slot_a = tree(lay.slot("a"))
    t0 = time.monotonic()
    assert U.install(root, kit["v2"], progress=quiet, **FAST) == U.OK
    t_upgrade = time.monotonic() - t0
    assert os.readlink(lay.current) == "b" and running(root) == "2.0.0"
    assert tree(lay.slot("a")) == slot_a  # the running slot was not written
    slot_b = tree(lay.slot("b"))
    msgs = []
    t0 = time.monotonic()
    assert U.install(root, kit["v3bad"], progress=msgs.append, **FAST) == U.ROLLED_BACK
    t_rollback = time.monotonic() - t0
    assert os.readlink(lay.current) == "b" and running(root) == "2.0.0"
    assert tree(lay.slot("b")) == slot_b
    assert open(lay.config).read() == cfg
    st = U.load_status(lay)
    assert st["slots"]["a"]["state"] == "failed" and "crash loop" in st["slots"]["a"]["reason"]
    assert st["last"]["result"] == "rolled-back" and U.check_root(root) == []
    evs = events(root)
    assert [(e["result"], e["version"]) for e in evs] == [("committed", "1.0.0"), ("committed", "2.0.0"), ("rolled-back", "3.0.0")]
    assert "crash loop" in evs[-1]["reason"] and evs[-1]["from"] == "2.0.0"
    print("\ntimes: install %.2f s, upgrade %.2f s, rollback %.2f s" % (t_install, t_upgrade, t_rollback))


@pytest.mark.parametrize(
    "health,reason", [(SILENT, "no READY within"), (DIES_AFTER_READY, "after READY, within the settle time"), (CRASH, "crash loop: exited 2 times")]
)
def test_health_failures_roll_back(kit, tmp_path, health, reason):
    root = new_root(tmp_path, kit)
    assert U.install(root, kit["v1"], progress=quiet, **FAST) == U.OK
    bad = kit["make"]("bad-%d.edgefw" % abs(hash(tuple(health))), "2.0.0", health=health)
    kw = dict(FAST, timeout=1.0, settle=1.0)
    assert U.install(root, bad, progress=quiet, **kw) == U.ROLLED_BACK
    assert running(root) == "1.0.0" and U.check_root(root) == []
    assert reason in U.load_status(U.Layout(root))["last"]["reason"]


def test_the_default_health_check_runs_the_slots_firmware(kit, tmp_path):
    root = new_root(tmp_path, kit)
    real = kit["make"]("real.edgefw", "1.0.0", health=None)
    t0 = time.monotonic()
    assert U.install(root, real, progress=quiet, timeout=60.0, settle=0.5) == U.OK
    print("\ninstall with the default health check: %.2f s" % (time.monotonic() - t0))
    assert U.load_status(U.Layout(root))["last"]["result"] == "committed"


def test_journal_migration_runs_up_and_down_on_rollback(kit, tmp_path):
    root = new_root(tmp_path, kit)
    fmt = os.path.join(root, "var", "lib", "edgefw", "journal", "FORMAT")
    assert U.install(root, kit["v1"], progress=quiet, **FAST) == U.OK
    assert U.install(root, kit["v2mig"], progress=quiet, **FAST) == U.OK
    assert open(fmt).read() == "2"
    bad = kit["make"]("v3mig-bad.edgefw", "3.0.0", health=CRASH, journal_format=3, migration=str(kit["dir"] / "migrate.py"))
    assert U.install(root, bad, progress=quiet, **FAST) == U.ROLLED_BACK
    assert open(fmt).read() == "1"  # the test migration's "down"
    assert running(root) == "2.0.0"


# --- a kill at every step -----------------------------------------------------------
def _fault(args, timeout=60):
    """The installer killed at a step (tests/helpers/update_fault.py)."""
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([PY, str(ROOT / "tests" / "helpers" / "update_fault.py")] + args, cwd=str(ROOT), env=e, capture_output=True, text=True, timeout=timeout)


def _run(args, env=None, timeout=60):
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    e.update(env or {})
    return subprocess.run([PY, "-m", "firmware.linux", "update"] + args, cwd=str(ROOT), env=e, capture_output=True, text=True, timeout=timeout)


UPGRADE_STEPS = [s for s in U.STEPS if not s.startswith("roll")]
ROLLBACK_STEPS = ["service-started", "rollback-begun", "link-tmp", "rollback-switched", "rolled-back"]


@pytest.fixture(scope="module")
def v1_root(kit, tmp_path_factory):
    root = new_root(tmp_path_factory.mktemp("v1root"), kit)
    assert U.install(root, kit["v1"], progress=quiet, **FAST) == U.OK
    return root


def _kill_case(kit, v1_root, tmp_path, bundle, step):
    root = str(tmp_path / "r")
    shutil.copytree(v1_root, root, symlinks=True)
    args = ["install", "--rootfs", root, "--timeout", "10", "--settle", "0.2", "--max-restarts", "0", bundle]
    r = _fault(["--kill-at", step] + args)
    assert r.returncode == -9, (step, r.returncode, r.stdout[-500:], r.stderr[-500:])
    assert ("step %s" % step) in r.stdout
    # what boots now is one complete slot, whatever update.json says
    lay = U.Layout(root)
    cur = U.current_slot(lay)
    assert cur in ("a", "b")
    m = U.slot_manifest(lay, cur)
    for name, h in m["files"].items():
        assert B.sha256_file(os.path.join(lay.slot(cur), *name.split("/"))) == h
    r = _run(["recover", "--rootfs", root])
    assert r.returncode == 0, r.stderr
    assert U.check_root(root) == []
    return root


@pytest.mark.parametrize("step", UPGRADE_STEPS)
def test_kill_at_each_upgrade_step_then_recover_and_retry(kit, v1_root, tmp_path, step):
    root = _kill_case(kit, v1_root, tmp_path, kit["v2mig"], step)
    fmt = open(os.path.join(root, "var", "lib", "edgefw", "journal", "FORMAT")).read() if os.path.exists(os.path.join(root, "var", "lib", "edgefw", "journal", "FORMAT")) else "1"
    done = U.STEPS.index(step) >= U.STEPS.index("committed")
    assert running(root) == ("2.0.0" if done else "1.0.0")
    assert fmt == ("2" if done else "1")  # the journal's format matches what runs
    results = [e["result"] for e in events(root)]
    if step == "verified":  # killed before anything changed: nothing to record
        assert results == ["committed"]
    else:
        assert results[-1] == ("committed" if done else "abandoned" if U.STEPS.index(step) < U.STEPS.index("switching") else "rolled-back")
    if not done:
        r = _run(["install", "--rootfs", root, "--timeout", "10", "--settle", "0.2", kit["v2mig"]])
        assert r.returncode == 0, r.stdout[-800:]
        assert running(root) == "2.0.0" and U.check_root(root) == []


@pytest.mark.parametrize("step", ROLLBACK_STEPS)
def test_kill_at_each_rollback_step_then_recover(kit, v1_root, tmp_path, step):
    root = _kill_case(kit, v1_root, tmp_path, kit["v3bad"], step)
    assert running(root) == "1.0.0"
    st = U.load_status(U.Layout(root))
    assert st["slots"]["b"]["state"] == "failed"
    assert events(root)[-1]["result"] == "rolled-back"


def test_cli_status_check_and_verify(kit, v1_root):
    r = _run(["status", "--rootfs", v1_root, "--check"])
    assert r.returncode == 0 and json.loads(r.stdout)["current"] == "a"
    r = _run(["verify", "--keys", kit["keys"], "--board", "rpi5", kit["v1"]])
    assert r.returncode == 1 and "wrong-board" in r.stderr


def test_flash_py_is_the_entry_point_for_a_linux_board(tmp_path):
    """One command, the board decides: tools/flash.py builds a signed
    bundle for a Pi and installs it into a root filesystem."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    flash = [sys.executable, str(ROOT / "tools" / "flash.py"), "--board", "rpi4"]
    DB.keygen(str(tmp_path / "k"))
    bundle = tmp_path / "b.edgefw"
    p = subprocess.run(flash + ["--build-only", "--key", str(tmp_path / "k.key"), "--out", str(bundle)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and bundle.exists(), p.stderr
    root = tmp_path / "root"
    root.mkdir()
    p = subprocess.run(flash + ["--rootfs", str(root), "--add-key", str(tmp_path / "k.pub"), str(bundle)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (root / "opt" / "edgefw" / "current").is_symlink()
    # the same bundle signed by a key the device does not trust: refused
    DB.keygen(str(tmp_path / "stranger"))
    other = tmp_path / "o.edgefw"
    subprocess.run(flash + ["--build-only", "--key", str(tmp_path / "stranger.key"), "--out", str(other)], capture_output=True, text=True, timeout=300, check=True)
    p = subprocess.run(flash + ["--rootfs", str(root), str(other)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "key" in (p.stdout + p.stderr).lower(), p.stdout + p.stderr
