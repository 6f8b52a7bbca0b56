"""Threads for the cores that are free: fewer while other processes keep cores busy.

Numba's kernels and OpenBLAS's GEMM split each step among their threads and
wait for all of them. With more threads than free cores, a step waits for a
thread that is not running: beside one busy process on 2 cores, the quick
start's fits took 10 to 20 times as long (``docs/performance.md``, measured by
``benchmarks/contention.py``). For the length of a CPU fit,
:func:`threads_for_free_cores` lowers Numba's and the BLAS libraries' thread
counts to the cores that no other process is running on. It never raises a
count, so a limit the user set (``NUMBA_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
threadpoolctl, joblib's workers) stays in force.

Numba's thread count belongs to the calling thread, the BLAS libraries' to the
process; and OpenBLAS (0.3.30, pthreads) ignores a raise of its thread count
made from a thread other than the main one. A fit in another thread (a web
server's, joblib's threading backend) would then leave BLAS lowered for the
whole process after it: there, only Numba's threads are lowered.
"""

import functools
import glob
import os
import threading
import time
from contextlib import contextmanager

import numba
from threadpoolctl import ThreadpoolController


def _running_threads(stat_paths):
    """How many of the ``/proc/.../stat`` files say their task is running (state R)."""
    running = 0
    for path in stat_paths:
        try:
            with open(path) as f:
                stat = f.read()
        except OSError:  # the task ended meanwhile
            continue
        running += stat[stat.rindex(")") + 2] == "R"
    return running


def busy_elsewhere(samples=3, interval=0.001):
    """Threads of other processes running now (Linux), the most of a few looks; 0 elsewhere.

    ``procs_running`` of ``/proc/stat`` counts every runnable thread on the
    machine, this process's included; those of this process are taken off. The
    most of the looks, not the least: a thread too many costs a fit far more
    (10 to 20 times) than a thread too few (at most the share of that core).
    """
    counts = []
    for sample in range(samples):
        try:
            with open("/proc/stat") as f:
                line = next(line for line in f if line.startswith("procs_running"))
        except (OSError, StopIteration):
            return 0
        own = _running_threads(glob.glob("/proc/self/task/*/stat"))
        counts.append(max(0, int(line.split()[1]) - own))
        if sample + 1 < samples:
            time.sleep(interval)
    return max(counts)


#: How long a count of the free cores stands (s). Counting takes three looks a
#: millisecond apart, 3 to 5 ms: a stream of small ``partial_fit`` calls (a
#: minibatch each, a few ms of work) paid it at every call, and now counts
#: once in this time.
MAX_AGE_S = 1.0

_counted = (-float("inf"), 0)  # (time.monotonic() of the count, the count)


def free_cores():
    """Cores this process may run on, less those that other processes keep busy; at least 1.

    Counted at most once in :data:`MAX_AGE_S` seconds: a call within that
    time of the last count returns it again (not in a process forked since,
    which counts afresh).
    """
    global _counted
    counted_at, count = _counted
    now = time.monotonic()
    if now - counted_at < MAX_AGE_S:
        return count
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    count = max(1, cores - busy_elsewhere())
    _counted = (time.monotonic(), count)
    return count


def _forget_count():
    """A forked child (multiprocessing's workers) counts afresh, not with its parent's count."""
    global _counted
    _counted = (-float("inf"), 0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_count)


@contextmanager
def threads_for_free_cores():
    """Numba's and BLAS's threads lowered to :func:`free_cores` inside the block, then restored."""
    previous = numba.get_num_threads()
    n_threads = free_cores()
    if n_threads >= previous:
        yield
        return
    controller = _blas_controller()
    blas = {
        info["prefix"]: min(n_threads, info["num_threads"])
        for info in controller.info()
        if info["user_api"] == "blas"
    }
    if threading.current_thread() is not threading.main_thread():
        blas = {}  # could not be restored from here (module docstring)
    numba.set_num_threads(n_threads)
    try:
        with controller.limit(limits=blas):
            yield
    finally:
        numba.set_num_threads(previous)


@functools.cache
def _blas_controller():
    """The BLAS libraries loaded when the first fit lowers threads, found once.

    Finding them reads the process's memory map, 6 ms a time: a loop of small
    ``partial_fit`` calls paid it twice per call. A BLAS library loaded later
    is not lowered (it keeps its own limit).
    """
    return ThreadpoolController().select(user_api="blas")
