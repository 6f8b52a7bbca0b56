"""What OpenBLAS's threads do after a product: CPU time of the process while it sleeps.

Usage::

    python benchmarks/openblas_spin.py [--repeats 5] [--sleep-ms 50] [--wake]
    OPENBLAS_THREAD_TIMEOUT=4 python benchmarks/openblas_spin.py

After a multi-threaded GEMM (the 4096 x 4096 weight gradient of a batch of
256, as in a training step), the main thread sleeps for ``--sleep-ms``; the
process's CPU time over that sleep is what OpenBLAS's idle threads burn
spinning, which a Numba kernel started then would share the cores with.
Three cases, each repeated: the plain GEMM; the GEMM followed by
``openblas_set_num_threads(1)`` through threadpoolctl (restored after the
sleep), as a library could call it around its kernels; and the GEMM followed
by a pause of ``PAUSE_S`` before the measured sleep. A fourth case runs the
GEMM's parallel section on sk_hashednets' pool of sleeping threads
(``sk_hashednets._kernels._blas_pool``, as a large CPU fit does), after a pause
of ``PAUSE_S`` that lets OpenBLAS's own threads, spinning from the case before,
fall asleep. ``OPENBLAS_THREAD_TIMEOUT`` is read when NumPy loads OpenBLAS: set
it before starting Python.

``--wake`` times instead what the pool's sleep costs: the round trip of a
parallel section of two jobs that do nothing (job 0 on the calling thread, job
1 on a worker that must be woken), back to back and after pauses of 0.1, 1 and
10 ms (percentiles of 200 sections each).
"""

import argparse
import os
import statistics
import time

import numpy as np
from threadpoolctl import ThreadpoolController

from sk_hashednets._kernels._blas_pool import blas_sections_on_pool

#: The pause after which OpenBLAS's threads sleep (2**28 cycles by default).
PAUSE_S = 0.3


def numpy_openblas():
    """threadpoolctl's controller of NumPy's OpenBLAS, or None."""
    for controller in ThreadpoolController().lib_controllers:
        if controller.internal_api == "openblas" and "numpy" in controller.filepath:
            return controller
    return None


def cpu_ms_while_sleeping(gemm, sleep_s, before_sleep=None, after_sleep=None, run=None):
    """CPU ms of the whole process while the main thread sleeps right after ``gemm``.

    ``run``, if given, runs ``gemm`` in its stead (``run(gemm)``).
    """
    if run is None:
        gemm()
    else:
        run(gemm)
    if before_sleep is not None:
        before_sleep()
    start = time.process_time()
    time.sleep(sleep_s)
    spent = time.process_time() - start
    if after_sleep is not None:
        after_sleep()
    return 1e3 * spent


def on_pool(gemm):
    """Run ``gemm`` with OpenBLAS's sections on the package's pool, after a pause."""
    time.sleep(PAUSE_S)
    with blas_sections_on_pool() as used:
        if not used:
            raise SystemExit("NumPy's OpenBLAS takes no callback here (or runs on 1 thread).")
        gemm()


def section_round_trips(pauses_ms=(0, 0.1, 1, 10), n=200):
    """Percentiles (us) of a two-job section's round trip on the pool, after each pause."""
    from numba import cfunc, types

    from sk_hashednets._kernels import _blas_pool

    @cfunc(types.void(types.int32, types.voidptr, types.int32))
    def nothing(slot, job, data):
        pass

    with blas_sections_on_pool() as used:
        if not used:
            raise SystemExit("NumPy's OpenBLAS takes no callback here (or runs on 1 thread).")
        pool = _blas_pool._pool
    jobs = np.zeros(1024, np.uint8)  # two jobs' worth of OpenBLAS's queue entries
    rows = []
    for pause_ms in pauses_ms:
        times = []
        for _ in range(n):
            start = time.perf_counter_ns()
            _blas_pool._run_section(
                pool.state.ctypes.data,
                pool.sync.ctypes.data,
                nothing.address,
                2,
                8,
                jobs.ctypes.data,
                0,
            )
            times.append((time.perf_counter_ns() - start) / 1e3)
            if pause_ms:
                time.sleep(pause_ms / 1e3)
        rows.append((pause_ms, *np.percentile(times, [50, 90, 99])))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sleep-ms", type=float, default=50)
    parser.add_argument(
        "--wake", action="store_true", help="time the pool's section round trips instead"
    )
    args = parser.parse_args()
    if args.wake:
        print("round trip of a two-job section on sk_hashednets' pool, us")
        print()
        print("| pause before (ms) | median | 90th percentile | 99th percentile |")
        print("|---:|---:|---:|---:|")
        for pause_ms, p50, p90, p99 in section_round_trips():
            print(f"| {pause_ms:g} | {p50:.0f} | {p90:.0f} | {p99:.0f} |")
        return
    blas = numpy_openblas()
    if blas is None:
        raise SystemExit("NumPy's BLAS is not OpenBLAS: nothing to measure.")
    threads = blas.num_threads
    rng = np.random.default_rng(0)
    A = rng.standard_normal((256, 4096), dtype=np.float32)
    D = rng.standard_normal((256, 4096), dtype=np.float32)
    G = np.empty((4096, 4096), np.float32)

    def gemm():
        np.matmul(A.T, D, out=G)

    sleep_s = args.sleep_ms / 1e3
    cases = {
        "after the GEMM": {},
        "after the GEMM, BLAS set to 1 thread": dict(
            before_sleep=lambda: blas.set_num_threads(1),
            after_sleep=lambda: blas.set_num_threads(threads),
        ),
        f"after the GEMM and {PAUSE_S} s": dict(before_sleep=lambda: time.sleep(PAUSE_S)),
        "after the GEMM on sk_hashednets' pool": dict(run=on_pool),
    }
    spent = {name: [] for name in cases}
    gemm()
    for _ in range(args.repeats):
        for name, hooks in cases.items():
            spent[name].append(cpu_ms_while_sleeping(gemm, sleep_s, **hooks))
    print(
        f"{blas.filepath}: OpenBLAS {blas.version}, {threads} threads; "
        f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset')}"
    )
    print(f"CPU ms of the process during a {args.sleep_ms:g} ms sleep, medians of {args.repeats}")
    print()
    print("| sleep | CPU ms |")
    print("|---|---:|")
    for name, values in spent.items():
        print(f"| {name} | {statistics.median(values):.1f} |")


if __name__ == "__main__":
    main()
