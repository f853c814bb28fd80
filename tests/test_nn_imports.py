"""Imports inside firmware/nn run one way: no module reaches itself
through the modules it imports (at the top or inside a function), and
firmware.nn.q31, the Q31 arithmetic the kernels and fixedpoint share,
imports nothing of firmware.nn."""

import ast

from tests.conftest import ROOT

NN = ROOT / "firmware" / "nn"


def _module(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path, known):
    """The firmware.nn modules ``path`` imports, anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            # ``from firmware.nn import kernels``: the submodule, if it is one
            names = [node.module + "." + a.name for a in node.names if node.module + "." + a.name in known] or [node.module]
        else:
            continue
        out.update(n for n in names if n in known)
    return out


def graph():
    files = {_module(p): p for p in NN.rglob("*.py")}
    return {m: _imports(p, files) - {m} for m, p in files.items()}


def _cycle(g):
    """A list of modules that import each other in a circle, or None."""
    state = {}

    def visit(m, path):
        state[m] = 1
        for n in sorted(g[m]):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state:
                c = visit(n, path + [n])
                if c:
                    return c
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state:
            c = visit(m, [m])
            if c:
                return c
    return None


def test_no_import_circle_in_firmware_nn():
    g = graph()
    assert "firmware.nn.kernels" in g and "firmware.nn.fixedpoint" in g["firmware.nn.kernels"]
    assert _cycle(g) is None, " -> ".join(_cycle(g))


def test_q31_is_a_leaf_and_fixedpoint_does_not_reach_the_kernels():
    g = graph()
    assert g["firmware.nn.q31"] == set()
    assert g["firmware.nn.fixedpoint"] == {"firmware.nn.q31"}


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
