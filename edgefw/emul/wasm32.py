"""A 32-bit MicroPython beside the 64-bit unix port: the wasm32 build from
npm (``@micropython/micropython-webassembly-pyscript``), run under node by
``edgefw/emul/wasm/run.mjs``.

    from edgefw.emul.wasm32 import run
    p = run(["tests/dual/run.py", "tests.dual.test_interlock"])

On it ``sys.maxsize`` is 2**31 - 1, as on an ESP32, so an intermediate
past 2**30 is a heap-allocated long integer there; its heap grows on
demand, so it measures allocation (``micropython.heap_lock``,
``gc.mem_alloc()``) but does not cap the heap: capped-heap runs stay on
the unix port.

The package is installed with npm into a cache outside the checkout
(``$XDG_CACHE_HOME/edgefw``, else ``~/.cache/edgefw``) on first use.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "@micropython/micropython-webassembly-pyscript"
VERSION = "1.27.0"
RUNNER = ROOT / "edgefw" / "emul" / "wasm" / "run.mjs"


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgefw" / ("micropython-wasm-" + VERSION)


def package_dir():
    return cache_dir() / "node_modules" / PACKAGE


def missing():
    """Why the target cannot run here, or None."""
    if shutil.which("node") is None:
        return "node not found (apt-get install nodejs npm)"
    if not (package_dir() / "micropython.mjs").exists() and shutil.which("npm") is None:
        return "npm not found (apt-get install nodejs npm)"
    return None


def install():
    """Install the package into the cache (once); return its directory."""
    pkg = package_dir()
    if (pkg / "micropython.mjs").exists():
        return pkg
    dest = cache_dir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    # into a fresh directory, then renamed: a half-done install is never used
    tmp = Path(tempfile.mkdtemp(prefix=".install-", dir=dest.parent))
    try:
        subprocess.run(
            ["npm", "install", "--prefix", str(tmp), "--no-audit", "--no-fund", "--no-save", PACKAGE + "@" + VERSION],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        try:
            tmp.rename(dest)
        except OSError:
            if not (pkg / "micropython.mjs").exists():  # not another run's install
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return pkg


def command(args, heap="8M", root=ROOT, timeout=600, share=(), step=False):
    """The node command line that runs ``args`` (as for ``micropython``);
    each ``share`` directory is copied in and what the run wrote there
    copied back; ``step``: the program only creates asyncio tasks, which
    node then runs one step per call (the port collects garbage only
    between calls; see edgefw/emul/wasm/prelude.py)."""
    n = str(heap).lower()
    mult = {"k": 1024, "m": 1024 * 1024}.get(n[-1:], 1)
    size = int(n.rstrip("km")) * mult
    shared = ["--step"] if step else []
    for d in share:
        shared += ["--share", str(d)]
    return ["node", str(RUNNER), "--package", str(install()), "--root", str(root)] + shared + ["--heap", str(size), "--timeout", str(timeout)] + list(args)


def run(args, heap="8M", root=ROOT, timeout=600, env=None, share=(), step=False):
    """Run like the unix port's ``micropython ARGS`` from ``root``; the run
    is stopped after ``timeout`` seconds (by the runner, and here)."""
    return subprocess.run(command(args, heap, root, timeout, share, step), cwd=root, env=env, capture_output=True, text=True, timeout=timeout + 30)
