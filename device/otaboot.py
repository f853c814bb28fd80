"""Which application directory this boot runs: the ESP32's A/B layout.

    import otaboot
    otaboot.choose()      # main.py, before anything of the firmware

The device's root holds boot.py, main.py, this module, the device's own
files (device.json, its key and certificates, its journal) and two
application directories, ``a`` and ``b``, each a whole image (the
firmware, its libraries, its config). ``ota.json`` says which runs::

    {"current": "a", "version": "0.1.0", "bundle": "...", "try": null,
     "boots": 0, "previous": null, "last": null}

An update (firmware/ota/session.py) writes the other directory, then
switches in one atomic step: ``ota.json.new`` renamed over ``ota.json``
with ``try`` set. Every boot of a ``try`` directory counts in ``boots``;
its self-test (firmware/ota/trial.py) commits it (it becomes
``current``, ``try`` is null) or rolls it back. A directory that has
booted ``MAX_BOOTS`` times without a commit (it crashes, hangs, or the
power goes before the self-test ends) is rolled back here, at the next
boot, before any of its code runs.

Without ``ota.json`` the image runs from the root, as flashed whole.
This module is never part of an update: the state file's format is its.
The rename replaces the old file atomically on littlefs (the ESP32's
default filesystem) and POSIX; FAT would refuse it.
"""

import json
import os
import sys

STATE = "ota.json"
DIRS = ("a", "b")
MAX_BOOTS = 3


def read():
    """The state, or None without one (the flat layout)."""
    try:
        f = open(STATE)
    except OSError:
        return None
    try:
        return json.load(f)
    finally:
        f.close()


def write(st):
    """Replace the state in one step: a power cut leaves the old or the new."""
    tmp = STATE + ".new"
    f = open(tmp, "w")
    try:
        json.dump(st, f)
    finally:
        f.close()
    os.rename(tmp, STATE)


def other(d):
    return DIRS[1] if d == DIRS[0] else DIRS[0]


def choose():
    """Put this boot's application directory first on ``sys.path`` (none:
    the flat layout); counts the boot of a ``try`` directory and rolls a
    boot loop back. Returns the directory or None."""
    st = read()
    if st is None:
        return None
    d = st.get("try")
    if d:
        if st.get("boots", 0) >= MAX_BOOTS:
            st["last"] = {
                "result": "rolled-back",
                "version": st.get("try_version"),
                "bundle": st.get("try_bundle"),
                "reason": "boot loop: %d boots of %s without a commit" % (st["boots"], d),
            }
            st["try"] = None
            st["boots"] = 0
            write(st)
            d = st["current"]
        else:
            st["boots"] = st.get("boots", 0) + 1
            write(st)
    else:
        d = st["current"]
    sys.path.insert(0, d + "/lib")
    sys.path.insert(0, d)
    return d
