"""Cost of one kernel launch of the CUDA backend on the CPU emulation used by the tests.

Usage::

    python benchmarks/bench_cuda_emulation.py [--launches 200]

The real ``CUDABackend`` under the CuPy test double (``tests/fake_cupy``): each
kernel compiled by g++ with ``tests/cuda_emulation/cuda_emulation.h``, one
emulated multiprocessor (grids of at most 32 blocks of 256 threads), each
block's threads run as coroutines on one CPU thread. Prints the median time of
one backend call (argument checks, the ctypes call and the emulated grid) for
a tiny tile (the fixed cost of a launch) and for tiles of the GPU tests' sizes.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fake_cupy  # noqa: E402


def median_call_us(call, launches):
    call()  # compiles, or loads the cached library
    times = []
    for _ in range(launches):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=200)
    args = parser.parse_args(argv)
    with fake_cupy.installed() as cp:
        from sk_hashednets._kernels._backend import LayerHash
        from sk_hashednets._kernels._cuda import CUDABackend

        gpu = CUDABackend()
        rng = np.random.default_rng(0)
        cases = []
        for shape, n_buckets in [((1, 1), 16), ((64, 256), 2048), ((300, 517), 100_003)]:
            w = cp.asarray(rng.standard_normal(n_buckets).astype(np.float32))
            grad = cp.asarray(rng.standard_normal(shape).astype(np.float32))
            out = cp.empty(shape, np.float32)
            acc = cp.zeros(n_buckets, np.float32)
            name = f"{shape[0]}x{shape[1]} tile, {n_buckets} buckets"
            h = LayerHash.for_layer(1, sign_hash=True, hashing="element", n_buckets=n_buckets)
            cases.append(
                (
                    f"materialize_tile, {name}",
                    lambda h=h, w=w, out=out: gpu.materialize_tile(h, w, out),
                )
            )
            kind = "shared" if n_buckets * 4 <= 48 * 1024 else "global"
            cases.append(
                (
                    f"scatter ({kind}), {name}",
                    lambda h=h, g=grad, a=acc: gpu.scatter_bucket_grad(h, g, a, None),
                )
            )
        for label, call in cases:
            fake_cupy.LAUNCHES.clear()
            us = median_call_us(call, args.launches)
            grid = fake_cupy.LAUNCHES[-1][1][0]
            print(f"{label:<50} {grid:>3} blocks x 256 threads: {us:9.1f} us per launch")


if __name__ == "__main__":
    main()
