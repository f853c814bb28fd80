"""Helpers for tests that run on CPython (pytest) and MicroPython (run.py)."""

import os
import sys

import boards
from sim.scenario import parse_scenario

IS_MP = sys.implementation.name == "micropython"
_n = [0]


def tmp_path(name):
    """A path under the temp directory that nothing has used yet."""
    import binascii

    base = os.getenv("TMPDIR") or "/tmp"
    _n[0] += 1
    tag = binascii.hexlify(os.urandom(6)).decode()
    return "%s/edgefw-t%s-%d-%s" % (base, tag, _n[0], name)


def raises(exc, fn, *args, **kw):
    """Call fn; return the exception of type ``exc`` it raised, or fail."""
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn), exc.__name__))


def firmware(events=(), initial=None, overrides=None, duration_s=None):
    """Firmware on the sim board with a scenario given inline."""
    doc = {"events": list(events)}
    if initial:
        doc["initial"] = initial
    if duration_s:
        doc["duration_s"] = duration_s
    sc = parse_scenario(doc, "<test>")
    from firmware.config import load_config
    from firmware.start import firmware as build_firmware
    from firmware.store.journal import Journal
    from sim.board import SimHardware

    cfg = load_config(None, overrides)
    hw = SimHardware(boards.get("sim"), sensors=cfg["sensors"], scenario=sc)
    return build_firmware(hw, cfg, Journal(tmp_path("journal.bin")))


def run(fw, cycles=None, until_us=None):
    import asyncio

    asyncio.run(fw.run(cycles=cycles, until_us=until_us))
    return fw


RESET_AT_0_1 = {"at_s": 0.1, "press": "RESET", "for_s": 0.05}

__all__ = ("IS_MP", "tmp_path", "raises", "firmware", "run", "RESET_AT_0_1")
