"""Numba CPU kernels: materialise virtual-matrix tiles, scatter gradients to buckets.

Plain functions of arrays and integers. Both are deterministic whatever the
number of threads: ``materialize_tile`` writes every entry independently, and
``scatter_bucket_grad`` hashes in parallel but sums in a fixed order.
"""

import numpy as np
from numba import njit, prange

from ._hashing import BLOCK_SIZE, bucket_of, column_key, finish_hash, is_negative, row_state


@njit(cache=True)
def _column_keys(col_start, n_cols):
    keys = np.empty(n_cols, dtype=np.uint64)
    for c in range(n_cols):
        keys[c] = column_key(np.uint64(col_start + c))
    return keys


@njit(parallel=True, cache=True)
def materialize_tile(bucket_weights, seed, sign_seed, sign_hash, row_start, out, col_start=0):
    """Write the block of the virtual matrix at ``(row_start, col_start)`` into ``out``.

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
    out : ndarray of shape (n_rows, n_cols), C-contiguous
        Receives rows ``row_start:row_start + n_rows`` and columns
        ``col_start:col_start + n_cols``, same dtype as ``bucket_weights``.
    col_start : int, default=0
        Index of the first column of the tile in the virtual matrix.
    """
    n_rows, n_cols = out.shape
    n_buckets = np.uint64(bucket_weights.shape[0])
    keys = _column_keys(col_start, n_cols)
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
def _hash_and_sign_tile(grad_tile, seed, sign_seed, sign_hash, row_start, n_buckets, buckets):
    n_rows, n_cols = grad_tile.shape
    keys = _column_keys(0, n_cols)
    for r in prange(n_rows):
        i = np.uint64(row_start + r)
        state = row_state(seed, i)
        sign_state = row_state(sign_seed, i)
        for c in range(n_cols):
            buckets[r, c] = bucket_of(finish_hash(state, keys[c]), n_buckets)
            if sign_hash and is_negative(finish_hash(sign_state, keys[c])):
                grad_tile[r, c] = -grad_tile[r, c]


@njit(cache=True)
def _accumulate(buckets, values, bucket_grad):
    n_rows, n_cols = values.shape
    for r in range(n_rows):
        for c in range(n_cols):
            bucket_grad[buckets[r, c]] += values[r, c]


@njit(cache=True)
def _block_start_and_signs(state, sign_state, j, n_buckets):
    """Start bucket and sign bits of the block holding column j (block hashing)."""
    key = column_key(np.uint64(j // BLOCK_SIZE))
    start = np.int64(bucket_of(finish_hash(state, key), np.uint64(n_buckets)))
    return start, finish_hash(sign_state, key)


@njit(cache=True)
def _block_bucket(start, offset, n_buckets):
    bucket = start + offset
    return bucket if bucket < n_buckets else bucket % n_buckets


@njit(parallel=True, cache=True)
def materialize_tile_block(bucket_weights, seed, sign_seed, sign_hash, row_start, out, col_start=0):
    """:func:`materialize_tile` under block hashing.

    Each run of ``BLOCK_SIZE`` entries of a row copies consecutive buckets
    (circularly) from a hashed start, with one sign bit per entry.
    """
    n_rows, n_cols = out.shape
    n_buckets = bucket_weights.shape[0]
    for r in prange(n_rows):
        i = np.uint64(row_start + r)
        state = row_state(seed, i)
        sign_state = row_state(sign_seed, i)
        c = 0
        while c < n_cols:
            j = col_start + c
            offset = j % BLOCK_SIZE
            start, signs = _block_start_and_signs(state, sign_state, j, n_buckets)
            run = min(BLOCK_SIZE - offset, n_cols - c)
            for t in range(run):
                value = bucket_weights[_block_bucket(start, offset + t, n_buckets)]
                if sign_hash and (signs >> np.uint64(offset + t)) & np.uint64(1):
                    value = -value
                out[r, c + t] = value
            c += run


@njit(parallel=True, cache=True)
def _hash_and_sign_tile_block(grad_tile, seed, sign_seed, sign_hash, row_start, n_buckets, buckets):
    n_rows, n_cols = grad_tile.shape
    k = np.int64(n_buckets)
    for r in prange(n_rows):
        i = np.uint64(row_start + r)
        state = row_state(seed, i)
        sign_state = row_state(sign_seed, i)
        for c in range(0, n_cols, BLOCK_SIZE):
            start, signs = _block_start_and_signs(state, sign_state, c, k)
            for t in range(min(BLOCK_SIZE, n_cols - c)):
                buckets[r, c + t] = _block_bucket(start, t, k)
                if sign_hash and (signs >> np.uint64(t)) & np.uint64(1):
                    grad_tile[r, c + t] = -grad_tile[r, c + t]


def scatter_bucket_grad(
    grad_tile, seed, sign_seed, sign_hash, row_start, bucket_grad, buckets, hashing="element"
):
    """Add a tile of virtual-weight gradients into the bucket gradient.

    ``bucket_grad[h(i, j)] += s(i, j) * grad_tile[i - row_start, j]``, in two
    passes: the hashes, in parallel over rows, then the sum, serially in
    row-major order. The sum's order is fixed, so the result is the same bit
    for bit whatever the number of threads; the bucket vector is small enough
    to stay in cache, which keeps the serial pass cheap.

    Parameters
    ----------
    grad_tile : ndarray of shape (n_rows, n_out), C-contiguous
        Gradient with respect to rows ``row_start:row_start + n_rows`` of the
        virtual matrix. Overwritten: its entries are multiplied by their signs.
    seed, sign_seed : uint64
        Seeds of the bucket hash and of the sign hash.
    sign_hash : bool
        Whether to apply the sign hash.
    row_start : int
        Index of the first row of the tile in the virtual matrix.
    bucket_grad : ndarray of shape (n_buckets,)
        Accumulated into, in place.
    buckets : ndarray of shape (n_rows, n_out), dtype uint32
        Scratch space for the bucket indices.
    hashing : {"element", "block"}, default="element"
    """
    n_buckets = np.uint64(bucket_grad.shape[0])
    hash_tile = _hash_and_sign_tile_block if hashing == "block" else _hash_and_sign_tile
    hash_tile(grad_tile, seed, sign_seed, sign_hash, row_start, n_buckets, buckets)
    _accumulate(buckets, grad_tile, bucket_grad)
