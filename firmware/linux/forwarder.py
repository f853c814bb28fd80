"""Runs the uplink beside the loop (CPython): a thread that pumps the
journal to the broker every ``period_ms``.

    fwd = Forwarder(journal, uplink)
    fwd.start() ... fwd.stop(drain_s=2)

The journal is shared with the loop's record stage, so both take the
journal's lock, each for a short, bounded section: the record stage to
append one record, this thread to read one batch or move the ack cursor.
No network call is made under it (``Uplink`` takes it itself), so a
broker that hangs, refuses or half-opens holds up this thread only, never
a cycle. The safety path takes no lock at all.

The interpreter's switch interval is lowered while the thread runs (as
for the inference thread): CPU work here (encoding, sealing) then hands
the GIL back to the loop within 0.5 ms rather than 5.

MicroPython has no such thread: there ``Uplink.pump`` runs between
cycles (``firmware.uplink.coop``).
"""

import sys
import threading
import time


class Forwarder:
    SWITCH_INTERVAL_S = 0.0005
    PENDING_EVERY_S = 0.5

    def __init__(self, journal, uplink, period_ms=20, interlock=None):
        self.j = journal
        self.up = uplink
        # the gateway's trip commands go to it (firmware.uplink.command);
        # without one, what the client keeps is someone else's to take (a
        # gateway's pull requests), bounded by the client
        self.il = interlock
        self.period_s = period_ms / 1000
        self._stop = threading.Event()
        self._thread = None
        self._saved_interval = None

    def start(self):
        self.j.lock = threading.Lock()
        self._saved_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._saved_interval, self.SWITCH_INTERVAL_S))
        self._thread = threading.Thread(target=self._run, name="edgefw-uplink", daemon=True)
        self._thread.start()

    def _count_pending(self):
        with self.j.lock:
            self.up.pending_records = self.j.pending()

    def _run(self):
        last = 0.0
        while not self._stop.is_set():
            self.up.pump()
            if self.il is not None and self.up.client.commands:
                from firmware.uplink.command import take

                # no updates over the network here: nothing else is kept
                take(self.up, self.il, others=False)
            now = time.monotonic()
            if now - last >= self.PENDING_EVERY_S:
                self._count_pending()
                last = now
            self._stop.wait(self.period_s)

    def stop(self, drain_s=0):
        """Stop the thread; with ``drain_s``, first sync the journal and
        try that long to send (and have receipted) what is left. Returns
        the number of records still pending, which stay in the journal
        for the next start."""
        self._stop.set()
        if self._thread is not None:
            # the thread's pump is bounded by the client's timeouts
            self._thread.join(max(5.0, self.up.ack_timeout_ms / 1000 + 1))
        if drain_s:
            self.up.drain(int(drain_s * 1000))
        self._count_pending()
        try:
            self.up.client.disconnect()
        except Exception:
            pass
        if self._saved_interval is not None:
            sys.setswitchinterval(self._saved_interval)
        return self.up.pending_records
