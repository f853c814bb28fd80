"""The layout holds: imports run one way (no circles, no arrow from what
runs on a board to the host's code), a Linux board's bundle holds only
what the board runs, and the command tables name modules that are
commands."""

import ast
import importlib
import tarfile

import pytest
import tomllib

from tests.conftest import ROOT

# where code runs -> what it may never import
DEVICE = ("firmware", "hal", "boards", "device")
HOST = ("edgefw", "sim", "bench", "tools", "tests")
PACKAGES = ("firmware", "hal", "boards", "device", "sim", "edgefw", "bench")
# circles the layout accepts, each with its reason (docs/layout.md)
ACCEPTED_CIRCLES = []


def _module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    mods = {}
    for pkg in PACKAGES:
        for src in sorted((ROOT / pkg).rglob("*.py")):
            if "__pycache__" not in src.parts:
                mods[_module_name(src)] = src
    return mods


def _imports(name, src, known):
    """The tree's modules ``name`` imports, anywhere in it (a function's
    lazy import is an arrow too)."""
    pkg = name if src.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(src.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base + "." + a.name for a in node.names] + [base]
        else:
            continue
        for t in targets:
            # the longest prefix that is a module of the tree
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _graph():
    mods = _modules()
    return {name: _imports(name, src, mods) for name, src in mods.items()}


def _circles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_the_graph_is_read():
    g = _graph()
    # a few arrows known to exist, so an empty graph cannot pass
    assert "firmware.linux.commands" in g["edgefw.cli"]
    assert "hal.errors" in g["firmware.linux.run"] and "firmware.app" in g["firmware.linux.run"]
    assert len(g) > 150


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    assert _circles(_graph()) == ACCEPTED_CIRCLES


def test_no_arrow_from_a_board_to_the_host():
    bad = []
    for name, deps in _graph().items():
        if name.split(".")[0] in DEVICE:
            bad += ["%s imports %s" % (name, d) for d in sorted(deps) if d.split(".")[0] in HOST]
    assert bad == []


def test_a_linux_bundle_holds_only_what_the_board_runs(tmp_path):
    from edgefw.deploy import bundle as DB

    DB.keygen(str(tmp_path / "k"))
    out = str(tmp_path / "b.edgefw")
    DB.build("rpi4", str(tmp_path / "k.key"), out, version="1.0.0")
    with tarfile.open(out) as tar:
        names = [n for n in tar.getnames() if n.startswith("payload/app/")]
    tops = {n.split("/")[2] for n in names}
    print("\nrpi4 bundle: %d files under app/, top level %s" % (len(names), sorted(tops)))
    assert tops == {"firmware", "hal", "boards", "pyproject.toml", "README.md"}
    for forbidden in ("sim/", "tools/", "edgefw/", "bench/", "tests/", "perf", "__pycache__"):
        assert not [n for n in names if forbidden in n], forbidden
    # what the board's runtime needs is there
    for need in ("firmware/linux/run.py", "firmware/linux/__main__.py", "hal/linux/gpio.py", "boards/rpi4.py", "firmware/models/vib_dense.tflite"):
        assert "payload/app/" + need in names, need


def _tables():
    from edgefw.cli import COMMANDS as HOST_COMMANDS
    from firmware.linux.__main__ import COMMANDS as BOARD_COMMANDS

    return [("edgefw", HOST_COMMANDS), ("python -m firmware.linux", BOARD_COMMANDS)]


@pytest.mark.parametrize("prog,table", _tables())
def test_every_command_row_names_a_command_module(prog, table):
    from firmware.linux.commands import command_parser

    names = [row[0] for row in table]
    assert len(names) == len(set(names))
    for row in table:
        mod = importlib.import_module(row[1])
        assert callable(mod.add_parser) and callable(mod.main), row
        _mod, p = command_parser(prog, row)
        assert p.prog == "%s %s" % (prog, row[0]) and row[2]


def test_the_board_runs_its_commands_from_its_own_packages():
    from firmware.linux.__main__ import COMMANDS

    assert all(module.split(".")[0] in DEVICE for _n, module, _h in COMMANDS)


def test_pip_installs_no_generic_top_level_package():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tops = {p.split(".")[0] for p in cfg["tool"]["setuptools"]["packages"]}
    # firmware, hal, boards: the names the device has too; sim: the sim
    # board, which edgefw run uses by default (README, Layout)
    assert tops == {"firmware", "hal", "boards", "sim", "edgefw"}
    assert cfg["project"]["scripts"]["edgefw"] == "edgefw.cli:main"
    listed = set(cfg["tool"]["setuptools"]["packages"])
    for pkg in listed:
        assert (ROOT / pkg.replace(".", "/")).is_dir(), pkg
    # every package of the installed tops is listed, or pip leaves it out
    for top in tops:
        for init in (ROOT / top).rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                assert ".".join(init.parent.relative_to(ROOT).parts) in listed, init
