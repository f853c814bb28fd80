"""What runs on a board: the one rule that Linux bundles, the installer
copied over SSH and MicroPython device images are built from.

    for rel, src in board_files("rpi4"):        # firmware/, hal/, boards/
        ...

A board runs the device packages (``DEVICE_PACKAGES``) and nothing of the
host's: never ``sim/`` (the simulated board's chips), ``bench/``,
``edgefw/`` or the tests. A Linux board (CPython) gets the packages whole;
a MicroPython board gets them less what needs CPython (``HOST_ONLY``) and
only its own board module.
"""

from pathlib import Path

import boards

ROOT = Path(__file__).resolve().parents[2]
DEVICE_PACKAGES = ("firmware", "hal", "boards")

# never on a MicroPython image: each needs CPython (threads, paho, numpy,
# cbor2, /dev/watchdog)
HOST_ONLY = (
    "firmware/linux/",  # the folder for it: threads, paho, cbor2, native runtimes, the Linux runtime
    "hal/linux/",  # smbus2, libgpiod, pyserial
    "firmware/nn/kernels_np.py",
    "firmware/infer/host.py",  # the inference stage's thread and process runners
    "hal/linux_watchdog.py",
)


def host_only(rel):
    """Whether the module at ``rel`` (a path in the tree) runs on CPython
    only: a name in ``HOST_ONLY``, or a file under a folder named there."""
    return any(rel == h or (h.endswith("/") and rel.startswith(h)) for h in HOST_ONLY)


def _walk(root, pkg):
    for src in sorted((root / pkg).rglob("*")):
        rel = src.relative_to(root).as_posix()
        if src.is_dir() or src.is_symlink() or "__pycache__" in rel or src.suffix in (".pyc", ".pyo") or "/." in "/" + rel:
            continue
        yield rel, src


def board_files(board, root=ROOT):
    """[(path in the tree, source file)] of everything ``board`` runs."""
    family = boards.get(board).FAMILY
    if family == "sim":
        raise ValueError("the sim board runs from a checkout; nothing is built for it")
    out = []
    for pkg in DEVICE_PACKAGES:
        for rel, src in _walk(root, pkg):
            if family == "micropython":
                if host_only(rel):
                    continue
                if pkg == "boards" and rel not in ("boards/__init__.py", "boards/%s.py" % board):
                    continue
            out.append((rel, src))
    return out
