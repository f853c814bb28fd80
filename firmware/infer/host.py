"""The inference stage's runners on CPython (``InferenceStage.start``
picks them there): a thread, or a forked child process. Apart from
``firmware.infer.stage`` so that MicroPython never loads them."""

import sys
import time


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
