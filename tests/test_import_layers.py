"""Imports among the store, safety and CBOR modules run one way: the
modules they share (store/format.py, cbor_base.py; safety/setup.py and
diag.py, which the interlock loads)
import none of their package's modules, and no module loaded by another
imports it back. The interlock's folded constants equal the shared ones."""

import ast
from pathlib import Path

import pytest

from firmware.safety import interlock, setup

ROOT = Path(__file__).resolve().parent.parent


def _imports(rel):
    """Every firmware module ``rel`` imports, at its top or in a function."""
    out = set()
    for node in ast.walk(ast.parse((ROOT / rel).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "firmware":
                out.update("firmware." + a.name for a in node.names)
            else:
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("firmware.")}


# module -> what it may import within its group (None: anything)
LAYERS = {
    "store": {
        "firmware/store/format.py": set(),
        "firmware/store/scan.py": {"firmware.store.format"},
        "firmware/store/outbox.py": {"firmware.store.format", "firmware.store.scan", "firmware.cbor"},
        "firmware/store/recovery.py": {"firmware.store.format", "firmware.store.scan"},
        "firmware/store/group.py": set(),
    },
    "safety": {
        "firmware/safety/setup.py": set(),
        "firmware/safety/diag.py": set(),
        "firmware/safety/interlock.py": {"firmware.safety.setup", "firmware.safety.diag"},
    },
    "cbor": {
        "firmware/cbor_base.py": set(),
        "firmware/cbor_rare.py": {"firmware.cbor_base"},
        "firmware/cbor_decode.py": {"firmware.cbor_base"},
        "firmware/linux/cbor_cpython.py": {"firmware.cbor_base"},
    },
}
GROUP = {"store": "firmware.store.", "safety": "firmware.safety.", "cbor": "firmware.cbor"}


@pytest.mark.parametrize("group", sorted(LAYERS))
def test_shared_modules_are_leaves_and_imports_run_one_way(group):
    for rel, allowed in LAYERS[group].items():
        mine = {m for m in _imports(rel) if m.startswith(GROUP[group]) or m == "firmware.linux.cbor_cpython"}
        assert mine <= allowed, "%s imports %s" % (rel, sorted(mine - allowed))


def test_the_encoder_loads_no_shared_module_and_agrees_on_the_depth():
    from firmware import cbor, cbor_base

    assert not {m for m in _imports("firmware/cbor.py") if m.startswith("firmware.cbor")} - {
        "firmware.cbor_rare",
        "firmware.cbor_decode",
        "firmware.linux.cbor_cpython",
    }
    assert cbor._MAX_DEPTH == cbor_base.MAX_DEPTH


def test_the_interlock_folds_the_shared_values():
    for name in ("EN_HIGH", "EN_LOW", "EN_ROC", "EN_PLAUS"):
        assert getattr(interlock, "_" + name) == getattr(setup, name), name
