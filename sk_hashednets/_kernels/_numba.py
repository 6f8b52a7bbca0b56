"""Numba CPU kernels: materialise virtual-matrix tiles, scatter gradients to buckets.

Plain functions of arrays and integers. Both are deterministic whatever the
number of threads: ``materialize_tile`` writes every entry independently, and
``scatter_bucket_grad`` gives each thread a fixed range of buckets, so every
bucket sums its entries in row-major order, whoever owns it.
"""

import numpy as np
from numba import njit, prange

from ._hashing import bucket_of, column_key, finish_hash, is_negative, row_state


@njit(cache=True)
def _column_keys(n_cols):
    keys = np.empty(n_cols, dtype=np.uint64)
    for c in range(n_cols):
        keys[c] = column_key(np.uint64(c))
    return keys


@njit(parallel=True, cache=True)
def materialize_tile(bucket_weights, seed, sign_seed, sign_hash, row_start, out):
    """Write rows ``row_start:row_start + out.shape[0]`` of the virtual matrix.

    Parameters
    ----------
    bucket_weights : ndarray of shape (n_buckets,)
        The layer's buckets, float32 or float64.
    seed, sign_seed : uint64
        Seeds of the bucket hash and of the sign hash.
    sign_hash : bool
        Whether to apply the sign hash.
    row_start : int
        Index of the first row of the tile in the virtual matrix.
    out : ndarray of shape (n_rows, n_out), C-contiguous
        Receives the tile, same dtype as ``bucket_weights``.
    """
    n_rows, n_cols = out.shape
    n_buckets = np.uint64(bucket_weights.shape[0])
    keys = _column_keys(n_cols)
    for r in prange(n_rows):
        i = np.uint64(row_start + r)
        state = row_state(seed, i)
        sign_state = row_state(sign_seed, i)
        for c in range(n_cols):
            value = bucket_weights[bucket_of(finish_hash(state, keys[c]), n_buckets)]
            if sign_hash and is_negative(finish_hash(sign_state, keys[c])):
                value = -value
            out[r, c] = value


@njit(parallel=True, cache=True)
def scatter_bucket_grad(grad_tile, seed, sign_seed, sign_hash, row_start, bucket_grad, n_parts):
    """Add a tile of virtual-weight gradients into the bucket gradient.

    ``bucket_grad[h(i, j)] += s(i, j) * grad_tile[i - row_start, j]``.

    Parameters
    ----------
    grad_tile : ndarray of shape (n_rows, n_out)
        Gradient with respect to rows ``row_start:row_start + n_rows`` of the
        virtual matrix.
    seed, sign_seed : uint64
        Seeds of the bucket hash and of the sign hash.
    sign_hash : bool
        Whether to apply the sign hash.
    row_start : int
        Index of the first row of the tile in the virtual matrix.
    bucket_grad : ndarray of shape (n_buckets,)
        Accumulated into, in place.
    n_parts : int
        Number of bucket ranges worked on in parallel (the thread count); the
        result does not depend on it.
    """
    n_rows, n_cols = grad_tile.shape
    n_buckets = bucket_grad.shape[0]
    n_parts = max(1, min(n_parts, n_buckets))
    keys = _column_keys(n_cols)
    n_buckets_u = np.uint64(n_buckets)
    # Thread p owns buckets [lo, hi): no two threads write the same bucket, and
    # each bucket adds its terms in row-major order, so the sum is the same bit
    # for bit for any number of threads. Each thread hashes every entry.
    for part in prange(n_parts):
        lo = np.uint64(part * n_buckets // n_parts)
        hi = np.uint64((part + 1) * n_buckets // n_parts)
        for r in range(n_rows):
            i = np.uint64(row_start + r)
            state = row_state(seed, i)
            sign_state = row_state(sign_seed, i)
            for c in range(n_cols):
                b = bucket_of(finish_hash(state, keys[c]), n_buckets_u)
                if b >= lo and b < hi:
                    g = grad_tile[r, c]
                    if sign_hash and is_negative(finish_hash(sign_state, keys[c])):
                        g = -g
                    bucket_grad[b] += g
