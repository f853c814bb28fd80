"""Install over SSH against an sshd this test starts on 127.0.0.1 with
throwaway keys (Debian's openssh-server), and into a raw SD-card image."""

import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import uuid

import pytest

from edgefw.deploy import bundle as DB
from edgefw.deploy import image
from edgefw.deploy import update_ssh as S
from firmware.linux import update as U
from tests.conftest import ROOT
from tests.test_update import FAST, READY, new_root, quiet, running, tree

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def kit2(tmp_path_factory):
    d = tmp_path_factory.mktemp("sshkit")
    DB.keygen(str(d / "rel"))
    keys = d / "keys"
    keys.mkdir()
    shutil.copy(d / "rel.pub", keys)
    k = {"dir": d, "keys": str(keys)}
    for v in ("1.0.0", "2.0.0"):
        k[v] = str(d / ("%s.edgefw" % v))
        DB.build("rpi4", str(d / "rel.key"), k[v], version=v, health=READY)
    return k


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if SSHD is None:
        pytest.skip("no sshd (Debian package openssh-server)")
    if os.geteuid() != 0:
        pytest.skip("sshd needs root here")
    d = tmp_path_factory.mktemp("sshd")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60)  # noqa: E731
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host"))
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client"))
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "stranger"))
    shutil.copy(d / "client.pub", d / "authorized_keys")
    os.makedirs("/run/sshd", exist_ok=True)
    port = _free_port()
    (d / "sshd_config").write_text(
        "ListenAddress 127.0.0.1\nPort %d\nHostKey %s\nAuthorizedKeysFile %s\nPidFile %s\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\nAcceptEnv BASH_ENV\n"
        % (port, d / "host", d / "authorized_keys", d / "sshd.pid")
    )
    p = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if p.poll() is not None:
                pytest.skip("sshd did not start: %s" % p.stderr.read().decode()[-300:])
            time.sleep(0.1)
    opts = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"]
    yield {"port": port, "dir": d, "opts": opts, "identity": str(d / "client")}
    p.terminate()
    p.wait(timeout=10)


def _ssh(sshd, root, bundle, msgs, identity=None, port=None, python=sys.executable, options=()):
    return S.ssh_install(
        "root@127.0.0.1", bundle, port=port or sshd["port"], identity=identity or sshd["identity"], options=sshd["opts"] + list(options),
        remote_python=python, remote_root=root, progress=msgs.append, **FAST,
    )


def test_ssh_install_then_upgrade_with_progress(sshd, kit2, tmp_path):
    root = new_root(tmp_path, {"keys": kit2["keys"]})
    msgs = []
    t0 = time.monotonic()
    assert _ssh(sshd, root, kit2["1.0.0"], msgs) == U.OK
    t1 = time.monotonic() - t0
    assert running(root) == "1.0.0"
    for s in ("step connect", "step copy", "step install", "device: step verified", "device: step switched", "device: step committed"):
        assert any(m.startswith(s) or m.startswith("  " + s) for m in msgs), (s, msgs)
    t0 = time.monotonic()
    assert _ssh(sshd, root, kit2["2.0.0"], []) == U.OK
    print("\nover SSH on loopback: install %.2f s, upgrade %.2f s" % (t1, time.monotonic() - t0))
    assert running(root) == "2.0.0" and U.check_root(root) == []


def test_ssh_wrong_board_is_refused_on_the_device(sshd, kit2, tmp_path):
    root = new_root(tmp_path, {"keys": kit2["keys"]})
    with open(os.path.join(root, "etc", "edgefw", "board"), "w") as f:
        f.write("rpi5\n")
    before = tree(root)
    msgs = []
    assert _ssh(sshd, root, kit2["1.0.0"], msgs) == U.REFUSED
    assert any("refused: wrong-board: bundle is for rpi4, this device is rpi5" in m for m in msgs), msgs
    assert tree(root) == before


@pytest.mark.parametrize(
    "case,reason",
    [("unreachable", "failed: unreachable:"), ("login", "failed: login-refused:"), ("python", "failed: no-python:")],
)
def test_ssh_errors_are_named(sshd, kit2, tmp_path, case, reason):
    root = new_root(tmp_path, {"keys": kit2["keys"]})
    msgs = []
    kw = {}
    if case == "unreachable":
        kw["port"] = _free_port()  # nothing listens there
    elif case == "login":
        kw["identity"] = str(sshd["dir"] / "stranger")
    else:
        kw["python"] = "/nonexistent/python3"
    assert _ssh(sshd, root, kit2["1.0.0"], msgs, **kw) == U.REFUSED
    assert any(m.startswith(reason) for m in msgs), msgs
    assert running(root) is None


def _script(path, text):
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("case", ["old-python", "no-pycryptodome", "no-space"])
def test_ssh_device_checks_refuse_before_copying(sshd, kit2, tmp_path, case):
    # the device's Python, pycryptodome and free space, each found lacking
    root = new_root(tmp_path, {"keys": kit2["keys"]})
    msgs = []
    kw = {}
    if case == "old-python":
        # a Python that says it is 3.8, otherwise this one
        kw["python"] = _script(tmp_path / "py38", '#!/bin/sh\ncase "$*" in *version_info*) echo "PY 3.8"; exit 0;; esac\nexec %s "$@"\n' % sys.executable)
        want = "failed: python-too-old: root@127.0.0.1 has Python 3.8; the bundle needs 3.10 or newer"
    elif case == "no-pycryptodome":
        # both names the library goes by fail to import
        shadow = tmp_path / "shadow"
        for name in ("Crypto", "Cryptodome"):
            (shadow / name).mkdir(parents=True)
            (shadow / name / "__init__.py").write_text("raise ImportError('not installed')\n")
        kw["python"] = _script(tmp_path / "pynocrypto", "#!/bin/sh\nPYTHONPATH=%s exec %s \"$@\"\n" % (shadow, sys.executable))
        want = "failed: no-pycryptodome:"
    else:
        # a df that reports 100 kB free everywhere, first on the session's
        # PATH (sshd sets PATH itself; the login shell, bash, reads BASH_ENV)
        import pwd

        if not pwd.getpwnam("root").pw_shell.endswith("bash"):
            pytest.skip("root's shell is not bash: no BASH_ENV to put a df first on the PATH")
        fake = tmp_path / "fakebin"
        fake.mkdir()
        _script(fake / "df", "#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\necho 'tiny 1000 900 100 90%% /'\n")
        (tmp_path / "env.sh").write_text("PATH=%s:$PATH\n" % fake)
        kw["options"] = ["SetEnv=BASH_ENV=%s" % (tmp_path / "env.sh")]
        want = "failed: no-space:"
    before = tree(root)
    assert _ssh(sshd, root, kit2["1.0.0"], msgs, **kw) == U.REFUSED
    assert any(m.startswith(want) for m in msgs), msgs
    assert not any(m.startswith("step copy") for m in msgs), msgs
    assert tree(root) == before


def test_df_parsing_for_the_space_check():
    out = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/root 30000000 2000000 512 99% /\n"
    assert S.parse_df(out) == 512 * 1024


# --- SD-card images -----------------------------------------------------------------
def _mbr(entries):
    mbr = bytearray(512)
    for i, (t, lba, n) in enumerate(entries):
        mbr[446 + 16 * i + 4] = t
        mbr[446 + 16 * i + 8 : 446 + 16 * i + 16] = struct.pack("<II", lba, n)
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def test_mbr_root_partition_is_the_last_linux_one(tmp_path):
    img = tmp_path / "sd.img"
    img.write_bytes(_mbr([(0x0C, 8192, 1024), (0x83, 16384, 4096)]) + b"\0" * 4096)
    assert image.root_partition(str(img)) == (16384 * 512, 4096 * 512)


def test_gpt_root_partition_is_the_linux_filesystem_one(tmp_path):
    img = tmp_path / "gpt.img"
    hdr = bytearray(92)
    hdr[:8] = b"EFI PART"
    hdr[72:88] = struct.pack("<QII", 2, 4, 128)
    esp = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
    table = b""
    for t, first, last in ((esp, 2048, 4095), (image.LINUX_GPT, 4096, 9999)):
        table += (t.bytes_le + uuid.uuid4().bytes_le + struct.pack("<QQ", first, last)).ljust(128, b"\0")
    table = table.ljust(4 * 128, b"\0")
    img.write_bytes(_mbr([(0xEE, 1, 20000)]) + bytes(hdr).ljust(512, b"\0") + table)
    assert image.root_partition(str(img)) == (4096 * 512, (9999 - 4096 + 1) * 512)


def test_not_an_image_is_refused(tmp_path, kit2):
    img = tmp_path / "x.img"
    img.write_bytes(b"\0" * 1024)
    msgs = []
    assert image.install_image(str(img), kit2["1.0.0"], board="rpi4", progress=msgs.append) == U.REFUSED
    assert any("no MBR boot signature" in m for m in msgs)


def test_install_into_a_loop_mounted_image(tmp_path, kit2):
    mkfs = shutil.which("mkfs.ext4")
    if not mkfs or os.geteuid() != 0:
        pytest.skip("needs mkfs.ext4 and root for mount -o loop")
    img = tmp_path / "sd.img"
    with open(img, "wb") as f:
        f.write(_mbr([(0x0C, 2048, 2048), (0x83, 4096, 28672)]))
        f.truncate((4096 + 28672) * 512)
    subprocess.run([mkfs, "-q", "-F", "-E", "offset=%d" % (4096 * 512), str(img), "%dk" % (28672 // 2)], check=True, capture_output=True, timeout=60)
    mnt = tmp_path / "m"
    mnt.mkdir()
    r = subprocess.run(["mount", "-o", "loop,offset=%d" % (4096 * 512), str(img), str(mnt)], capture_output=True, text=True, timeout=60)
    if r.returncode:
        pytest.skip("mount -o loop is not allowed here: %s" % r.stderr.strip())
    try:
        os.makedirs(mnt / "etc" / "edgefw" / "keys")
        shutil.copy(os.path.join(kit2["keys"], "rel.pub"), mnt / "etc" / "edgefw" / "keys")
    finally:
        subprocess.run(["umount", str(mnt)], check=True, capture_output=True, timeout=60)
    assert image.install_image(str(img), kit2["1.0.0"], board="rpi4", progress=quiet) == U.OK
    subprocess.run(["mount", "-o", "loop,offset=%d" % (4096 * 512), str(img), str(mnt)], check=True, capture_output=True, timeout=60)
    try:
        assert running(str(mnt)) == "1.0.0" and U.check_root(str(mnt)) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True, capture_output=True, timeout=60)


def test_readme_has_an_updates_section():
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "\n## Updates\n" in readme and "docs/updates.md" in readme
