"""Real-time settings for the loop's thread (Linux, CPython).

    from firmware.linux.rt import enable, disable
    enable(priority=80)      # this thread SCHED_FIFO 80, memory locked
    ...
    disable()

``enable`` puts the calling thread (the one that runs the loop) under
``SCHED_FIFO`` at ``priority`` with ``SCHED_RESET_ON_FORK``: threads and
processes it starts afterwards (the uplink, the metrics endpoint, the
model's process) run at normal priority, so a busy model cannot starve
the loop and the loop's priority is not handed on. ``mlockall`` locks the
process's pages now and later, so no page fault stalls a cycle. Needs
root or ``CAP_SYS_NICE`` (and ``CAP_IPC_LOCK`` or a large enough
``RLIMIT_MEMLOCK``); the errors say so.
"""

import ctypes
import ctypes.util
import os

MCL_CURRENT = 1
MCL_FUTURE = 2


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def enable(priority=80, lock=True):
    """Raises OSError (EPERM without the privilege, EINVAL for a priority
    outside 1..99) and leaves the thread as it was."""
    lo, hi = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
    if not lo <= priority <= hi:
        raise OSError(22, "SCHED_FIFO priority must be %d..%d, got %r" % (lo, hi, priority))
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except PermissionError as e:
        raise OSError(e.errno, "SCHED_FIFO needs root or CAP_SYS_NICE (the service unit grants it)")
    if lock and _libc().mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        err = ctypes.get_errno()
        disable(unlock=False)
        raise OSError(err, "mlockall: %s (needs CAP_IPC_LOCK or LimitMEMLOCK=infinity)" % os.strerror(err))
    return {"policy": "SCHED_FIFO", "priority": priority, "mlockall": bool(lock)}


def disable(unlock=True):
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    if unlock:
        _libc().munlockall()


def current():
    """(policy name, priority) of the calling thread."""
    pol = os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO", os.SCHED_RR: "SCHED_RR"}
    return names.get(pol, str(pol)), os.sched_getparam(0).sched_priority
