"""Updates over the network on the ESP32 (docs/updates.md, "ESP32: updates
over the network").

Nothing here is imported by the loop until an offer arrives on the
device's command topic (``firmware.uplink.coop``), or for the boot's
report and self-test (``trial``); every module of it is dropped again
once that is over.

Topics (the fleet's ACL grants them, edgefw/fleet/broker.py)::

    edgefw/<id>/cmd          in:  offers and chunks (CBOR maps, "op")
    edgefw/<id>/ota/get      out: chunk requests
    edgefw/<id>/ota/status   out: the device's update state: at boot, at
                             each step of an update, and when asked
                             (``{"op": "status"}`` on the command topic)

The status is a CBOR map: ``dev``, ``state`` (committed, trying,
downloading, verifying, switching, refused, rolled-back), ``dir``,
``version`` and ``bundle`` of what runs, ``try`` (the directory on trial)
and ``last`` (the outcome of the last update: result, version, bundle,
reason). A rollout takes "committed", never "installed", as success.
"""

import sys
import time

from firmware.ota.status import pending, settle


class Reset(Exception):
    """An update asks for a reset: raised out of the loop's wait
    (``run_slice``, which also sets the clock's ``reset``: this module may
    have been loaded again since ``firmware.device`` started, so the
    class is not what it would catch), and the chip is reset."""


# what an update or a self-test loads, dropped when it ends
MODULES = ("firmware.ota.session", "firmware.ota.trial", "firmware.ota.ed25519", "firmware.ota.status", "otaboot", "firmware.ota")


def run_slice(clock, wait_us):
    """Give the uplink's ``task``, or a new update for what arrived on the
    command topic, a slice of this wait of ``clock``
    (firmware.uplink.coop.CoopClock: what is left but its margin, at most
    its slice, none when under its smallest slice); returns the
    microseconds spent."""
    budget_us = min(clock.slice_us, wait_us - clock.margin_us)
    if budget_us < clock.min_slice_us:
        return 0
    t0 = time.ticks_us()
    deadline = time.ticks_add(t0, budget_us)
    up = clock.up
    t = getattr(up, "task", None)
    done = False
    try:
        if t is None:
            # the import is this slice's work: the offer waits a cycle
            from firmware.ota.session import Updater

            up.task = Updater(clock, up)
        else:
            # once over, a task is not stepped again
            if not getattr(t, "over", False) and not t.step(deadline):
                t.over = True
            done = getattr(t, "over", False)
        if pending() and up.connected:
            # a task is over once its last PUBACK is in (a reconnect
            # forgets them all: nothing to take then)
            done = settle(up) and done
    except Exception as e:  # an update's surprise never stops the loop
        clock.errors += 1
        clock.task_error = repr(e)
        done = True
    spent = time.ticks_diff(time.ticks_us(), t0)
    # set on the clock by the first slice: no heap for it before an update
    if spent > getattr(clock, "task_longest_us", 0):
        clock.task_longest_us = spent
    if done:
        up.task = None
        if getattr(t, "reset", False):
            clock.reset = True
            raise Reset()
        # its code goes with it: the heap the loop had before the offer
        unload()
    return spent


def unload():
    """Drop every module of the update (``MODULES``) and collect."""
    for name in MODULES:
        if name in sys.modules:
            del sys.modules[name]
        pkg, _, leaf = name.rpartition(".")
        if pkg in sys.modules and hasattr(sys.modules[pkg], leaf):
            delattr(sys.modules[pkg], leaf)
    import gc

    gc.collect()
