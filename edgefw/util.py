"""Small helpers shared by the host tools."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def version():
    """The installed edgefw's version, or why there is none."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edgefw")
    except PackageNotFoundError:
        return "unknown (not installed)"


def calm_gc():
    """For ``edgefw ingest``, once its start-up is done. Each batch decodes
    thousands of small records: maps and lists that hold no cycles. At the
    default thresholds the cyclic collector runs every 700 allocations and
    walks every batch still staged: draining a 1,000,000-record backlog
    took ingest 10.7-11.2 s of CPU before, 8.6-9.7 s after (two runs each,
    quiet machine). What start-up made is frozen out of those walks, and
    the youngest generation may grow to 100,000 objects first: a batch's
    records are freed by reference counting long before."""
    import gc

    gc.freeze()
    gc.set_threshold(100000, 20, 100)


def end_mqtt(client):
    """Disconnect a paho client and wait for its network thread. paho's
    thread clears its own handle as it ends: one that ends between
    loop_stop's check and its join makes loop_stop raise AttributeError,
    with the thread already gone (all loop_stop waits for)."""
    client.disconnect()
    try:
        client.loop_stop()
    except AttributeError:
        pass
