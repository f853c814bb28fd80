"""What the wasm32 MicroPython port lacks, supplied before edgefw runs
(run.mjs executes this file, then ``_edgefw_run``).

- ``asyncio``: the port's own is driven by JavaScript timers and has no
  ``run``; a small scheduler of the same API (run, create_task, sleep,
  sleep_ms, gather, Event, CancelledError, current_task) replaces it.
- ``os.getenv`` and ``os.urandom`` (the environment and a seed come from
  node).

With ``--step`` (run.mjs) the script only creates tasks; node then runs
them one step per call (``_edgefw_step``): between calls is the only
place this port collects garbage (a collection asked for inside a call
waits until it returns, and the heap grows instead), so a heap figure
taken in a task is then the live heap plus that step's garbage.

Anything raised by the program is caught here, and the heap is unlocked
before this returns: an exception that leaves the port with the heap
locked would spin forever.
"""

import sys
import time

import micropython

_ticks = time.ticks_us
_tdiff = time.ticks_diff
_tadd = time.ticks_add


class _Asyncio:
    """The asyncio subset edgefw and its tests use."""


class CancelledError(BaseException):
    pass


_PARK = object()  # yielded by a task that waits to be woken
_queue = []  # [due_ticks, seq, task, token]
_seq = [0]
_cur = [None]


def _schedule(task, delay_us=0):
    if task.done:
        return
    task.token += 1
    _seq[0] += 1
    _queue.append([_tadd(_ticks(), delay_us), _seq[0], task, task.token])


class Task:
    def __init__(self, coro):
        self.coro = coro
        self.done = False
        self.result = None
        self.error = None
        self.waiters = []
        self.pending = None
        self.token = 0

    def __iter__(self):
        if not self.done:
            self.waiters.append(_cur[0])
            yield _PARK
        if self.error is not None:
            raise self.error
        return self.result

    __await__ = __iter__

    def cancel(self):
        if self.done:
            return False
        self.pending = CancelledError()
        _schedule(self)
        return True

    def _finish(self, result, error):
        self.done = True
        self.result = result
        self.error = error
        for w in self.waiters:
            _schedule(w)
        if error is not None and not self.waiters and not isinstance(error, CancelledError) and self is not _main[0]:
            print("Task exception wasn't retrieved")
            sys.print_exception(error)
            _lost[0] += 1


_main = [None]
_lost = [0]  # task exceptions nobody retrieved


def _step(task):
    _cur[0] = task
    exc = task.pending
    task.pending = None
    try:
        y = task.coro.throw(exc) if exc is not None else task.coro.send(None)
    except StopIteration as e:
        task._finish(e.value, None)
    except BaseException as e:  # noqa: B036 - a task's end, whatever it was
        task._finish(None, e)
    else:
        if y is not _PARK:
            _schedule(task, y or 0)
    _cur[0] = None


def create_task(coro):
    t = Task(coro)
    _schedule(t)
    return t


def current_task():
    return _cur[0]


def _next():
    # run the task due first (waiting for it if need be)
    best = 0
    for i in range(1, len(_queue)):
        a, b = _queue[i], _queue[best]
        d = _tdiff(a[0], b[0])
        if d < 0 or (d == 0 and a[1] < b[1]):
            best = i
    due, _, task, token = _queue.pop(best)
    wait = _tdiff(due, _ticks())
    if wait > 0:
        time.sleep_us(wait)
    if token == task.token and not task.done:
        _step(task)


def run(coro):
    main = create_task(coro)
    _main[0] = main
    while not main.done:
        if not _queue:
            raise RuntimeError("asyncio.run: every task waits and nothing can wake one")
        _next()
    _main[0] = None
    if main.error is not None:
        raise main.error
    return main.result


def sleep(seconds):
    yield int(seconds * 1000000) if seconds > 0 else None


def sleep_ms(ms):
    yield ms * 1000 if ms > 0 else None


async def gather(*aws, return_exceptions=False):
    tasks = [a if isinstance(a, Task) else create_task(a) for a in aws]
    out = []
    for t in tasks:
        try:
            out.append(await t)
        except Exception as e:
            if not return_exceptions:
                raise
            out.append(e)
    return out


class Event:
    def __init__(self):
        self.state = False
        self.waiting = []

    def is_set(self):
        return self.state

    def set(self):
        self.state = True
        for t in self.waiting:
            _schedule(t)
        self.waiting = []

    def clear(self):
        self.state = False

    def wait(self):
        if not self.state:
            self.waiting.append(_cur[0])
            yield _PARK
        return True


_asyncio = _Asyncio()
for _name in ("CancelledError", "Task", "create_task", "current_task", "run", "sleep", "sleep_ms", "gather", "Event"):
    setattr(_asyncio, _name, globals()[_name])


def _edgefw_setup(call):
    import json
    import os
    import random

    c = json.loads(call)
    sys.modules["asyncio"] = _asyncio
    env = c["env"]
    random.seed(c["seed"])

    def getenv(key, default=None):
        return env.get(key, default)

    def urandom(n):
        return bytes(random.getrandbits(8) for _ in range(n))

    os.getenv = getenv
    os.urandom = urandom
    os.chdir(c["cwd"])
    sys.path[:] = ["", ".frozen", c["cwd"]]
    sys.argv[:] = c["argv"]
    return c


def _edgefw_step():
    """--step: run one task step and return to JavaScript (1), or 0 when
    no task is left, or 2 when one ended in an exception nobody awaited;
    this port collects garbage only between such calls."""
    if not _queue:
        return 2 if _lost[0] else 0
    try:
        _next()
    finally:
        _edgefw_unlock()
    return 1


def _edgefw_unlock():
    micropython.heap_lock()
    while micropython.heap_unlock():
        pass


def _edgefw_run(call):
    c = _edgefw_setup(call)
    code = 0
    try:
        try:
            if c["kind"] == "-c":
                exec(c["target"], {"__name__": "__main__"})
            else:
                path = c["target"]
                if c["kind"] == "-m":
                    path = path.replace(".", "/") + ".py"
                with open(path) as f:
                    src = f.read()
                exec(src, {"__name__": "__main__", "__file__": path})
        finally:
            _edgefw_unlock()
    except SystemExit as e:
        code = e.args[0] if e.args else 0
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code)
            code = 1
    except BaseException as e:  # noqa: B036 - reported, then the exit status says so
        sys.print_exception(e)
        code = 1
    return code
