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
- Under sharded hashing (``n_shards > 1``, ``docs/hashing.md``) every row reads
  only its shard's range of buckets. ``scatter_shards`` gives each thread whole
  shards: it adds the rows of its shards, in order, straight into their own
  buckets, so there are no partial sums and no reduction pass, and every
  bucket's sum is the same chain of additions whatever the threads and the row
  tiles (tiles may start on any row).
"""

import numpy as np
from numba import njit, prange

from ._hashing import (
    BLOCK_HASHING,
    BLOCK_SIZE,
    ELEMENT_HASHING,
    bucket_of,
    column_key,
    finish_hash,
    is_negative,
    row_state,
    shard_buckets,
    shard_of_row,
    tile_shards,
)

#: Mode of :func:`_scatter_blocks` that reads a bucket index tile instead of
#: hashing (the hashing modes are ``_hashing.ELEMENT_HASHING`` and ``BLOCK_HASHING``).
FROM_INDEX = 2
#: Top bit of an entry of a bucket index tile: set where the virtual weight is ``-w[h]``.
SIGN_BIT = 1 << 31
_SIGN_BIT = np.uint32(SIGN_BIT)
_BUCKET_MASK = np.uint32(SIGN_BIT - 1)
_S31 = np.uint64(31)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)


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
# An entry's bucket and sign: the specification (``_hashing.hash_pairs``), as
# the CUDA kernels' ``sk_hash_element`` and ``sk_hash_block`` compute it. Element
# hashing: ``_element_entry`` per entry. Block hashing: ``_block_hashes`` per
# block, then ``_block_run`` and ``_block_sign`` for its entries, run by run of
# consecutive buckets. Every kernel below reads the hash through these. All
# values are uint64 (``n_buckets`` too, and the offsets): see ``_hashing``.
# ----------------------------------------------------------------------------


@njit(inline="always", cache=True)
def _element_entry(state, sign_state, key, n_buckets, sign_hash):
    """Bucket and sign bit (1: negative) of one entry under element hashing.

    ``state`` and ``sign_state`` are the row's (:func:`row_state` under the
    seed and the sign seed), ``key`` the column's (:func:`column_key`).
    Without ``sign_hash`` the sign hash is not computed and the bit is 0.
    """
    bucket = bucket_of(finish_hash(state, key), n_buckets)
    negative = is_negative(finish_hash(sign_state, key)) if sign_hash else _ZERO
    return bucket, negative


@njit(inline="always", cache=True)
def _block_hashes(state, sign_state, key, n_buckets, sign_hash):
    """Start bucket and sign bits of one block of a row under block hashing.

    ``key`` is the block number's :func:`column_key`. Without ``sign_hash``
    the sign hash is not computed and every sign bit is 0.
    """
    start = bucket_of(finish_hash(state, key), n_buckets)
    signs = finish_hash(sign_state, key) if sign_hash else _ZERO
    return start, signs


@njit(inline="always", cache=True)
def _block_run(start, offset, stop, n_buckets):
    """The run of entries ``offset:stop`` of a block that read consecutive buckets.

    Entry ``o`` of a block reads bucket ``(start + o) % K``: from ``offset`` on,
    consecutive buckets up to the last one, where the block wraps around to
    bucket 0. Returns the bucket of entry ``offset`` and the length of the
    run. This is the one place that handles the wrap-around: the kernels
    copy a block run by run, each run a contiguous loop.
    """
    bucket = start + offset
    run = stop - offset
    if bucket + run > n_buckets:  # the run reaches past the last bucket
        bucket %= n_buckets
        run = min(run, n_buckets - bucket)
    return bucket, run


@njit(inline="always", cache=True)
def _block_sign(signs, offset):
    """Sign bit (1: negative) of entry ``offset`` of a block."""
    return (signs >> offset) & _ONE


@njit(inline="always", cache=True)
def _block_stop(block, n_cols):
    """Entries ``0:stop`` of the ``block``-th block of a row lie in columns ``0:n_cols``."""
    return np.uint64(min(BLOCK_SIZE, n_cols - block * BLOCK_SIZE))


# Unsharded loops: the materialising and indexing kernels loop over an
# unsharded tile's rows apart, and their row helpers index ``out`` and the
# buckets whole. With each row's shard looked up in the loop (even where it
# gave ``(0, K)``), or a view of a row or of a shard's buckets in it, the
# element materialise of a 4096 x 4096 tile took 4.2 to 5.2 times as long at
# 1/8 (``python benchmarks/bench_kernels.py``, "hash materialise", before and
# after: docs/performance.md). A sharded tile's rows read a shard's buckets at
# a time, in cache, and lose little to the lookup.


@njit(inline="always", cache=True)
def _row_shard(i, period, n_shards, n_buckets):
    """First bucket and bucket count of the shard of row ``i`` (a sharded hash).

    All arguments uint64 (``period``: the shards' period, ``LayerHash.shard_period``).
    """
    return shard_buckets(shard_of_row(i, period, n_shards), n_shards, n_buckets)


@njit(inline="always", cache=True)
def _shard_major_row(t, n_tile_rows, n_shards, period):
    """The tile row that a kernel visits ``t``-th: the tile's rows shard after shard.

    Under the cyclic layout (``period == n_shards > 1``) consecutive rows read
    different shards' buckets; visited shard by shard (tile rows ``k``,
    ``k + S``, ``k + 2 S``, ... for ``k = 0, 1, ...``), the rows a thread
    takes in turn read one shard's range of buckets, a cache's worth, before
    the next. Every row is visited once, so the output is the same whatever
    the order. Any other layout visits the rows in order (its shards are
    blocks of rows already).
    """
    # In int64 throughout: callers pass their counts as int64 or uint64.
    t, n, shards = np.int64(t), np.int64(n_tile_rows), np.int64(n_shards)
    if np.int64(period) != shards or shards == 1 or n <= shards:
        return t
    per_residue = n // shards  # rows of each residue, one more for the first `extra`
    extra = n % shards
    longer = extra * (per_residue + 1)
    if t < longer:
        residue, m = t // (per_residue + 1), t % (per_residue + 1)
    else:
        residue, m = extra + (t - longer) // per_residue, (t - longer) % per_residue
    return residue + m * shards


@njit(inline="always", cache=True)
def _signed(value, negative):
    return -value if negative else value


# ----------------------------------------------------------------------------
# Materialising tiles
# ----------------------------------------------------------------------------


@njit(parallel=True, cache=True)
def materialize_tile(
    bucket_weights, seed, sign_seed, sign_hash, row_start, out, col_start, n_shards, shard_period
):
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
    col_start : int
        Index of the first column of the tile in the virtual matrix.
    n_shards, shard_period : int
        Shards of the hash and the period of their rows (``LayerHash.shard_period``:
        ``n_shards`` under the cyclic layout, the matrix's rows under the
        contiguous one); ``n_shards=1`` is the unsharded hash.

    Notes
    -----
    The kernels of this module have no default arguments: Numba compiles
    one specialisation per set of arguments given, so a left-out default
    would cost a compilation of its own.
    """
    n_tile_rows, n_cols = out.shape
    n_buckets = np.uint64(bucket_weights.shape[0])
    shards, period = np.uint64(n_shards), np.uint64(shard_period)
    keys = _column_keys(col_start, n_cols)
    if n_shards == 1:  # a loop of its own: _UNSHARDED_LOOPS
        for r in prange(n_tile_rows):
            i = np.uint64(row_start + r)
            _element_row(
                out, r, bucket_weights, _ZERO, n_buckets, i, seed, sign_seed, keys, sign_hash
            )
        return
    for visit in prange(n_tile_rows):
        r = _shard_major_row(visit, n_tile_rows, n_shards, shard_period)
        i = np.uint64(row_start + r)
        first, count = _row_shard(i, period, shards, n_buckets)
        _element_row(out, r, bucket_weights, first, count, i, seed, sign_seed, keys, sign_hash)


@njit(inline="always", cache=True)
def _element_row(out, r, bucket_weights, first, count, i, seed, sign_seed, keys, sign_hash):
    """Row ``r`` of ``out``, row ``i`` of the matrix under element hashing.

    The row reads buckets ``first:first + count``. ``out`` and the buckets
    are indexed whole, never through views (_UNSHARDED_LOOPS).
    """
    state, sign_state = row_state(seed, i), row_state(sign_seed, i)
    for c in range(out.shape[1]):
        bucket, negative = _element_entry(state, sign_state, keys[c], count, sign_hash)
        out[r, c] = _signed(bucket_weights[first + bucket], negative)


@njit(parallel=True, cache=True)
def materialize_tile_block(
    bucket_weights, seed, sign_seed, sign_hash, row_start, out, col_start, n_shards, shard_period
):
    """:func:`materialize_tile` under block hashing.

    Each run of ``BLOCK_SIZE`` entries of a row copies consecutive buckets
    (circularly) from a hashed start, with one sign bit per entry.
    """
    n_tile_rows, n_cols = out.shape
    n_buckets = np.uint64(bucket_weights.shape[0])
    shards, period = np.uint64(n_shards), np.uint64(shard_period)
    keys = _block_keys(col_start, n_cols)
    # Offset of the tile's first column in its block: entry u of the tile's
    # b-th block lies in the tile's column BLOCK_SIZE * b + u - shift.
    shift = np.uint64(col_start % BLOCK_SIZE)
    n_shifted = n_cols + col_start % BLOCK_SIZE
    if n_shards == 1:  # a loop of its own: _UNSHARDED_LOOPS
        for r in prange(n_tile_rows):
            i = np.uint64(row_start + r)
            _block_row(
                out,
                r,
                bucket_weights,
                _ZERO,
                n_buckets,
                i,
                seed,
                sign_seed,
                keys,
                sign_hash,
                shift,
                n_shifted,
            )
        return
    for visit in prange(n_tile_rows):
        r = _shard_major_row(visit, n_tile_rows, n_shards, shard_period)
        i = np.uint64(row_start + r)
        first, count = _row_shard(i, period, shards, n_buckets)
        _block_row(
            out,
            r,
            bucket_weights,
            first,
            count,
            i,
            seed,
            sign_seed,
            keys,
            sign_hash,
            shift,
            n_shifted,
        )


@njit(inline="always", cache=True)
def _block_row(
    out, r, bucket_weights, first, count, i, seed, sign_seed, keys, sign_hash, shift, n_shifted
):
    """:func:`_element_row` under block hashing: run by run, from the tile's ``shift``."""
    state, sign_state = row_state(seed, i), row_state(sign_seed, i)
    for b in range(keys.shape[0]):
        start, signs = _block_hashes(state, sign_state, keys[b], count, sign_hash)
        column = np.uint64(b * BLOCK_SIZE)
        t, stop = shift if b == 0 else _ZERO, _block_stop(b, n_shifted)
        while t < stop:
            bucket, run = _block_run(start, t, stop, count)
            for u in range(t, t + run):
                value = bucket_weights[first + bucket + u - t]
                out[r, column + u - shift] = _signed(value, _block_sign(signs, u))
            t += run


# ----------------------------------------------------------------------------
# Bucket index tiles: the hash once, read many times
# ----------------------------------------------------------------------------


@njit(inline="always", cache=True)
def _index_entry(bucket, negative):
    """An entry of a bucket index tile: the bucket, with :data:`SIGN_BIT` where negative."""
    return bucket | (negative << _S31)


@njit(parallel=True, cache=True)
def bucket_index_tile(
    seed, sign_seed, sign_hash, row_start, n_buckets, out, mode, n_shards, shard_period
):
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
    mode : {ELEMENT_HASHING, BLOCK_HASHING}
        The hashing scheme (``_hashing``'s constants).
    n_shards, shard_period : int
        As in :func:`materialize_tile`.
    """
    n_tile_rows, n_cols = out.shape
    n_buckets = np.uint64(n_buckets)
    shards, period = np.uint64(n_shards), np.uint64(shard_period)
    block_hashing = mode == BLOCK_HASHING
    keys = _block_keys(0, n_cols) if block_hashing else _column_keys(0, n_cols)
    if n_shards == 1:  # a loop of its own: _UNSHARDED_LOOPS
        for r in prange(n_tile_rows):
            i = np.uint64(row_start + r)
            _index_row(out, r, _ZERO, n_buckets, i, seed, sign_seed, keys, sign_hash, block_hashing)
        return
    for visit in prange(n_tile_rows):
        r = _shard_major_row(visit, n_tile_rows, n_shards, shard_period)
        i = np.uint64(row_start + r)
        first, k = _row_shard(i, period, shards, n_buckets)
        _index_row(out, r, first, k, i, seed, sign_seed, keys, sign_hash, block_hashing)


@njit(inline="always", cache=True)
def _index_row(out, r, first, k, i, seed, sign_seed, keys, sign_hash, block_hashing):
    """Row ``r`` of a bucket index tile, row ``i`` of the matrix, in buckets ``first:first + k``."""
    state, sign_state = row_state(seed, i), row_state(sign_seed, i)
    if block_hashing:
        for b in range(keys.shape[0]):
            start, signs = _block_hashes(state, sign_state, keys[b], k, sign_hash)
            column, t, stop = np.uint64(b * BLOCK_SIZE), _ZERO, _block_stop(b, out.shape[1])
            while t < stop:
                bucket, run = _block_run(start, t, stop, k)
                for u in range(t, t + run):
                    out[r, column + u] = _index_entry(first + bucket + u - t, _block_sign(signs, u))
                t += run
    else:
        for c in range(out.shape[1]):
            bucket, negative = _element_entry(state, sign_state, keys[c], k, sign_hash)
            out[r, c] = _index_entry(first + bucket, negative)


@njit(parallel=True, cache=True)
def gather_tile(bucket_weights, index, out, n_shards, shard_period):
    """Materialise a tile from its bucket index: ``out = ±bucket_weights[index]``.

    Parameters
    ----------
    bucket_weights : ndarray of shape (n_buckets,)
    index : ndarray of shape (n_rows, n_cols), dtype uint32
        Output of :func:`bucket_index_tile`.
    out : ndarray of shape (n_rows, n_cols), C-contiguous
    n_shards, shard_period : int
        The index's hash, as in :func:`materialize_tile` (1, 1: any): the
        rows are visited shard by shard, each thread reading one shard's
        buckets at a time.
    """
    n_rows, n_cols = out.shape
    for visit in prange(n_rows):
        r = _shard_major_row(visit, n_rows, n_shards, shard_period)
        for c in range(n_cols):
            entry = index[r, c]
            out[r, c] = _signed(bucket_weights[entry & _BUCKET_MASK], entry & _SIGN_BIT)


# ----------------------------------------------------------------------------
# Scattering gradient tiles into bucket gradients
# ----------------------------------------------------------------------------


@njit(cache=True)
def _add_row_element(partial, grad_row, state, sign_state, keys, sign_hash):
    n_buckets = np.uint64(partial.shape[0])
    for c in range(grad_row.shape[0]):
        bucket, negative = _element_entry(state, sign_state, keys[c], n_buckets, sign_hash)
        partial[bucket] += _signed(grad_row[c], negative)


@njit(cache=True)
def _add_row_block(partial, grad_row, state, sign_state, keys, sign_hash):
    n_buckets = np.uint64(partial.shape[0])
    for b in range(keys.shape[0]):
        start, signs = _block_hashes(state, sign_state, keys[b], n_buckets, sign_hash)
        column, t, stop = np.uint64(b * BLOCK_SIZE), _ZERO, _block_stop(b, grad_row.shape[0])
        while t < stop:
            bucket, run = _block_run(start, t, stop, n_buckets)
            for u in range(t, t + run):
                partial[bucket + u - t] += _signed(grad_row[column + u], _block_sign(signs, u))
            t += run


@njit(cache=True)
def _add_row_indexed(partial, grad_row, index_row):
    for c in range(grad_row.shape[0]):
        entry = index_row[c]
        partial[entry & _BUCKET_MASK] += _signed(grad_row[c], entry & _SIGN_BIT)


@njit(inline="always", cache=True)
def _finish(bucket_grad, weights, decay, divisor):
    """``bucket_grad = (bucket_grad + decay * weights) / divisor``, entry by entry.

    ``GradientFinish.apply``'s bits: each of its two steps computed in the
    scalars' dtype (``GradientFinish.kernel_scalars``) and stored, rounded,
    in the dtype of ``bucket_grad``, as NumPy's in-place passes do.
    """
    for k in range(bucket_grad.shape[0]):
        bucket_grad[k] = bucket_grad[k] + decay * weights[k]
        bucket_grad[k] = bucket_grad[k] / divisor


def _finish_args(finish, bucket_grad):
    """The kernels' trailing arguments: whether to finish, and ``finish``'s three values.

    ``finish`` is None or ``(weights, decay, divisor)``: weights of the
    shape and dtype of ``bucket_grad`` (``ValueError`` otherwise), scalars
    in the dtype each step computes in (``GradientFinish.kernel_scalars``).
    Without it the kernels get an empty vector and unused scalars.
    """
    if finish is None:
        unused = bucket_grad.dtype.type(1)
        return False, bucket_grad[:0], unused, unused
    weights, decay, divisor = finish
    if weights.shape != bucket_grad.shape or weights.dtype != bucket_grad.dtype:
        raise ValueError(
            f"finish's weights must have the bucket gradient's shape {bucket_grad.shape} "
            f"and dtype {bucket_grad.dtype}, got {weights.shape} and {weights.dtype}."
        )
    return True, weights, decay, divisor


@njit(parallel=True, cache=True)
def _add_partials(partials, n_partials, bucket_grad, overwrite, finish, weights, decay, divisor):
    """``bucket_grad += partials[0] + ... `` one partial after the other, per bucket.

    With ``overwrite`` the sums start from zero instead of ``bucket_grad``;
    with ``finish``, :func:`_finish` follows them while they are in cache.
    """
    n_buckets = bucket_grad.shape[0]
    n_chunks = min(n_buckets, 64)
    for chunk in prange(n_chunks):
        lo, hi = chunk * n_buckets // n_chunks, (chunk + 1) * n_buckets // n_chunks
        for k in range(lo, hi):
            if overwrite:
                bucket_grad[k] = 0
            total = bucket_grad[k]
            for p in range(n_partials):
                total += partials[p, k]
            bucket_grad[k] = total
        if finish:
            _finish(bucket_grad[lo:hi], weights[lo:hi], decay, divisor)


@njit(parallel=True, cache=True)
def _scatter_blocks(
    grad_tile,
    index,
    seed,
    sign_seed,
    sign_hash,
    row_start,
    block_rows,
    partials,
    bucket_grad,
    mode,
    finish,
    weights,
    decay,
    divisor,
):
    # mode: ELEMENT_HASHING or BLOCK_HASHING (hash the rows), or FROM_INDEX.
    # finish: overwrite bucket_grad, then complete it (_finish) in the last wave.
    n_rows, n_cols = grad_tile.shape
    keys = _block_keys(0, n_cols) if mode == BLOCK_HASHING else _column_keys(0, n_cols)
    n_blocks = (n_rows + block_rows - 1) // block_rows
    wave = partials.shape[0]
    for first in range(0, n_blocks, wave):
        n_partials = min(wave, n_blocks - first)
        for p in prange(n_partials):
            partial = partials[p]
            partial[:] = 0
            lo = (first + p) * block_rows
            for r in range(lo, min(lo + block_rows, n_rows)):
                if mode == FROM_INDEX:
                    _add_row_indexed(partial, grad_tile[r], index[r])
                    continue
                i = np.uint64(row_start + r)
                state, sign_state = row_state(seed, i), row_state(sign_seed, i)
                if mode == BLOCK_HASHING:
                    _add_row_block(partial, grad_tile[r], state, sign_state, keys, sign_hash)
                else:
                    _add_row_element(partial, grad_tile[r], state, sign_state, keys, sign_hash)
        last = first + wave >= n_blocks
        _add_partials(
            partials,
            n_partials,
            bucket_grad,
            finish and first == 0,
            finish and last,
            weights,
            decay,
            divisor,
        )
    if finish and n_blocks == 0:  # no rows: the sums are zero
        _add_partials(partials, 0, bucket_grad, True, True, weights, decay, divisor)


def scatter_bucket_grad(
    grad_tile,
    seed,
    sign_seed,
    sign_hash,
    row_start,
    bucket_grad,
    block_rows,
    partials,
    mode=ELEMENT_HASHING,
    finish=None,
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
    mode : {ELEMENT_HASHING, BLOCK_HASHING}, default=ELEMENT_HASHING
        The hashing scheme (``_hashing``'s constants).
    finish : tuple (weights, decay, divisor), default=None
        If given, ``bucket_grad`` is overwritten with ``(sums + decay *
        weights) / divisor``: the tile's sums, completed as
        ``GradientFinish.apply`` does: weights of the shape and dtype of
        ``bucket_grad``, ``decay`` and ``divisor`` from
        ``GradientFinish.kernel_scalars``.
    """
    empty_index = np.empty((0, 0), dtype=np.uint32)
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
        *_finish_args(finish, bucket_grad),
    )


@njit(inline="always", cache=True)
def _shard_rows_in_window(shard, window, row_start, n_tile_rows, n_shards, period):
    """Rows ``lo:hi`` of ``shard`` in one window that lie in the tile (matrix row numbers).

    Empty (``hi <= lo``) where the shard's rows of that window miss the tile.
    """
    shards, period = np.uint64(n_shards), np.uint64(period)
    base = np.uint64(window) * period
    lo = max(base + shard * period // shards, np.uint64(row_start))
    hi = min(base + (shard + _ONE) * period // shards, np.uint64(row_start + n_tile_rows))
    return np.int64(lo), np.int64(hi)


@njit(inline="always", cache=True)
def _tile_windows(row_start, n_tile_rows, period):
    """The windows of ``period`` rows that the tile touches: ``range(first, stop)``."""
    period = np.int64(period)
    return row_start // period, (row_start + n_tile_rows - 1) // period + 1


@njit(inline="always", cache=True)
def _visited_shards(row_start, n_tile_rows, n_shards, period, finish):
    """The shards a sharded scatter visits: the tile's, or all of them when it overwrites.

    ``(first + t) % n_shards`` for ``t < count``; a shard without rows in the
    tile finds no rows in its windows (:func:`_shard_rows_in_window`).
    """
    first, count = tile_shards(row_start, max(n_tile_rows, 1), n_shards, period)
    if finish:
        return first, np.int64(n_shards)
    if n_tile_rows == 0:
        return first, np.int64(0)
    return first, count


@njit(parallel=True, cache=True)
def _scatter_shards(
    grad_tile,
    seed,
    sign_seed,
    sign_hash,
    row_start,
    n_shards,
    period,
    bucket_grad,
    mode,
    finish,
    weights,
    decay,
    divisor,
):
    n_tile_rows, n_cols = grad_tile.shape
    keys = _block_keys(0, n_cols) if mode == BLOCK_HASHING else _column_keys(0, n_cols)
    n_buckets = np.uint64(bucket_grad.shape[0])
    first_shard, n_visited = _visited_shards(row_start, n_tile_rows, n_shards, period, finish)
    first_window, stop_window = _tile_windows(row_start, n_tile_rows, period)
    for t in prange(n_visited):
        shard = (first_shard + np.uint64(t)) % np.uint64(n_shards)
        # The shard's buckets: this thread's alone. Its rows in the tile, in order.
        first, count = shard_buckets(shard, np.uint64(n_shards), n_buckets)
        own = bucket_grad[first : first + count]
        if finish:
            own[:] = 0
        for window in range(first_window, stop_window):
            lo, hi = _shard_rows_in_window(shard, window, row_start, n_tile_rows, n_shards, period)
            for i in range(lo, hi):
                state = row_state(seed, np.uint64(i))
                sign_state = row_state(sign_seed, np.uint64(i))
                grad_row = grad_tile[i - row_start]
                if mode == BLOCK_HASHING:
                    _add_row_block(own, grad_row, state, sign_state, keys, sign_hash)
                else:
                    _add_row_element(own, grad_row, state, sign_state, keys, sign_hash)
        if finish:  # the shard's sums are in this core's cache
            _finish(own, weights[first : first + count], decay, divisor)


def scatter_shards(
    grad_tile,
    seed,
    sign_seed,
    sign_hash,
    row_start,
    bucket_grad,
    n_shards,
    shard_period,
    mode,
    finish=None,
):
    """:func:`scatter_bucket_grad` under sharded hashing: each thread owns whole shards.

    Every row of the tile is added, in order, straight into its shard's range
    of ``bucket_grad`` by the one thread that owns the shard: no partial sums,
    no reduction pass. Each bucket receives its entries in row-major order,
    so the result is the same bit for bit whatever the number of threads and
    whatever the row tiles (a tile may start on any row).

    Parameters
    ----------
    grad_tile : ndarray of shape (n_tile_rows, n_out), C-contiguous
        Gradient with respect to rows ``row_start:row_start + n_tile_rows``.
    seed, sign_seed : uint64
    sign_hash : bool
    row_start : int
    bucket_grad : ndarray of shape (n_buckets,)
        Accumulated into, in place.
    n_shards, shard_period : int
        Shards of the hash and the period of their rows, as in :func:`materialize_tile`.
    mode : {ELEMENT_HASHING, BLOCK_HASHING}
    finish : tuple (weights, decay, divisor), default=None
        As in :func:`scatter_bucket_grad`: each thread completes its shards'
        buckets once their sums are done, while they are in its cache.
    """
    _scatter_shards(
        grad_tile,
        seed,
        sign_seed,
        sign_hash,
        row_start,
        n_shards,
        shard_period,
        bucket_grad,
        mode,
        *_finish_args(finish, bucket_grad),
    )


@njit(parallel=True, cache=True)
def _scatter_shards_indexed(
    grad_tile, index, row_start, n_shards, period, bucket_grad, finish, weights, decay, divisor
):
    n_tile_rows = grad_tile.shape[0]
    n_buckets = np.uint64(bucket_grad.shape[0])
    first_shard, n_visited = _visited_shards(row_start, n_tile_rows, n_shards, period, finish)
    first_window, stop_window = _tile_windows(row_start, n_tile_rows, period)
    for t in prange(n_visited):
        shard = (first_shard + np.uint64(t)) % np.uint64(n_shards)
        first, count = shard_buckets(shard, np.uint64(n_shards), n_buckets)
        if finish:
            bucket_grad[first : first + count] = 0
        # The shard's rows in this tile: their entries index this thread's buckets alone.
        for window in range(first_window, stop_window):
            lo, hi = _shard_rows_in_window(shard, window, row_start, n_tile_rows, n_shards, period)
            for i in range(lo, hi):
                _add_row_indexed(bucket_grad, grad_tile[i - row_start], index[i - row_start])
        if finish:
            _finish(
                bucket_grad[first : first + count], weights[first : first + count], decay, divisor
            )


def scatter_shards_indexed(
    grad_tile, index, row_start, bucket_grad, n_shards, shard_period, finish=None
):
    """:func:`scatter_shards` from the tile's bucket index (:func:`bucket_index_tile`).

    Each thread owns whole shards and adds their rows, in order, into their
    buckets: the same result bit for bit as :func:`scatter_shards` (every
    bucket's sum is the chain of its entries in row-major order), without
    hashing again.

    Parameters
    ----------
    grad_tile : ndarray of shape (n_tile_rows, n_out), C-contiguous
        Gradient with respect to rows ``row_start:row_start + n_tile_rows``.
    index : ndarray of shape (n_tile_rows, n_out), dtype uint32
        The bucket index of the same rows, under the sharded hash.
    row_start : int
    bucket_grad : ndarray of shape (n_buckets,)
        Accumulated into, in place.
    n_shards, shard_period : int
        Shards of the hash and the period of their rows, as in :func:`materialize_tile`.
    finish : tuple (weights, decay, divisor), default=None
        As in :func:`scatter_shards`.
    """
    _scatter_shards_indexed(
        grad_tile,
        index,
        row_start,
        n_shards,
        shard_period,
        bucket_grad,
        *_finish_args(finish, bucket_grad),
    )


def scatter_indexed(grad_tile, index, bucket_grad, block_rows, partials, finish=None):
    """:func:`scatter_bucket_grad` from a bucket index tile (:func:`bucket_index_tile`).

    Gives the same result bit for bit as hashing the same rows; ``finish`` as
    in :func:`scatter_bucket_grad`.
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
        FROM_INDEX,
        *_finish_args(finish, bucket_grad),
    )


#: The materialising kernel of each hashing mode.
MATERIALIZE_KERNELS = {ELEMENT_HASHING: materialize_tile, BLOCK_HASHING: materialize_tile_block}
