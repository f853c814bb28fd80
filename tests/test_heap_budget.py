"""The heap budget on the 32-bit MicroPython port (edgefw/build/budget.py):
edgefw's peak over the loop with the inference stage, the journal and the
uplink on, from .mpy as on a device, the simulated board and the
stand-ins measured apart. The bounds are ``budget.BOUND``: what this tree
reaches, a regression guard; ``budget.TARGET`` is the issue's goal."""

import os
import re

import pytest

from edgefw.build import budget


def _check(r):
    print(budget.table(r))
    names = [n for _k, n, _c, _o in r["rows"]]
    for part in ("interlock", "journal", "inference", "uplink", "board+player"):
        assert part in names, part
    # the parts add up to what the heap held once built (to a collection's slack)
    assert abs(r["edgefw_rows"] - r["edgefw_resident"]) <= 256, r
    assert 0 < r["edgefw_resident"] <= r["edgefw_peak"]


@pytest.mark.micropython
@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(budget.BOUND))
def test_the_32_bit_peak_stays_inside_the_budget(model):
    r = budget.measure(model)
    _check(r)
    assert r["edgefw_peak"] <= budget.BOUND[model], budget.table(r)
    assert budget.within(r)


@pytest.mark.micropython
@pytest.mark.slow
def test_a_restart_over_a_journal_at_its_cap_stays_inside_the_budget():
    r = budget.measure("vib_dense", full_journal=True)
    _check(r)
    assert r["journal_top"] is not None and budget.within(r), budget.table(r)


def test_the_parser_reads_what_the_probe_prints():
    text = "\n".join(
        [
            "row base interpreter+probe 1000 0",
            "row standin machine+socket 100 0",
            "row edgefw loop 300 50",
            "row sim board+player 200 100",
            "row adjust hal.native.dropped 0 -40",
            "row edgefw start.freed 0 -20",
            "peak 2000 built 1690",
            "modules firmware firmware.loop",
            "1 passed, 0 failed",
        ]
    )
    r = budget.parse(text)
    # what is not the device's comes off: 1000 + 100 + 300 - 40
    assert r["edgefw_resident"] == 1690 - 1360 and r["edgefw_peak"] == 2000 - 1360
    assert r["edgefw_rows"] == 330 and r["modules"] == ["firmware", "firmware.loop"]
    with pytest.raises(ValueError):
        budget.parse("peak 1 built 1")
    assert re.search(r"peak over the loop 640", budget.table(dict(r, model="vib_dense")))


def test_the_frozen_manifest_names_every_module_of_the_tree(tmp_path):
    """``--budget --frozen``: the manifest freezes each compiled module of
    the tree from its source here; a directory that is not a MicroPython
    tree is refused naming what it lacks."""
    import ast

    from edgefw.build import frozen, mpdeps

    out = tmp_path / "tree"
    (out / "firmware" / "store").mkdir(parents=True)
    (out / "hal").mkdir()
    (out / "lib" / "umqtt").mkdir(parents=True)
    for rel in ("firmware/__init__.mpy", "firmware/loop.mpy", "firmware/store/journal.mpy", "hal/errors.mpy", "lib/umqtt/simple.mpy"):
        (out / rel).write_bytes(b"M")
    n = frozen.write_manifest(out, tmp_path / "manifest.py", mpdeps.LIB)
    text = (tmp_path / "manifest.py").read_text()
    calls = [ast.parse(ln).body[0].value for ln in text.splitlines() if ln and not ln.startswith("#")]
    pkgs = {c.args[0].value: ast.literal_eval(c.keywords[0].value) for c in calls if c.func.id == "package"}
    assert n == 4 and pkgs == {"firmware": ["__init__.py", "loop.py", "store/journal.py"], "hal": ["errors.py"]}
    assert 'include("$(MPY_DIR)/extmod/asyncio")' in text and 'module("umqtt/simple.py"' in text
    (out / "firmware" / "nowhere.mpy").write_bytes(b"M")
    with pytest.raises(frozen.FrozenBuildError, match="no source firmware/nowhere.py"):
        frozen.write_manifest(out, tmp_path / "m2.py", mpdeps.LIB)
    with pytest.raises(frozen.FrozenBuildError, match="not a MicroPython source tree"):
        frozen.source_version(tmp_path)


@pytest.mark.micropython
@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("EDGEFW_MICROPYTHON_SRC"), reason="needs a MicroPython source tree (EDGEFW_MICROPYTHON_SRC): no package here provides one")
@pytest.mark.parametrize("model", sorted(budget.TARGET))
def test_frozen_into_the_firmware_the_peak_meets_the_target(model, tmp_path):
    from edgefw.build import frozen

    r = frozen.measure(os.environ["EDGEFW_MICROPYTHON_SRC"], model, work=tmp_path)
    _check(r)
    assert r["edgefw_peak"] <= budget.TARGET[model] and r["journal_top"] <= budget.TARGET[model], budget.table(r)
