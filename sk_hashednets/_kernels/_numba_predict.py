"""Numba CPU kernels for prediction: ``A @ W`` straight from the buckets.

For a small batch, writing the virtual matrix ``W`` costs more than using it:
each entry is hashed, stored and read back once by a GEMV that does a handful
of multiply-adds with it. :func:`hashed_matmul` never writes ``W``: it hashes
each entry and adds ``A[:, i] * W[i, j]`` into a small accumulator of the
output, column chunk by column chunk. The hash formulas are those of
:mod:`._hashing`, called here, never copied.

- Element hashing: two hashes (bucket and sign) per entry, one bucket read.
- Block hashing: two hashes per run of ``BLOCK_SIZE`` entries of a row, whose
  weights are consecutive buckets, read as one contiguous run.
- Rows of ``W`` whose input is zero for the whole batch (ReLU's zeros, sparse
  input) are skipped: nothing is hashed for them.

Block hashing has a second kernel, :func:`table_matmul`, for a plan that can
afford the tables of :func:`block_tables`: each run's start (uint32) and its
16 sign bits (uint16), 6 bytes per 16 virtual weights, computed once. A call
then hashes nothing: per row and run, 16 consecutive buckets times the row's
input, with the sign chosen lane by lane (``-a`` or ``a``, a select, no
branch), written as one LLVM vector (:mod:`._vector_run`: Numba leaves the
SLP vectoriser off). At batch 1 it walks run columns down the rows, two at a
time, each column's 16 outputs in a register, from run-major tables: 2.8 to
2.9 times the speed of the loop it replaced (``benchmarks/bench_vector_run.py``).

Under sharded hashing (``docs/hashing.md``) each row reads only its shard's
range of buckets, ``firsts[i]:ends[i]`` (:func:`row_bucket_ranges`): the kernels
take those bounds per row and hash into, or wrap runs around, that range.
Unsharded, the bounds are None and every row's range is all the buckets: a
compilation of its own (:func:`_row_bounds`), whose loops read no bounds.

Parallel over fixed chunks of ``CHUNK_COLUMNS`` output columns: every output
entry is one chain of additions in row order, the same bit for bit whatever
the number of threads (or of Python threads calling at once).
"""

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from ._hashing import (
    BLOCK_SIZE,
    bucket_of,
    column_key,
    finish_hash,
    is_negative,
    row_state,
    shard_buckets,
    shard_of_row,
)
from ._vector_run import (
    LANES,
    lanes_fma,
    lanes_fma_wrapped,
    signed_run_fma,
    store_lanes,
    zero_lanes,
)

assert LANES == BLOCK_SIZE  # a run of block hashing is one vector

#: Output columns per parallel chunk: a whole number of hashing blocks.
CHUNK_COLUMNS = 16 * BLOCK_SIZE
_ONE = np.uint64(1)
_SIGN_BITS = np.uint64((1 << BLOCK_SIZE) - 1)
#: Output columns per parallel chunk of :func:`table_matmul`: 64 runs of a row
#: at a time (with 16, the rows' loop overhead doubled its time).
TABLE_CHUNK_COLUMNS = 64 * BLOCK_SIZE
#: Bytes of the tables of :func:`block_tables` per run of ``BLOCK_SIZE`` entries.
TABLE_BYTES_PER_RUN = np.dtype(np.uint32).itemsize + np.dtype(np.uint16).itemsize


def row_states(seed, n_rows):
    """Hash states after the row word of rows ``0:n_rows`` (:func:`row_state`), uint64."""
    return row_state.py_func(np.uint64(seed), np.arange(n_rows, dtype=np.uint64))


def row_bucket_ranges(n_rows, n_buckets, n_shards, period):
    """The range of buckets ``firsts[i]:ends[i]`` that row ``i`` reads, int64.

    Parameters
    ----------
    n_rows : int
        Rows of the virtual matrix.
    n_buckets : int
        K, the layer's buckets.
    n_shards : int
        S, the shards of its hash (1: unsharded).
    period : int
        The shards' period (``LayerHash.shard_period``).

    Returns
    -------
    firsts, ends : ndarray of shape (n_rows,), int64, or None, None
        None where the hash is unsharded: every row reads all the buckets.
    """
    if n_shards == 1:
        return None, None
    rows = np.arange(n_rows, dtype=np.uint64)
    shards = shard_of_row.py_func(rows, np.uint64(period), np.uint64(n_shards))
    firsts, counts = shard_buckets.py_func(shards, np.uint64(n_shards), np.uint64(n_buckets))
    return firsts.astype(np.int64), (firsts + counts).astype(np.int64)


def _row_bounds(firsts, ends, i, n_buckets):
    """Row ``i``'s range of buckets ``lo:hi``, int64: ``0:n_buckets`` where the bounds are None."""


@overload(_row_bounds, inline="always")
def _row_bounds_impl(firsts, ends, i, n_buckets):
    if isinstance(firsts, types.NoneType):  # unsharded: constants, no loads

        def whole(firsts, ends, i, n_buckets):
            return np.int64(0), np.int64(n_buckets)

        return whole

    def shard(firsts, ends, i, n_buckets):
        return np.int64(firsts[i]), np.int64(ends[i])

    return shard


def _row_buckets(bucket_weights, firsts, ends, i):
    """Row ``i``'s buckets and the first one's index: ``bucket_weights, 0`` without bounds."""


@overload(_row_buckets, inline="always")
def _row_buckets_impl(bucket_weights, firsts, ends, i):
    if isinstance(firsts, types.NoneType):  # unsharded: the vector itself

        def whole(bucket_weights, firsts, ends, i):
            return bucket_weights, np.int64(0)

        return whole

    def shard(bucket_weights, firsts, ends, i):
        return bucket_weights[firsts[i] : ends[i]], np.int64(firsts[i])

    return shard


def column_keys(n_cols, hashing):
    """Scrambled column words (element hashing) or block numbers (block hashing), uint64."""
    n_keys = -(-n_cols // BLOCK_SIZE) if hashing == "block" else n_cols
    return column_key.py_func(np.arange(n_keys, dtype=np.uint64))


@njit(cache=True)
def _nonzero_rows(a_t):
    """Indices of the rows of ``a_t`` (n_in, batch) with a nonzero entry."""
    rows = np.empty(a_t.shape[0], dtype=np.int64)
    n = 0
    for i in range(a_t.shape[0]):
        for b in range(a_t.shape[1]):
            if a_t[i, b] != 0:
                rows[n] = i
                n += 1
                break
    return rows[:n]


@njit(cache=True)
def _element_run(values, w, state, sign_state, keys, sign_hash, col0):
    """``values[c] = W[i, col0 + c]`` for the row whose states are given (element hashing)."""
    k = np.uint64(w.shape[0])
    for c in range(values.shape[0]):
        key = keys[col0 + c]
        v = w[bucket_of(finish_hash(state, key), k)]
        if sign_hash and is_negative(finish_hash(sign_state, key)):
            v = -v
        values[c] = v


@njit(cache=True)
def _block_run(values, w, state, sign_state, keys, sign_hash, col0):
    """:func:`_element_run` under block hashing (``col0`` a multiple of ``BLOCK_SIZE``)."""
    k = np.uint64(w.shape[0])
    n_buckets = np.int64(w.shape[0])
    n_cols = values.shape[0]
    first_run = col0 // BLOCK_SIZE
    for run_index in range((n_cols + BLOCK_SIZE - 1) // BLOCK_SIZE):
        # Indices from a product of loop counters (never negative) and a
        # widened bucket, in a loop of variable length: LLVM vectorises it.
        c = run_index * BLOCK_SIZE
        key = keys[first_run + run_index]
        start = np.int64(bucket_of(finish_hash(state, key), k))
        signs = np.int64(finish_hash(sign_state, key)) if sign_hash else np.int64(0)
        run = min(BLOCK_SIZE, n_cols - c)
        if start + run <= n_buckets:  # no wrap-around: a contiguous run of buckets
            for t in range(run):
                v = w[start + t]
                values[c + t] = -v if (signs >> t) & 1 else v
        else:
            for t in range(run):
                v = w[(start + t) % n_buckets]
                values[c + t] = -v if (signs >> t) & 1 else v


@njit(parallel=True, cache=True)
def hashed_matmul(
    a_t, bucket_weights, states, sign_states, keys, sign_hash, block, firsts, ends, out
):
    """``out = A @ W`` for the virtual matrix ``W`` of a layer, never written.

    Parameters
    ----------
    a_t : ndarray of shape (n_in, batch), C-contiguous
        The input, transposed: a row of ``W`` meets one contiguous row of it.
    bucket_weights : ndarray of shape (n_buckets,)
    states, sign_states : ndarray of shape (n_in,), uint64
        :func:`row_states` of the layer's seed and of its sign seed.
    keys : ndarray, uint64
        :func:`column_keys` of the layer's columns.
    sign_hash : bool
        Whether entries carry a hashed sign.
    block : bool
        Block hashing instead of element hashing.
    firsts, ends : ndarray of shape (n_in,), int64, or None
        :func:`row_bucket_ranges`: the buckets each row reads.
    out : ndarray of shape (batch, n_out)
        Overwritten with ``A @ W``, in the dtype of ``A`` and the buckets combined.
    """
    n_out = out.shape[1]
    batch = a_t.shape[1]
    rows = _nonzero_rows(a_t)
    n_chunks = (n_out + CHUNK_COLUMNS - 1) // CHUNK_COLUMNS
    for chunk in prange(n_chunks):
        col0 = chunk * CHUNK_COLUMNS
        n_cols = min(CHUNK_COLUMNS, n_out - col0)
        acc = np.zeros((batch, n_cols), dtype=out.dtype)
        values = np.empty(n_cols, dtype=bucket_weights.dtype)
        for r in range(rows.shape[0]):
            i = rows[r]
            lo, hi = _row_bounds(firsts, ends, i, bucket_weights.shape[0])
            w = bucket_weights[lo:hi]  # the row's shard of buckets
            # One row of the chunk of W, then a rank-1 update: both loops run
            # over contiguous columns, which the compiler vectorises.
            if block:
                _block_run(values, w, states[i], sign_states[i], keys, sign_hash, col0)
            else:
                _element_run(values, w, states[i], sign_states[i], keys, sign_hash, col0)
            for b in range(batch):
                a = a_t[i, b]
                for c in range(n_cols):
                    acc[b, c] += a * values[c]
        out[:, col0 : col0 + n_cols] = acc


def block_table_nbytes(n_in, n_out):
    """Bytes of the tables of :func:`block_tables` for an ``n_in`` x ``n_out`` layer."""
    return n_in * -(-n_out // BLOCK_SIZE) * TABLE_BYTES_PER_RUN


@njit(parallel=True, cache=True)
def block_tables(states, sign_states, keys, n_buckets, firsts, ends, sign_hash, starts, signs):
    """Each run's first bucket and sign bits, for :func:`table_matmul` (block hashing).

    Run-major: the entries of one run column (16 columns of ``W``), row after
    row, are consecutive, as the batch-1 kernel walks them.

    Parameters
    ----------
    states, sign_states : ndarray of shape (n_in,), uint64
        :func:`row_states` of the layer's seed and of its sign seed.
    keys : ndarray of shape (n_runs,), uint64
        :func:`column_keys` of the layer's columns (block numbers).
    n_buckets : int
        Below 2**32.
    firsts, ends : ndarray of shape (n_in,), int64, or None
        :func:`row_bucket_ranges`: the buckets each row reads.
    sign_hash : bool
    starts : ndarray of shape (n_runs, n_in), uint32
        Written: the run's first bucket (:func:`_block_run`'s ``start``, plus
        the first bucket of the row's shard).
    signs : ndarray of shape (n_runs, n_in), uint16
        Written: bit ``t`` set where entry ``t`` of the run is negated (0 without signs).
    """
    for b in prange(starts.shape[0]):
        for i in range(starts.shape[1]):
            lo, hi = _row_bounds(firsts, ends, i, n_buckets)
            start = bucket_of(finish_hash(states[i], keys[b]), np.uint64(hi - lo))
            starts[b, i] = np.uint64(lo) + start
            if sign_hash:
                signs[b, i] = finish_hash(sign_states[i], keys[b]) & _SIGN_BITS
            else:
                signs[b, i] = 0


@njit(cache=True)
def table_matmul(a_t, bucket_weights, starts, signs, firsts, ends, out):
    """``out = A @ W`` under block hashing, from the tables of :func:`block_tables`.

    The same products as :func:`hashed_matmul` (rounding apart: the sign goes
    on the input for one row, on the weight for more, both exact), without a
    hash. Every output is one chain of fused multiply-adds in row order, the
    same bits for any batch and any number of threads.

    - Batch 1: parallel over pairs of run columns; a column's 16 outputs
      stay in a register (:class:`._vector_run.Lanes`) while it walks the rows.
    - More rows: parallel over chunks of ``TABLE_CHUNK_COLUMNS`` columns;
      each row of the chunk of ``W`` is written once, then a rank-1 update.

    Parameters
    ----------
    a_t : ndarray of shape (n_in, batch), C-contiguous
        The input, transposed.
    bucket_weights : ndarray of shape (n_buckets,)
    starts, signs : ndarray of shape (n_runs, n_in)
        From :func:`block_tables`.
    firsts, ends : ndarray of shape (n_in,), int64, or None
        :func:`row_bucket_ranges`, as given to :func:`block_tables`: where runs wrap.
    out : ndarray of shape (batch, n_out)
        Overwritten with ``A @ W``.
    """
    rows = _nonzero_rows(a_t)
    if a_t.shape[1] == 1:
        _column_walk(a_t, bucket_weights, starts, signs, firsts, ends, rows, out)
    else:
        _row_updates(a_t, bucket_weights, starts, signs, firsts, ends, rows, out)


@njit(inline="always", cache=True)
def _add_run(lanes, bucket_weights, start, a, bits, first, end):
    """``lanes`` plus one run times ``a``, read whole or, if it wraps, lane by lane.

    The row reads buckets ``first:end``: a run wraps round to ``first``.
    """
    if start + BLOCK_SIZE <= end:
        return lanes_fma(lanes, bucket_weights, start, a, bits)
    return lanes_fma_wrapped(lanes, bucket_weights[first:end], start - first, a, bits)


@njit(parallel=True, cache=True)
def _column_walk(a_t, bucket_weights, starts, signs, firsts, ends, rows, out):
    """:func:`table_matmul` at batch 1: run columns summed in registers, two at a time.

    Two columns walked together share the loop and the row's input and give
    the processor two independent chains of multiply-adds: the kernel went
    from 2.4-2.5 to 2.8-2.9 times the speed of the loop it replaced
    (``benchmarks/bench_vector_run.py`` at commits 3d88142 and 6c537e5).
    """
    n_out = out.shape[1]
    inputs = np.empty(rows.shape[0], dtype=a_t.dtype)
    for r in range(rows.shape[0]):
        inputs[r] = a_t[rows[r], 0]
    n_buckets = bucket_weights.shape[0]
    n_full = n_out // BLOCK_SIZE
    for pair in prange((n_full + 1) // 2):
        k = 2 * pair
        first = zero_lanes(out[0])
        if k + 1 < n_full:
            second = zero_lanes(out[0])
            for r in range(rows.shape[0]):
                i, a = rows[r], inputs[r]
                lo, hi = _row_bounds(firsts, ends, i, n_buckets)
                start, bits = np.int64(starts[k, i]), np.int64(signs[k, i])
                first = _add_run(first, bucket_weights, start, a, bits, lo, hi)
                start, bits = np.int64(starts[k + 1, i]), np.int64(signs[k + 1, i])
                second = _add_run(second, bucket_weights, start, a, bits, lo, hi)
            store_lanes(out[0], (k + 1) * BLOCK_SIZE, second)
        else:  # an odd column out
            for r in range(rows.shape[0]):
                i, a = rows[r], inputs[r]
                start, bits = np.int64(starts[k, i]), np.int64(signs[k, i])
                lo, hi = _row_bounds(firsts, ends, i, n_buckets)
                first = _add_run(first, bucket_weights, start, a, bits, lo, hi)
        store_lanes(out[0], k * BLOCK_SIZE, first)
    if n_full * BLOCK_SIZE < n_out:  # a last run of fewer than 16 columns
        acc = np.zeros(n_out - n_full * BLOCK_SIZE, dtype=out.dtype)
        for r in range(rows.shape[0]):
            i = rows[r]
            start, bits = np.int64(starts[n_full, i]), np.int64(signs[n_full, i])
            lo, hi = _row_bounds(firsts, ends, i, n_buckets)
            _wrapped_run_into(acc, 0, inputs[r], bucket_weights[lo:hi], start - lo, bits)
        out[0, n_full * BLOCK_SIZE :] = acc


@njit(parallel=True, cache=True)
def _row_updates(a_t, bucket_weights, starts, signs, firsts, ends, rows, out):
    """:func:`table_matmul` for more rows: a row of a chunk of ``W``, then a rank-1 update."""
    n_out = out.shape[1]
    batch = a_t.shape[1]
    runs_per_chunk = TABLE_CHUNK_COLUMNS // BLOCK_SIZE
    n_chunks = (n_out + TABLE_CHUNK_COLUMNS - 1) // TABLE_CHUNK_COLUMNS
    for chunk in prange(n_chunks):
        col0 = chunk * TABLE_CHUNK_COLUMNS
        n_cols = min(TABLE_CHUNK_COLUMNS, n_out - col0)
        acc = np.zeros((batch, n_cols), dtype=out.dtype)
        values = np.empty(n_cols, dtype=bucket_weights.dtype)  # a row of W, signed
        one = np.ones(1, dtype=bucket_weights.dtype)[0]
        n_runs = (n_cols + BLOCK_SIZE - 1) // BLOCK_SIZE
        first_run = chunk * runs_per_chunk
        for r in range(rows.shape[0]):
            i = rows[r]
            values[:] = 0
            _row_into(
                values, one, bucket_weights, starts, signs, i, first_run, n_runs, firsts, ends
            )
            for q in range(batch):
                _axpy(acc[q], a_t[i, q], values)
        out[:, col0 : col0 + n_cols] = acc


@njit(cache=True, fastmath={"contract"})
def _axpy(y, a, x):
    """``y += a * x`` (1-D, contiguous): a loop LLVM vectorises, with fused multiply-adds.

    Fused as the runs are, so that a row gives the same bits alone or in a batch.
    """
    for c in range(y.shape[0]):
        y[c] += a * x[c]


@njit(cache=True, fastmath={"contract"})
def _row_into(acc, a, bucket_weights, starts, signs, i, first_run, n_runs, firsts, ends):
    """``acc += a * W[i, chunk]`` for row ``i`` whose input is ``a``, from the run-major tables.

    The row reads its range of buckets (:func:`_row_bounds`). Multiply-adds
    may be fused (``fastmath={"contract"}``: one rounding, not two).
    """
    n_cols = acc.shape[0]
    row_buckets, first = _row_buckets(bucket_weights, firsts, ends, i)
    last_start = first + row_buckets.shape[0] - BLOCK_SIZE
    for k in range(n_runs):
        # Indices from products of loop counters and widened unsigned
        # table entries: LLVM sees that none is negative.
        c = k * BLOCK_SIZE
        start = np.int64(starts[first_run + k, i])
        bits = np.int64(signs[first_run + k, i])
        if start <= last_start and c + BLOCK_SIZE <= n_cols:
            signed_run_fma(acc, c, bucket_weights, start, a, bits)  # one vector of 16
        else:
            _wrapped_run_into(acc, c, a, row_buckets, start - first, bits)


@njit(cache=True, fastmath={"contract"})
def _wrapped_run_into(acc, c, a, bucket_weights, start, bits):
    """:func:`_row_into` for a run that wraps around the buckets or ends the chunk early."""
    n_buckets = bucket_weights.shape[0]
    for t in range(min(BLOCK_SIZE, acc.shape[0] - c)):
        v = bucket_weights[(start + t) % n_buckets]
        acc[c + t] += a * (-v if (bits >> t) & 1 else v)
