"""The inference stage: windows of readings in, an anomaly score out.

    stage = InferenceStage(fw.channels, ["vib.accel_x_g"], window=64, hop=32,
                           infer=model_score, threshold=0.8, k=3)
    fw = firmware.start.firmware(hw, cfg, journal, inference=stage)

The loop hands each cycle's readings to ``submit``, which copies them into
a ring and never blocks or waits. When a window is complete it goes to a
one-slot mailbox; if the model is still busy with the previous one, the
older window is dropped and counted. ``infer(window)`` runs elsewhere:

* CPython (``firmware.infer.host``): a child process (``mode="process"``, the default). The model
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

from hal.compat import IS_MICROPYTHON


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
        self.mode = "task" if IS_MICROPYTHON else "process"

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
        """``mode``: "process" (the CPython default), "thread" or "task"."""
        if mode is None:
            mode = self.mode
        if IS_MICROPYTHON or mode == "task":
            runner = TaskRunner
        else:
            # the CPython runners live apart: on MicroPython their
            # bytecode would only take heap
            from firmware.infer import host

            runner = host.ThreadRunner if mode == "thread" else host.ProcessRunner
        self._runner = runner(self)
        self._runner.start()

    def stop(self):
        if self._runner is not None:
            self._runner.stop()
            self._runner = None


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
