"""Materialise the virtual matrix and call BLAS, or work from the buckets directly?

Usage::

    python benchmarks/bench_materialize_vs_direct.py [--n-in 1000] [--n-out 1000]
        [--batch 1 8 32 128 256] [--compression 0.125] [--repeats 7]

Times ``Z = A @ W`` for one hashed layer, float32, two ways, side by side in one
run (medians of ``--repeats``):

- **materialise + BLAS**: the package's path: ``materialize_tile`` writes W
  from the buckets, then NumPy's matmul (OpenBLAS) multiplies;
- **direct**: a Numba kernel that never writes W: for each column it hashes
  each entry once, reads ``s * w[h]`` and accumulates ``A[:, i] * value`` into
  the column, over the whole batch (parallel over columns).

Both compute the same product (checked). The ratio direct / materialise says
which wins at each batch size.
"""

import argparse
import statistics
import sys
import time

import numpy as np
from numba import njit, prange

from sk_hashednets._kernels._hashing import (
    bucket_of,
    column_key,
    finish_hash,
    is_negative,
    row_state,
    sign_seed,
)
from sk_hashednets._kernels._numba import materialize_tile


@njit(parallel=True, cache=True)
def direct_forward(A_T, bucket_weights, seed, sign_seed_, out_T):
    """``out_T = (A @ W).T`` computed from the buckets, W never written."""
    n_in, n_samples = A_T.shape
    n_out = out_T.shape[0]
    n_buckets = np.uint64(bucket_weights.shape[0])
    states = np.empty(n_in, dtype=np.uint64)
    sign_states = np.empty(n_in, dtype=np.uint64)
    for i in range(n_in):
        states[i] = row_state(seed, np.uint64(i))
        sign_states[i] = row_state(sign_seed_, np.uint64(i))
    for j in prange(n_out):
        key = column_key(np.uint64(j))
        acc = np.zeros(n_samples, dtype=out_T.dtype)
        for i in range(n_in):
            value = bucket_weights[bucket_of(finish_hash(states[i], key), n_buckets)]
            if is_negative(finish_hash(sign_states[i], key)):
                value = -value
            for n in range(n_samples):
                acc[n] += A_T[i, n] * value
        out_T[j, :] = acc


def median_time(fn, repeats):
    fn()  # warm-up (and JIT)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-in", type=int, default=1000)
    parser.add_argument("--n-out", type=int, default=1000)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32, 128, 256])
    parser.add_argument("--compression", type=float, default=0.125)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n_buckets = int(np.ceil(args.compression * args.n_in * args.n_out))
    w = rng.standard_normal(n_buckets).astype(np.float32)
    seed, s_seed = np.uint64(12345), sign_seed(12345)
    W = np.empty((args.n_in, args.n_out), dtype=np.float32)

    print(f"command: python {' '.join(sys.argv)}")
    print(f"layer {args.n_in} x {args.n_out}, {n_buckets} buckets, float32")
    print("| batch | materialise + BLAS (ms) | direct (ms) | direct / materialise |")
    print("|---:|---:|---:|---:|")
    for batch in args.batch:
        A = rng.standard_normal((batch, args.n_in)).astype(np.float32)
        A_T = np.ascontiguousarray(A.T)
        Z = np.empty((batch, args.n_out), dtype=np.float32)
        Z_T = np.empty((args.n_out, batch), dtype=np.float32)

        def materialise(A=A, Z=Z):
            materialize_tile(w, seed, s_seed, True, 0, W, 0, 1, 1)
            np.matmul(A, W, out=Z)

        def direct(A_T=A_T, Z_T=Z_T):
            direct_forward(A_T, w, seed, s_seed, Z_T)

        t_mat = median_time(materialise, args.repeats)
        t_dir = median_time(direct, args.repeats)
        np.testing.assert_allclose(Z_T.T, Z, rtol=1e-3, atol=1e-3)
        print(f"| {batch} | {1e3 * t_mat:.2f} | {1e3 * t_dir:.2f} | {t_dir / t_mat:.2f} |")


if __name__ == "__main__":
    main()
