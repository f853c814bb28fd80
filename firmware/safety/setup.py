"""Turning configuration into the interlock's integer tables. Runs once
at start-up, apart from the module the safety path runs, so that a small
heap can drop it afterwards."""

from firmware.channels import channel_names, scale
from hal.compat import const

# the rule enable bits of Interlock.en, one byte per channel. The interlock
# keeps its own const copies, which MicroPython folds into the safety
# path (it folds a const only in its own module); tests/test_import_layers.py
# holds them to these values. No import of the interlock here: it loads
# this module, not the other way round.
EN_HIGH = const(1)
EN_LOW = const(2)
EN_ROC = const(4)
EN_PLAUS = const(8)


def compile_rules(il, rules):
    for i, ch in enumerate(il.channels):
        r = rules.get(ch)
        if not r:
            continue
        en = 0
        if r.get("high") is not None:
            en |= EN_HIGH
            il.hi[i] = scale(r["high"])
        if r.get("low") is not None:
            en |= EN_LOW
            il.lo[i] = scale(r["low"])
        if r.get("rate_per_s") is not None:
            en |= EN_ROC
            il.roc[i] = scale(r["rate_per_s"])
        if r.get("plausible") is not None:
            en |= EN_PLAUS
            il.plaus_lo[i] = scale(r["plausible"][0])
            il.plaus_hi[i] = scale(r["plausible"][1])
        il.hyst[i] = scale(r.get("hysteresis", 0))
        il.ondelay[i] = r.get("on_delay", 1)
        il.en[i] = en


def from_sections(cls, sensor_list, il, startup):
    channels = channel_names(sensor_list)
    sensors = [s["name"] for s in sensor_list]
    sensor_of = [sensors.index(ch.split(".", 1)[0]) for ch in channels]
    return cls(
        channels,
        sensors,
        il["channels"],
        sensor_of,
        [s["stale_ms"] for s in sensor_list],
        estop=il["estop"],
        readback=il["readback"]["enabled"],
        readback_grace_ms=il["readback"]["grace_ms"],
        startup=startup,
        votes=il.get("vote", ()),
        site_trip=il.get("site_trip", True),
    )


def init_votes(self, votes, rules):
    """Voting groups: a member channel with a cause, or whose sensor has
    one, votes trip; the group trips at ``need`` votes. Causes of voted
    channels (and of sensors whose every ruled channel is voted) trip
    only through their group."""
    self.vote_names = [v["name"] for v in votes]
    self.vote_need = bytearray([v["need"] for v in votes])
    self.voted = bytearray(self.n)
    members = []
    start = []
    for v in votes:
        start.append(len(members))
        for ch in v["channels"]:
            i = self.channels.index(ch)
            members.append(i)
            self.voted[i] = 1
    start.append(len(members))
    self.vote_members = bytearray(members)
    self.vote_start = bytearray(start)
    self.n_votes = len(votes)
    self.svoted = bytearray(self.ns)
    for s in range(self.ns):
        ruled = [i for i in range(self.n) if self.sensor_of[i] == s and (rules.get(self.channels[i]) or self.voted[i])]
        if ruled and all(self.voted[i] for i in ruled):
            self.svoted[s] = 1
