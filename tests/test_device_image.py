"""The ESP32 device image (``edgefw mpy-build --board esp32_devkitc``): only
device code, every import resolvable inside it, a manifest that matches,
and the bytecode version check."""

import ast
import hashlib
import json
import subprocess
import sys

import pytest

from edgefw.build import mpdeps
from edgefw.build.contents import HOST_ONLY
from edgefw.build.mpy import MpyMismatch, build, check_mpy_version, image_sources, mpy_cross_version, read_manifest, write_manifest_py

# what MicroPython on an ESP32 provides itself (built-in or frozen)
MP_MODULES = {
    "sys", "os", "time", "json", "gc", "micropython", "machine", "network", "asyncio", "array", "struct",
    "binascii", "hashlib", "errno", "select", "socket", "ssl", "cryptolib", "random", "ntptime", "math",
    "io", "collections", "esp32", "esp",
}  # fmt: skip


# Imports reached only on CPython, inside device modules that still mix
# both. Each is (module, import). None reaches the simulator: the product
# names it only in the backend table (test_the_product_never_imports_the_simulator).
RUNTIME_GUARDED = {
    ("firmware/infer/stage.py", "threading"),  # ThreadRunner: CPython
    ("firmware/infer/stage.py", "multiprocessing"),  # ProcessRunner: CPython
    ("firmware/nn/backend.py", "firmware.linux.runtimes"),  # LiteRT/tflite-runtime: CPython
}


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    if not mpdeps.installed():
        pytest.fail("umqtt.simple is missing: run 'edgefw mp-deps'")
    out = tmp_path_factory.mktemp("img") / "esp32"
    build(out, board="esp32_devkitc")
    return out


def _cpython_branch(node, parents):
    """An import in the CPython arm of ``if sys.implementation.name ==
    "micropython"`` / ``IS_MICROPYTHON``, or in a ``try`` whose
    ``except ImportError`` handles its absence."""
    for p, child in parents:
        if isinstance(p, ast.If):
            test = ast.unparse(p.test)
            if "micropython" in test.lower():
                mp_first = "!=" not in test and " not " not in (" " + test + " ")
                in_else = child in p.orelse
                if mp_first == in_else:
                    return True
        if isinstance(p, ast.Try) and child in p.body:
            for h in p.handlers:
                if h.type is not None and "ImportError" in ast.unparse(h.type):
                    return True
        if isinstance(p, ast.ExceptHandler) and p.type is not None and "ImportError" in ast.unparse(p.type):
            return True  # the fallback when a MicroPython module is missing
    return False


def _imports(src):
    tree = ast.parse(src)
    out = []

    def walk(node, parents):
        for child in ast.iter_child_nodes(node):
            chain = parents + [(node, child)]
            if isinstance(child, ast.Import):
                for a in child.names:
                    out.append((a.name, child.lineno, _cpython_branch(child, chain), False))
            elif isinstance(child, ast.ImportFrom) and child.level == 0:
                g = _cpython_branch(child, chain)
                out.append((child.module, child.lineno, g, False))
                for a in child.names:
                    out.append((child.module + "." + a.name, child.lineno, g, True))  # a module or a name
            walk(child, chain)

    walk(tree, [])
    return out


def _defined(pkg):
    """Top-level names the source of package ``pkg`` defines."""
    from edgefw.build.mpy import ROOT

    tree = ast.parse((ROOT.joinpath(*pkg.split(".")) / "__init__.py").read_text())
    names = set()
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
            names.add(n.name)
        elif isinstance(n, ast.Assign):
            names.update(t.id for t in n.targets if isinstance(t, ast.Name))
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in n.names)
    return names


def _in_image(img, mod):
    p = img.joinpath(*mod.split("."))
    for base in (p, img / "lib" / p.relative_to(img)):
        if base.with_suffix(".mpy").exists() or (base / "__init__.mpy").exists() or base.with_suffix(".py").exists():
            return True
    return False


def test_image_holds_only_device_code(image):
    files = {p.relative_to(image).as_posix() for p in image.rglob("*") if p.is_file()}
    assert not any(f.startswith("sim/") for f in files)
    for host in HOST_ONLY:
        if host.endswith("/"):
            assert not [f for f in files if f.startswith(host)], host
        else:
            assert host[:-3] + ".mpy" not in files and host not in files
    assert "boards/esp32_devkitc.mpy" in files and "boards/sim.mpy" not in files and "boards/rpi4.mpy" not in files
    for need in ("main.py", "boot.py", "lib/umqtt/simple.mpy", "firmware/prechecked.json", "firmware/app.mpy", "device.json", "build.json"):
        assert need in files, need
    assert "firmware/models/vib_dense.tflite" in files
    # compiled, no source beside the bytecode (main.py and boot.py are run as source)
    assert not [f for f in files if f.endswith(".py") and f not in ("main.py", "boot.py")]
    ver = mpy_cross_version()
    for f in files:
        if f.endswith(".mpy"):
            head = (image / f).read_bytes()[:2]
            assert head == b"M" + bytes([ver[0]]), f
    # boot.py drives the DevKitC's permit relay (GPIO26) low
    assert "Pin(26, Pin.OUT, value=0)" in (image / "boot.py").read_text()


def test_nothing_in_the_image_imports_a_module_outside_it(image):
    bad = []
    n = 0
    for src, rel in image_sources("esp32_devkitc"):
        if src.suffix != ".py":
            continue
        for mod, line, guarded, is_name in _imports(src.read_text()):
            n += 1
            if is_name:
                if guarded:
                    continue
                # "from P import N": N is a submodule of P or a name P defines
                parent, name = mod.rsplit(".", 1)
                pkg = image.joinpath(*parent.split("."))
                if (pkg / "__init__.mpy").exists() and not _in_image(image, mod) and name not in _defined(parent):
                    bad.append("%s:%d imports %s" % (rel, line, mod))
                continue
            top = mod.split(".")[0]
            if top.startswith("u") and top[1:] in MP_MODULES:
                top = top[1:]  # umqtt's old names (usocket, ussl): aliases on MicroPython
            if top in MP_MODULES or _in_image(image, mod) or guarded or (rel, mod) in RUNTIME_GUARDED:
                continue
            bad.append("%s:%d imports %s" % (rel, line, mod))
    assert n > 100
    assert bad == []


def _product_sources():
    from edgefw.build.mpy import ROOT

    for pkg in ("firmware", "hal", "boards", "device"):
        for src in sorted((ROOT / pkg).rglob("*.py")):
            yield src, src.relative_to(ROOT).as_posix()


def test_the_product_never_imports_the_simulator():
    # every module of the product, device and host code alike, guarded or
    # not: no import of sim/, and no sim module named by a string outside
    # the backend table (hal/backend.FAMILIES), the one place naming it
    bad = []
    named = []
    n = 0
    for src, rel in _product_sources():
        text = src.read_text()
        for mod, line, _guarded, _is_name in _imports(text):
            n += 1
            if mod == "sim" or mod.startswith("sim."):
                bad.append("%s:%d imports %s" % (rel, line, mod))
        for node in ast.walk(ast.parse(text)):
            # a module path; "sim" alone is the board's and the family's name
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("sim."):
                named.append((rel, node.value))
    assert n > 100
    assert bad == []
    # the sim row of the backend table: its hardware and its scenario loader
    assert sorted(named) == [("hal/backend.py", "sim.board"), ("hal/backend.py", "sim.scenario")]
    from hal.backend import FAMILIES

    assert FAMILIES["sim"][0] == "sim.board" and FAMILIES["sim"][3] == "sim.scenario"


def test_the_closure_check_catches_a_host_import(image, tmp_path):
    # the checker itself: a CPython-only import outside a guard is found
    src = "import sys\nfrom firmware.linux.forwarder import Forwarder\nif sys.implementation.name == 'micropython':\n    import machine\nelse:\n    import paho\n"
    found = [(m, g) for m, _l, g, is_name in _imports(src) if not is_name]
    assert ("firmware.linux.forwarder", False) in found and ("paho", True) in found and ("machine", False) in found
    assert not _in_image(image, "firmware.linux.forwarder")


def test_manifest_lists_every_file_with_its_hash(image):
    m = read_manifest(image)
    files = {p.relative_to(image).as_posix() for p in image.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(m["files"]) == files
    for rel, f in m["files"].items():
        data = (image / rel).read_bytes()
        assert f["size"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest(), rel
    assert m["board"] == "esp32_devkitc" and m["opt"] == 3 and m["bytes"] == sum(f["size"] for f in m["files"].values())
    b = json.loads((image / "build.json").read_text())
    assert b["bundle"] == m["bundle"] and b["board"] == "esp32_devkitc"
    # the same sources give the same bundle hash
    again = image.parent / "again"
    build(again, board="esp32_devkitc")
    assert read_manifest(again)["bundle"] == m["bundle"]


def test_config_device_section_goes_to_device_json(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"device_id": "esp-1", "device": {"wifi": {"ssid": "lab", "password": "pw"}, "ntp": None}}))
    build(tmp_path / "img", board="esp32_devkitc", config=str(cfg))
    assert json.loads((tmp_path / "img" / "device.json").read_text()) == {"wifi": {"ssid": "lab", "password": "pw"}, "ntp": None}
    pre = json.loads((tmp_path / "img" / "firmware" / "prechecked.json").read_text())
    assert pre["config"]["device_id"] == "esp-1" and "device" not in pre["config"]
    cfg.write_text(json.dumps({"device": {"wifi": "lab"}}))
    with pytest.raises(ValueError, match="device.wifi"):
        build(tmp_path / "img2", board="esp32_devkitc", config=str(cfg))


def test_bytecode_version_check():
    ver = mpy_cross_version()
    # this machine's unix port and mpy-cross agree
    p = subprocess.run(["micropython", "-c", "import sys; print(sys.implementation._mpy)"], capture_output=True, text=True, timeout=30)
    assert check_mpy_version(int(p.stdout)) == ver
    # an ESP32 (xtensawin, arch 9) of the same release: same bytecode
    assert check_mpy_version(ver[0] | (ver[1] << 8) | (9 << 10)) == ver
    with pytest.raises(MpyMismatch) as e:
        check_mpy_version(5 | (9 << 10))
    assert "v5.0" in str(e.value) and "v%d.%d" % ver in str(e.value)


def test_manifest_py_lists_the_image_modules(tmp_path):
    path = write_manifest_py(tmp_path / "manifest.py", "esp32_devkitc")
    text = path.read_text()
    assert 'require("umqtt.simple")' in text and "opt=3" in text
    assert "'app.py'" in text and "forwarder" not in text and "kernels_np" not in text and 'package("sim"' not in text
    compile(text, "manifest.py", "exec")


def test_cli_builds_the_image(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "edgefw", "mpy-build", str(tmp_path / "o"), "--board", "esp32_devkitc"], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr
    assert "bundle " + read_manifest(tmp_path / "o")["bundle"] in p.stdout
    p = subprocess.run([sys.executable, "-m", "edgefw", "mpy-build", str(tmp_path / "o"), "--board", "rpi4"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "esp32_devkitc" in p.stderr
