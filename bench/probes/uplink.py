"""The uplink on the target: a scenario's journal forwarded through an
MQTT broker to ingest, receipts on. MicroPython runs it in the loop's
idle time (firmware.uplink.coop), CPython in a thread beside the loop
(firmware.linux.forwarder), each as the firmware does."""


def forward(board, broker, device_id, key_hex, journal, duration_s=2.0, drain_ms=8000):
    """Run the firmware in real time for the scenario (the sim board's
    e-stop press) or ``duration_s`` (a real board), the uplink to
    ``broker`` (``HOST:PORT``), then drain it: the uplink's counters and
    how many records the journal holds."""
    import asyncio
    import json
    import sys

    from firmware import app

    sim = board == "sim"
    cfg = {"device_id": device_id, "uplink": {"enabled": True, "broker": broker, "batch_ms": 200, "key_file": journal + ".key"}}
    scenario = None
    if sim:
        import sim as _sim

        faults = _sim.__file__.rsplit("/", 1)[0] + "/scenarios/faults"
        with open(faults + "/config.json") as f:
            base = json.load(f)
        base.update(cfg)
        cfg = base
        scenario = faults + "/estop_press.json"
    with open(journal + ".key", "w") as f:
        f.write(key_hex)
    with open(journal + ".json", "w") as f:
        json.dump(cfg, f)
    fw, sc = app.build(board, journal + ".json", scenario, journal, speed=1.0)
    if sys.implementation.name == "micropython":
        up = app.start_uplink(fw)
        fwd = None
    else:
        from firmware.linux.run import start_forwarder

        class _Args:
            config = journal + ".json"
            broker = None

        fwd = start_forwarder(fw, _Args)
        up = fwd.up
    until = sc["duration_us"] if sc else int(duration_s * 1000000)
    try:
        asyncio.run(fw.run(until_us=until))
    finally:
        fw.safe()
    if fwd is not None:
        fwd.stop(drain_s=drain_ms / 1000)
    else:
        up.drain(drain_ms)
    fw.journal.close()
    s = up.stats()
    return {"uplink": s, "seq": fw.journal.next_seq - 1, "trips": fw.trips}
