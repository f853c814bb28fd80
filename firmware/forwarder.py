"""Runs the uplink beside the loop (CPython): a thread that pumps the
journal to the broker every ``period_ms``.

    fwd = Forwarder(journal, uplink)
    fwd.start() ... fwd.stop()

The journal is shared with the loop's record stage, so both take the
journal's lock; the safety path never does (it runs before the record
stage and touches no journal). A broker that hangs costs this thread its
ack timeout, never the loop a cycle.

MicroPython: umqtt.simple blocks for each PUBACK, so the uplink must not
share the loop's task; on ESP32 run ``Uplink.pump`` in a ``_thread``
beside the loop the same way. This class is CPython's.
"""

import threading
import time


class Forwarder:
    def __init__(self, journal, uplink, period_ms=20):
        self.j = journal
        self.up = uplink
        self.period_s = period_ms / 1000
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self.j.lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="edgefw-uplink", daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            with self.j.lock:
                self.up.pump()
            self._stop.wait(self.period_s)

    def stop(self, drain_s=0):
        """Stop; with ``drain_s`` first try that long to send what is left."""
        if drain_s:
            with self.j.lock:
                self.j.flush()
            t0 = time.monotonic()
            while time.monotonic() - t0 < drain_s:
                with self.j.lock:
                    self.up.pump()
                    if self.j.pending() == 0:
                        break
                time.sleep(self.period_s)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.up.client.disconnect()
        except Exception:
            pass
