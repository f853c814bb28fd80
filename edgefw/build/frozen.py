"""The heap budget with edgefw frozen into the firmware, measured on a real
MicroPython build rather than estimated from ``.mpy`` sizes.

    edgefw mpy-build OUT --budget --frozen MICROPYTHON_SRC [--model M] [--full-journal]

A firmware for the ESP32 would freeze edgefw (``edgefw mpy-build --board
esp32_devkitc --manifest-py``): bytecode, constants and names then stay
in flash and only module dicts, functions, classes and what the code
builds take heap. No prebuilt MicroPython here has edgefw frozen in, so
this builds one: the unix port of the MicroPython source tree at
``MICROPYTHON_SRC`` (a release checkout; its submodules are not needed),
32-bit (``-m32``: 31-bit small ints and 4-byte words, as on an ESP32),
with every module of the budget tree frozen in (edgefw, the sim board
and its player, ``asyncio``, ``umqtt.simple``), the native kernels
compiled for x86. It then runs the same probe as ``--budget``
(``tests/mp_only/heap_budget.py``), with the frozen modules first on
``sys.path`` and no ``.mpy`` beside them, and prints the same table.

Host needs: make, gcc with 32-bit support (Debian: gcc-multilib, which
apt installs only by removing gcc-aarch64-linux-gnu, the QEMU tests'
cross compiler: reinstall that afterwards). The
build, the tree and the run go to OUT; the source tree is only read
(``mpy-cross`` is built in it once if missing).
"""

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edgefw.build import budget
from hal.errors import EdgefwError

ROOT = budget.ROOT
# switched off: each needs a submodule (berkeley-db, libffi, mbedtls) and
# none is edgefw's (the wasm port the other budget runs on has none either)
MAKE_VARS = ["MICROPY_FORCE_32BIT=1", "MICROPY_PY_BTREE=0", "MICROPY_PY_FFI=0", "MICROPY_PY_SSL=0", "MICROPY_SSL_MBEDTLS=0", "MPY_CROSS_FLAGS=-march=x86"]


class FrozenBuildError(EdgefwError, RuntimeError):
    pass


def source_version(src):
    """(major, minor, patch) of the MicroPython tree at ``src``, or
    FrozenBuildError saying what is missing."""
    src = Path(src)
    cfg = src / "py" / "mpconfig.h"
    if not cfg.is_file() or not (src / "ports" / "unix" / "Makefile").is_file():
        raise FrozenBuildError("%s: not a MicroPython source tree (no py/mpconfig.h or ports/unix/Makefile); give a checkout of a release, e.g. v1.27.0" % src)
    text = cfg.read_text()
    v = [re.search(r"#define MICROPY_VERSION_%s \(?(\d+)\)?" % k, text) for k in ("MAJOR", "MINOR", "MICRO")]
    if not all(v):
        raise FrozenBuildError("%s: no MICROPY_VERSION_* in py/mpconfig.h" % cfg)
    return tuple(int(m.group(1)) for m in v)


def write_manifest(out, path, mp_lib):
    """A manifest freezing every module compiled into the tree ``out``
    (from its sources in this checkout), asyncio and umqtt.simple.
    Returns the number of modules."""
    by_pkg = {}
    for p in sorted(Path(out).rglob("*.mpy")):
        rel = p.relative_to(out).with_suffix(".py").as_posix()
        if rel.startswith("lib/"):
            continue
        if not (ROOT / rel).is_file():
            raise FrozenBuildError("%s has no source %s in this checkout" % (p, rel))
        pkg, _, inner = rel.partition("/")
        by_pkg.setdefault(pkg, []).append(inner)
    lines = [
        "# every module of the heap budget's tree, frozen (edgefw.build.frozen)",
        'include("$(MPY_DIR)/extmod/asyncio")',
        'module("umqtt/simple.py", base_path="%s", opt=%d)' % (Path(mp_lib).as_posix(), budget_opt()),
    ]
    for pkg in sorted(by_pkg):
        lines.append('package("%s", files=%r, base_path="%s", opt=%d)' % (pkg, by_pkg[pkg], ROOT.as_posix(), budget_opt()))
    Path(path).write_text("\n".join(lines) + "\n")
    return sum(len(v) for v in by_pkg.values())


def budget_opt():
    from edgefw.build.mpy import OPT

    return OPT


def _make(args, cwd, log):
    p = subprocess.run(["make"] + args, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    Path(log).write_text(p.stdout)
    if p.returncode:
        tail = "\n".join(p.stdout.splitlines()[-15:])
        hint = " (a 32-bit C library is missing: on Debian, apt install gcc-multilib)" if "Scrt1.o" in p.stdout or "crti.o" in p.stdout else ""
        raise FrozenBuildError("make %s failed in %s%s; the log is %s:\n%s" % (" ".join(args[:1]), cwd, hint, log, tail))


def build_port(src, out, work):
    """A 32-bit unix port with the tree ``out`` frozen in, built in
    ``work``; returns the executable's path."""
    from edgefw.build import mpdeps

    src, work = Path(src).resolve(), Path(work).resolve()
    source_version(src)
    if not shutil.which("make"):
        raise FrozenBuildError("make is not installed")
    work.mkdir(parents=True, exist_ok=True)
    if not mpdeps.installed():
        raise FrozenBuildError("umqtt.simple is missing: run 'edgefw mp-deps'")
    n = write_manifest(out, work / "manifest.py", mpdeps.LIB)
    cross = src / "mpy-cross" / "build" / "mpy-cross"
    if not cross.exists():
        _make(["-j2"], src / "mpy-cross", work / "mpy-cross.log")
    # make checks that the micropython-lib submodule is there; nothing of it
    # is frozen, so an empty stand-in directory does
    lib = work / "micropython-lib"
    lib.mkdir(exist_ok=True)
    (lib / "README.md").write_text("not used: nothing of micropython-lib is frozen here\n")
    args = ["-j2", "BUILD=%s" % (work / "build"), "PROG=micropython", "CC=gcc -m32", "LD=gcc -m32", "MPY_LIB_DIR=%s" % lib, "FROZEN_MANIFEST=%s" % (work / "manifest.py")] + MAKE_VARS
    _make(args, src / "ports" / "unix", work / "unix.log")
    exe = work / "build" / "micropython"
    if not exe.exists():
        raise FrozenBuildError("the build made no %s; see %s" % (exe, work / "unix.log"))
    print("built %s: MicroPython %d.%d.%d unix port, 32-bit, %d modules frozen" % ((exe,) + source_version(src) + (n,)), file=sys.stderr)
    return exe


def stage(out, run):
    """The run directory: the tree's data files (config, model, journal
    left by an earlier run) without its ``.mpy``, so every module is the
    frozen one."""
    run = Path(run)
    for p in Path(out).rglob("*"):
        if p.is_file() and p.suffix != ".mpy":
            dst = run / p.relative_to(out)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, dst)


def run_probe(exe, run, cycles, timeout=900):
    # the frozen modules alone on sys.path: the run directory's own
    # folders (firmware/ holding only data files) must not shadow them
    code = "import sys; sys.path[:] = ['.frozen']; sys.argv[:] = ['heap_budget.py', '%d']; exec(open('heap_budget.py').read())" % cycles
    p = subprocess.run([str(exe), "-X", "heapsize=1M", "-c", code], cwd=str(run), capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0 or not re.search(r"^1 passed, 0 failed$", p.stdout, re.M):
        raise FrozenBuildError("the heap probe failed on the frozen build:\n" + p.stdout + p.stderr)
    return p.stdout


def measure(src, model="vib_dense", cycles=budget.CYCLES, work=None, full_journal=False):
    if work is None:
        with tempfile.TemporaryDirectory() as tmp:
            return measure(src, model, cycles, tmp, full_journal)
    work = Path(work)
    out, run = work / "tree", work / "run"
    for d in (out, run):
        shutil.rmtree(d, ignore_errors=True)
    record = budget.SMALL_JOURNAL if full_journal else None
    # the tree's modules do not depend on its config: one build serves
    # the fill and the measured run
    budget.prepare(out, model, not full_journal, not full_journal, record)
    exe = build_port(src, out, work / "port")
    run.mkdir()
    stage(out, run)
    if full_journal:
        run_probe(exe, run, 10000)
        shutil.rmtree(out)
        budget.prepare(out, model, True, True, record)
        stage(out, run)
    r = budget.parse(run_probe(exe, run, cycles))
    r.update(model=model, full_journal=full_journal, frozen=".".join(map(str, source_version(src))))
    return r


def main(out, src, model="vib_dense", full_journal=False):
    try:
        r = measure(src, model, work=out, full_journal=full_journal)
    except FrozenBuildError as e:
        print("edgefw mpy-build: --frozen: %s" % e, file=sys.stderr)
        return 2
    print("frozen into a 32-bit unix build of MicroPython %s (edgefw.build.frozen)" % r["frozen"])
    print(budget.table(r).replace("budget %d, " % budget.BOUND[model], ""))
    t = budget.TARGET[model]
    ok = r["edgefw_peak"] <= t and (r["journal_top"] is None or r["journal_top"] <= t)
    print("%s the target of %d bytes" % ("within" if ok else "OVER", t))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], *(sys.argv[3:4] or [])))
