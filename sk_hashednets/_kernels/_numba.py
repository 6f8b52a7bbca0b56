"""Numba CPU kernels: materialise virtual-matrix tiles, scatter gradients to buckets.

Plain functions of arrays and integers, parallel over rows, and deterministic
whatever the number of threads.

- ``materialize_tile`` / ``materialize_tile_block`` write every entry of a
  tile independently, from the hash (element or block hashing).
- ``bucket_index_tile`` writes the hash itself, once: a uint32 per entry, the
  bucket in the low 31 bits and the sign in the top bit (:data:`SIGN_BIT`).
  Training a layer whose virtual matrix fits in one tile keeps that index for
  the whole fit; ``gather_tile`` and ``scatter_indexed`` then read it instead
  of hashing twice per entry and step.
- ``scatter_bucket_grad`` / ``scatter_indexed`` add a gradient tile into the
  bucket gradient in *scatter blocks* of ``block_rows`` consecutive rows of the
  virtual matrix: each block is summed on its own, in row-major order, into a
  private vector of bucket partial sums (blocks in parallel), and the partial
  sums are added into the bucket gradient in the order of the blocks. Every
  bucket's sum is therefore the same chain of additions whatever the number of
  threads and however the matrix is split into row tiles, provided tiles start
  on block boundaries (``HashedLayer`` aligns them).
"""

import numpy as np
from numba import njit, prange

from ._hashing import BLOCK_SIZE, bucket_of, column_key, finish_hash, is_negative, row_state

#: Top bit of an entry of a bucket index tile: set where the virtual weight is ``-w[h]``.
SIGN_BIT = 1 << 31
_SIGN_BIT = np.uint32(SIGN_BIT)
_BUCKET_MASK = np.uint32(SIGN_BIT - 1)
_S31 = np.uint64(31)
_ONE = np.uint64(1)


@njit(cache=True)
def _column_keys(col_start, n_cols):
    keys = np.empty(n_cols, dtype=np.uint64)
    for c in range(n_cols):
        keys[c] = column_key(np.uint64(col_start + c))
    return keys


@njit(cache=True)
def _block_keys(col_start, n_cols):
    """Scrambled block numbers of the blocks that columns ``col_start:col_start + n_cols`` touch."""
    first = col_start // BLOCK_SIZE
    n_blocks = (col_start + n_cols - 1) // BLOCK_SIZE - first + 1
    keys = np.empty(n_blocks, dtype=np.uint64)
    for b in range(n_blocks):
        keys[b] = column_key(np.uint64(first + b))
    return keys


# ----------------------------------------------------------------------------
# Materialising tiles
# ----------------------------------------------------------------------------


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


@njit(cache=True)
def _block_start_and_signs(state, sign_state, key, n_buckets):
    """Start bucket and sign bits of one block of a row (block hashing)."""
    start = np.int64(bucket_of(finish_hash(state, key), np.uint64(n_buckets)))
    return start, finish_hash(sign_state, key)


@njit(parallel=True, cache=True)
def materialize_tile_block(bucket_weights, seed, sign_seed, sign_hash, row_start, out, col_start=0):
    """:func:`materialize_tile` under block hashing.

    Each run of ``BLOCK_SIZE`` entries of a row copies consecutive buckets
    (circularly) from a hashed start, with one sign bit per entry.
    """
    n_rows, n_cols = out.shape
    n_buckets = bucket_weights.shape[0]
    keys = _block_keys(col_start, n_cols)
    for r in prange(n_rows):
        i = np.uint64(row_start + r)
        state = row_state(seed, i)
        sign_state = row_state(sign_seed, i)
        c = 0
        while c < n_cols:
            offset = (col_start + c) % BLOCK_SIZE
            start, signs = _block_start_and_signs(
                state,
                sign_state,
                keys[(col_start + c) // BLOCK_SIZE - col_start // BLOCK_SIZE],
                n_buckets,
            )
            run = min(BLOCK_SIZE - offset, n_cols - c)
            first = start + offset
            if not sign_hash:
                signs = np.uint64(0)
            if first + run <= n_buckets:  # no wrap-around: a contiguous copy
                for t in range(run):
                    value = bucket_weights[first + t]
                    out[r, c + t] = -value if (signs >> np.uint64(offset + t)) & _ONE else value
            else:
                for t in range(run):
                    value = bucket_weights[(first + t) % n_buckets]
                    out[r, c + t] = -value if (signs >> np.uint64(offset + t)) & _ONE else value
            c += run


# ----------------------------------------------------------------------------
# Bucket index tiles: the hash once, read many times
# ----------------------------------------------------------------------------


@njit(parallel=True, cache=True)
def bucket_index_tile(seed, sign_seed, sign_hash, row_start, n_buckets, out, block_hashing):
    """Write the bucket and sign of every entry of rows ``row_start:`` into ``out``.

    Parameters
    ----------
    seed, sign_seed : uint64
        Seeds of the bucket hash and of the sign hash.
    sign_hash : bool
        Whether entries carry a hashed sign.
    row_start : int
        Index of the first row of the tile in the virtual matrix.
    n_buckets : int
        K, with 1 <= K <= 2**31.
    out : ndarray of shape (n_rows, n_cols), dtype uint32, C-contiguous
        ``bucket | SIGN_BIT`` where the virtual weight is ``-w[bucket]``, else
        ``bucket``, for columns ``0:n_cols``.
    block_hashing : bool
        Block hashing instead of element hashing.
    """
    n_rows, n_cols = out.shape
    k = np.uint64(n_buckets)
    keys = _block_keys(0, n_cols) if block_hashing else _column_keys(0, n_cols)
    # (start + offset) % K wraps around at most once when K >= BLOCK_SIZE: a
    # subtraction then does it, three times faster than a 64-bit division per entry.
    wraps_once = k >= np.uint64(BLOCK_SIZE)
    for r in prange(n_rows):
        i = np.uint64(row_start + r)
        state = row_state(seed, i)
        sign_state = row_state(sign_seed, i)
        for c in range(n_cols):
            if block_hashing:
                offset = np.uint64(c % BLOCK_SIZE)
                key = keys[c // BLOCK_SIZE]
                bucket = bucket_of(finish_hash(state, key), k) + offset
                if not wraps_once:
                    bucket %= k
                elif bucket >= k:
                    bucket -= k
                negative = (finish_hash(sign_state, key) >> offset) & _ONE
            else:
                bucket = bucket_of(finish_hash(state, keys[c]), k)
                negative = is_negative(finish_hash(sign_state, keys[c]))
            if sign_hash:
                bucket |= negative << _S31
            out[r, c] = bucket


@njit(parallel=True, cache=True)
def gather_tile(bucket_weights, index, out):
    """Materialise a tile from its bucket index: ``out = ±bucket_weights[index]``.

    Parameters
    ----------
    bucket_weights : ndarray of shape (n_buckets,)
    index : ndarray of shape (n_rows, n_cols), dtype uint32
        Output of :func:`bucket_index_tile`.
    out : ndarray of shape (n_rows, n_cols), C-contiguous
    """
    n_rows, n_cols = out.shape
    for r in prange(n_rows):
        for c in range(n_cols):
            entry = index[r, c]
            value = bucket_weights[entry & _BUCKET_MASK]
            out[r, c] = -value if entry & _SIGN_BIT else value


# ----------------------------------------------------------------------------
# Scattering gradient tiles into bucket gradients
# ----------------------------------------------------------------------------


@njit(cache=True)
def _add_row_element(partial, grad_row, state, sign_state, keys, sign_hash):
    n_buckets = np.uint64(partial.shape[0])
    for c in range(grad_row.shape[0]):
        value = grad_row[c]
        if sign_hash and is_negative(finish_hash(sign_state, keys[c])):
            value = -value
        partial[bucket_of(finish_hash(state, keys[c]), n_buckets)] += value


@njit(cache=True)
def _add_row_block(partial, grad_row, state, sign_state, keys, sign_hash):
    n_buckets = partial.shape[0]
    n_cols = grad_row.shape[0]
    for b in range(keys.shape[0]):
        start, signs = _block_start_and_signs(state, sign_state, keys[b], n_buckets)
        if not sign_hash:
            signs = np.uint64(0)
        c = b * BLOCK_SIZE
        run = min(BLOCK_SIZE, n_cols - c)
        if start + run <= n_buckets:
            for t in range(run):
                value = grad_row[c + t]
                partial[start + t] += -value if (signs >> np.uint64(t)) & _ONE else value
        else:
            for t in range(run):
                value = grad_row[c + t]
                partial[(start + t) % n_buckets] += (
                    -value if (signs >> np.uint64(t)) & _ONE else value
                )


@njit(cache=True)
def _add_row_indexed(partial, grad_row, index_row):
    for c in range(grad_row.shape[0]):
        entry = index_row[c]
        value = grad_row[c]
        partial[entry & _BUCKET_MASK] += -value if entry & _SIGN_BIT else value


@njit(parallel=True, cache=True)
def _add_partials(partials, n_partials, bucket_grad):
    """``bucket_grad += partials[0] + ... `` one partial after the other, per bucket."""
    n_buckets = bucket_grad.shape[0]
    n_chunks = min(n_buckets, 64)
    for chunk in prange(n_chunks):
        for k in range(chunk * n_buckets // n_chunks, (chunk + 1) * n_buckets // n_chunks):
            total = bucket_grad[k]
            for p in range(n_partials):
                total += partials[p, k]
            bucket_grad[k] = total


@njit(parallel=True, cache=True)
def _scatter_blocks(
    grad_tile, index, seed, sign_seed, sign_hash, row_start, block_rows, partials, bucket_grad, mode
):
    # mode 0: element hashing, 1: block hashing, 2: from the bucket index tile.
    n_rows, n_cols = grad_tile.shape
    keys = _block_keys(0, n_cols) if mode == 1 else _column_keys(0, n_cols)
    n_blocks = (n_rows + block_rows - 1) // block_rows
    wave = partials.shape[0]
    for first in range(0, n_blocks, wave):
        n_partials = min(wave, n_blocks - first)
        for p in prange(n_partials):
            partial = partials[p]
            partial[:] = 0
            lo = (first + p) * block_rows
            for r in range(lo, min(lo + block_rows, n_rows)):
                if mode == 2:
                    _add_row_indexed(partial, grad_tile[r], index[r])
                    continue
                i = np.uint64(row_start + r)
                state = row_state(seed, i)
                sign_state = row_state(sign_seed, i)
                if mode == 1:
                    _add_row_block(partial, grad_tile[r], state, sign_state, keys, sign_hash)
                else:
                    _add_row_element(partial, grad_tile[r], state, sign_state, keys, sign_hash)
        _add_partials(partials, n_partials, bucket_grad)


def scatter_bucket_grad(
    grad_tile,
    seed,
    sign_seed,
    sign_hash,
    row_start,
    bucket_grad,
    block_rows,
    partials,
    hashing="element",
):
    """Add a tile of virtual-weight gradients into the bucket gradient.

    ``bucket_grad[h(i, j)] += s(i, j) * grad_tile[i - row_start, j]``, summed
    in scatter blocks of ``block_rows`` rows (see the module docstring): the
    result is the same bit for bit whatever the number of threads, and
    whatever the row tiles, when each tile starts on a multiple of
    ``block_rows``.

    Parameters
    ----------
    grad_tile : ndarray of shape (n_rows, n_out), C-contiguous
        Gradient with respect to rows ``row_start:row_start + n_rows`` (all
        columns) of the virtual matrix. Not modified.
    seed, sign_seed : uint64
        Seeds of the bucket hash and of the sign hash.
    sign_hash : bool
        Whether to apply the sign hash.
    row_start : int
        Index of the first row of the tile in the virtual matrix, a multiple of
        ``block_rows``.
    bucket_grad : ndarray of shape (n_buckets,)
        Accumulated into, in place.
    block_rows : int
        Rows of a scatter block.
    partials : ndarray of shape (n_partials, n_buckets)
        Scratch space: as many blocks as it has rows are summed at once.
    hashing : {"element", "block"}, default="element"
    """
    empty_index = np.empty((0, 0), dtype=np.uint32)
    mode = 1 if hashing == "block" else 0
    _scatter_blocks(
        grad_tile,
        empty_index,
        seed,
        sign_seed,
        sign_hash,
        row_start,
        block_rows,
        partials,
        bucket_grad,
        mode,
    )


def scatter_indexed(grad_tile, index, bucket_grad, block_rows, partials):
    """:func:`scatter_bucket_grad` from a bucket index tile (:func:`bucket_index_tile`).

    Gives the same result bit for bit as hashing the same rows.
    """
    _scatter_blocks(
        grad_tile,
        index,
        np.uint64(0),
        np.uint64(0),
        False,
        0,
        block_rows,
        partials,
        bucket_grad,
        2,
    )
