"""``edgefw mp-deps``: install the MicroPython libraries edgefw uses into
``.mp-lib/`` (on MICROPYPATH for the unix port; copy to ``/lib`` on a
device).

umqtt.simple comes from PyPI (``micropython-umqtt.simple``). Its sdist
predates setup.py-less packaging, so pip cannot install it; pip still
downloads and unpacks it, and the module is taken from there.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edgefw.util import ROOT

LIB = ROOT / ".mp-lib"
PACKAGES = {"micropython-umqtt.simple==1.3.4": "umqtt"}


def installed():
    return (LIB / "umqtt" / "simple.py").exists()


def install(progress=print):
    LIB.mkdir(exist_ok=True)
    for req, pkg in PACKAGES.items():
        if (LIB / pkg).exists():
            progress("%s: already in %s" % (req, LIB))
            continue
        progress("%s: downloading with pip..." % req)
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, TMPDIR=tmp)
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-clean", "-d", tmp + "/dl", req],
                env=env,
                capture_output=True,
                text=True,
            )
            found = [p for p in Path(tmp).rglob(pkg) if p.is_dir() and any(p.glob("*.py"))]
            if not found:
                raise SystemExit("edgefw mp-deps: could not fetch %s from the package index" % req)
            shutil.copytree(found[0], LIB / pkg)
            progress("%s: installed into %s" % (req, LIB / pkg))
    return 0


def micropypath():
    return ".frozen:%s:%s" % (ROOT, LIB)


# --- the command: edgefw mp-deps -------------------------------------------
def add_parser(p):
    pass


def main(args):
    return install()
