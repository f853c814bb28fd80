"""The interlock's fault scenarios (sim/scenarios/faults), run on the
target from start to end, with what a report needs to plot them."""

import os

import sim
from bench.probes._json import plain

FAULTS = sim.__file__.rsplit("/", 1)[0] + "/scenarios/faults"


def _limits():
    import json

    with open(FAULTS + "/config.json") as f:
        chans = json.load(f)["interlock"]["channels"]
    return dict((ch, dict((k, v) for k, v in c.items() if k in ("high", "low"))) for ch, c in chans.items())


def names():
    return sorted(n[:-5] for n in os.listdir(FAULTS) if n.endswith(".json") and n != "config.json")


def run(name, journal, window_ms=50):
    """Run one fault scenario: the trips, what it expects, the loop
    period, every pin transition, and the journal's records."""
    return run_file(FAULTS + "/" + name + ".json", journal, name, window_ms)


def run_file(path, journal, name=None, window_ms=50):
    """As ``run``, for any scenario file (e.g. one an Injector wrote)."""
    import asyncio

    from firmware.app import build
    from firmware.store.journal import Journal

    # short windows: the report's timeline shows the seconds around a trip
    fw, sc = build("sim", FAULTS + "/config.json", path, journal, overrides={"record": {"window_ms": window_ms}})
    asyncio.run(fw.run(until_us=sc["duration_us"]))
    fw.journal.close()
    recs = [plain(r) for _s, r in Journal(journal).records()]
    return {
        "name": name or path.rsplit("/", 1)[-1][:-5],
        "trips": fw.trips,
        "expect": sc["expect"],
        "period_us": fw.period_us,
        "duration_us": sc["duration_us"],
        "pins": [[t, n, v] for t, n, v in fw.hw.gpio.transitions()],
        "records": recs,
        "limits": _limits(),
    }
