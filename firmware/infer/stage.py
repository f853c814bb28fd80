"""The inference stage: windows of readings in, an anomaly score out.

    stage = InferenceStage(fw.channels, ["vib.accel_x_g"], window=64, hop=32,
                           infer=model_score, threshold=0.8, k=3)
    fw = firmware.start.firmware(hw, cfg, journal, inference=stage)

The loop hands each cycle's readings to ``submit``, which copies them into
a ring and never blocks or waits. When a window is complete it goes to a
one-slot mailbox; if the model is still busy with the previous one, the
older window is dropped and counted. ``infer(window)`` runs elsewhere:

* CPython: a child process (``mode="process"``, the default). The model
  cannot take the loop's GIL, and a model that hangs or crashes leaves the
  loop untouched. At most one window is in flight, so the pipe never fills
  and sending never blocks. ``mode="thread"`` runs it in a thread instead
  (the switch interval is lowered to 0.5 ms, yet a pure-Python model still
  competes for the GIL: measured in ``edgefw bench interlock``).
* MicroPython: an asyncio task; a model yields between layers
  (``infer`` may be a coroutine function), so the loop runs between them.

The stage can only *request* a trip: ``request`` is 1 after ``k`` windows
in a row scored above ``threshold``. The interlock reads it as one more
cause. Nothing here can clear or hold off a trip; a model that raises is
counted in ``errors`` and leaves ``request`` as it was.
"""

import array
import sys
import time

from hal.compat import IS_MICROPYTHON

_CPYTHON = not IS_MICROPYTHON


class InferenceStage:
    def __init__(self, all_channels, channels, window, hop, infer, threshold, k=1):
        self.idx = bytearray([all_channels.index(c) for c in channels])
        self.nch = len(channels)
        self.window = window
        self.hop = hop
        self.infer = infer
        self.threshold = threshold
        self.k = k
        self._ring = array.array("i", [0] * (window * self.nch))
        self._pos = 0
        self._filled = 0
        self._since = 0
        self._mail = None
        self.request = 0
        self.score = None
        self.over = 0
        self.windows = 0
        self.dropped = 0
        self.errors = 0
        self.last_error = None
        self._runner = None
        self.backend = None
        self.arena_bytes = None
        self.mode = "process" if _CPYTHON else "task"

    # --- loop side: never blocks ------------------------------------------
    def submit(self, slot, values, status):
        r = self._ring
        base = self._pos * self.nch
        for j in range(self.nch):
            r[base + j] = values[self.idx[j]]
        self._pos = (self._pos + 1) % self.window
        if self._filled < self.window:
            self._filled += 1
        self._since += 1
        if self._filled == self.window and self._since >= self.hop:
            self._since = 0
            # oldest first
            w = self._ring[self._pos * self.nch :] + self._ring[: self._pos * self.nch]
            if self._mail is not None:
                self.dropped += 1
            self._mail = w
        if self._runner is not None:
            self._runner.wake()

    def summary(self):
        return {
            "backend": self.backend,
            "arena_bytes": self.arena_bytes,
            "windows": self.windows,
            "score": self.score,
            "dropped": self.dropped,
            "errors": self.errors,
            # (last, max, total) seconds from hand-over to result, where the runner times it
            "latency": getattr(self, "latency", None),
        }

    # --- model side ---------------------------------------------------------
    def take(self):
        w = self._mail
        self._mail = None
        return w

    def result(self, score):
        self.score = score
        self.windows += 1
        if score > self.threshold:
            self.over += 1
            if self.over >= self.k:
                self.request = 1
        else:
            self.over = 0
            self.request = 0

    def failed(self, exc):
        self.errors += 1
        self.last_error = repr(exc)

    def start(self, mode=None):
        """``mode``: "thread" (the CPython default) or "task"."""
        if mode is None:
            mode = self.mode
        runners = {"thread": ThreadRunner, "task": TaskRunner, "process": ProcessRunner}
        self._runner = runners[mode](self)
        self._runner.start()

    def stop(self):
        if self._runner is not None:
            self._runner.stop()
            self._runner = None


class ThreadRunner:
    """CPython: the model runs in a daemon thread."""

    SWITCH_INTERVAL_S = 0.0005

    def __init__(self, stage):
        import threading

        self.stage = stage
        # kept on the stage: still there for the final summary after stop
        stage.latency = self.latency = [0.0, 0.0, 0.0]
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._work, name="edgefw-inference", daemon=True)
        self._saved_interval = None

    def start(self):
        self._saved_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._saved_interval, self.SWITCH_INTERVAL_S))
        self._thread.start()

    def wake(self):
        self._wake.set()

    def stop(self):
        # a hung model keeps its daemon thread; the loop does not wait for it
        self._stop = True
        self._wake.set()
        if self._saved_interval is not None:
            sys.setswitchinterval(self._saved_interval)

    def _work(self):
        st = self.stage
        while not self._stop:
            self._wake.wait()
            self._wake.clear()
            w = st.take()
            if w is None or self._stop:
                continue
            t0 = time.monotonic()
            try:
                st.result(st.infer(w))
            except Exception as e:
                st.failed(e)
            _timed(self.latency, time.monotonic() - t0)


class TaskRunner:
    """MicroPython (or any asyncio): the model runs as a task and yields."""

    def __init__(self, stage):
        import asyncio

        self.asyncio = asyncio
        self.stage = stage
        self._event = asyncio.Event()
        self._task = None

    def start(self):
        self._task = self.asyncio.create_task(self._work())

    def wake(self):
        self._event.set()

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _work(self):
        st = self.stage
        while True:
            await self._event.wait()
            self._event.clear()
            w = st.take()
            if w is None:
                continue
            try:
                r = st.infer(w)
                if hasattr(r, "send"):
                    r = await r
                st.result(r)
            except Exception as e:
                st.failed(e)


class ProcessRunner:
    """CPython: the model runs in a forked child process."""

    def __init__(self, stage):
        self.stage = stage
        stage.latency = self.latency = [0.0, 0.0, 0.0]
        self._sent = 0.0
        self._busy = False
        self._proc = None
        self._conn = None

    def start(self):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        self._conn = parent
        self._proc = ctx.Process(target=_child_main, args=(child, self.stage.infer), name="edgefw-inference", daemon=True)
        self._proc.start()
        child.close()

    def wake(self):
        # called every cycle from the loop: poll for a result, then hand
        # over the newest window if the child is idle; never waits
        st = self.stage
        c = self._conn
        if c is None:
            return
        try:
            if self._busy and c.poll(0):
                ok, val = c.recv()
                self._busy = False
                _timed(self.latency, time.monotonic() - self._sent)
                if ok:
                    st.result(val)
                else:
                    st.failed(val)
            if not self._busy and st._mail is not None:
                c.send(st.take())
                self._sent = time.monotonic()
                self._busy = True
        except (OSError, EOFError) as e:
            st.failed(e)
            self._conn = None

    def stop(self):
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(1)
            self._proc = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _timed(lat, dt):
    lat[0] = dt
    if dt > lat[1]:
        lat[1] = dt
    lat[2] += dt


def _child_main(conn, infer):
    while True:
        try:
            w = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send((True, infer(w)))
        except Exception as e:
            conn.send((False, repr(e)))
