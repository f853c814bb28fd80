"""The boot's part of an update: report the update state once the uplink
is connected and, on the boots of a directory on trial, its self-test.

    up.task = for_boot(fw, up)    # firmware.device, once per boot

The self-test passes when, within the bundle's ``selftest_s`` (default
``TRIAL_S``), all of these hold at once:

- the interlock is ok: ``MIN_CYCLES`` cycles ran, and no loop or relay
  fault is active (DEADLINE, STALL, READBACK);
- the sensors answer: no sensor has a bus or stale cause (each gave a
  fresh sample within its ``stale_ms``);
- the uplink reaches the ingest: a receipt came back for a batch sent
  in this boot.

Then ``ota.json`` commits the directory (``current`` is it, ``try`` is
null) and the status says "committed". If the time runs out first,
``ota.json`` goes back to the previous directory, the status says
"rolled-back" with the check that failed, and the device resets into
the previous directory.
"""

import time

import otaboot

from firmware.ota.status import publish_status, running_dir

TRIAL_S = 60
MIN_CYCLES = 100
# loop and relay faults: DEADLINE, STALL, READBACK (firmware/safety/interlock.py)
_LOOP_FAULTS = 2 | 4 | 8


def for_boot(fw, up):
    """The task of this boot, or None (the flat layout: nothing to do)."""
    st = otaboot.read()
    if st is None:
        return None
    return Trial(fw, up, st, running_dir())


class Trial:
    def __init__(self, fw, up, st, running):
        self.fw = fw
        self.up = up
        self.st = st
        self.dir = running
        self.trying = running is not None and running == st.get("try")
        self.t0 = time.ticks_ms()
        self.records0 = up.records
        self.reported = False
        self.reset = False

    def step(self, deadline_us):
        """True while there is more to do."""
        if not self.trying:
            # a committed (or rolled-back) boot: say so once, and be gone
            return not publish_status(self.up, self.st, "committed" if self.dir == self.st.get("current") else "rolled-back", self.dir)
        if not self.reported:
            self.reported = publish_status(self.up, self.st, "trying", self.dir)
        why = self.check()
        if why is None:
            return not self.commit()
        if time.ticks_diff(time.ticks_ms(), self.t0) > self.st.get("try_selftest_s", TRIAL_S) * 1000:
            self.roll_back("self-test: " + why)
            return False
        return True

    def check(self):
        """None when the self-test passes now, else what fails."""
        fw = self.fw
        il = fw.interlock
        if fw.cycles < MIN_CYCLES:
            return "the loop ran %d cycles" % fw.cycles
        if il.global_causes & _LOOP_FAULTS:
            return "interlock: loop or relay fault active"
        for s in range(fw.ns):
            if il.sensor_causes[s]:
                return "sensor %d does not answer" % s
        if self.up.records <= self.records0:
            return "no receipt from the ingest"
        return None

    def commit(self):
        st = self.st
        if not self.up.connected:
            return False
        old = st["current"]
        new = {
            "current": self.dir,
            "version": st.get("try_version"),
            "bundle": st.get("try_bundle"),
            "try": None,
            "boots": 0,
            "previous": old,
            # what a revert goes back to (firmware.ota.session)
            "previous_version": st.get("version"),
            "previous_bundle": st.get("bundle"),
            # a bundle the fleet took this device back from (session.py)
            "reverted_from": st.get("reverted_from"),
            "last": {"result": "committed", "version": st.get("try_version"), "bundle": st.get("try_bundle"), "reason": None},
        }
        otaboot.write(new)
        self.st = new
        clock = self.fw.clock
        publish_status(self.up, new, "committed", self.dir, longest_us=getattr(clock, "task_longest_us", 0), max_gap_us=clock.max_gap_us, overruns=self.fw.overruns)
        return True

    def roll_back(self, why):
        st = self.st
        st["last"] = {"result": "rolled-back", "version": st.get("try_version"), "bundle": st.get("try_bundle"), "reason": why}
        st["try"] = None
        st["boots"] = 0
        otaboot.write(st)
        self.dir = st["current"]
        publish_status(self.up, st, "rolled-back", st["current"], reason=why)
        self.reset = True
