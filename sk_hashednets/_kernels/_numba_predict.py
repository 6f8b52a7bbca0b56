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

Parallel over fixed chunks of ``CHUNK_COLUMNS`` output columns: every output
entry is one chain of additions in row order, the same bit for bit whatever
the number of threads (or of Python threads calling at once).
"""

import numpy as np
from numba import njit, prange

from ._hashing import BLOCK_SIZE, bucket_of, column_key, finish_hash, is_negative, row_state

#: Output columns per parallel chunk: a whole number of hashing blocks.
CHUNK_COLUMNS = 16 * BLOCK_SIZE
_ONE = np.uint64(1)


def row_states(seed, n_rows):
    """Hash states after the row word of rows ``0:n_rows`` (:func:`row_state`), uint64."""
    return row_state.py_func(np.uint64(seed), np.arange(n_rows, dtype=np.uint64))


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
    for c in range(0, n_cols, BLOCK_SIZE):
        key = keys[(col0 + c) // BLOCK_SIZE]
        start = np.int64(bucket_of(finish_hash(state, key), k))
        signs = finish_hash(sign_state, key) if sign_hash else np.uint64(0)
        run = min(BLOCK_SIZE, n_cols - c)
        if start + run <= n_buckets:  # no wrap-around: a contiguous run of buckets
            for t in range(run):
                v = w[start + t]
                values[c + t] = -v if (signs >> np.uint64(t)) & _ONE else v
        else:
            for t in range(run):
                v = w[(start + t) % n_buckets]
                values[c + t] = -v if (signs >> np.uint64(t)) & _ONE else v


@njit(parallel=True, cache=True)
def hashed_matmul(a_t, bucket_weights, states, sign_states, keys, sign_hash, block, out):
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
            # One row of the chunk of W, then a rank-1 update: both loops run
            # over contiguous columns, which the compiler vectorises.
            if block:
                _block_run(values, bucket_weights, states[i], sign_states[i], keys, sign_hash, col0)
            else:
                _element_run(
                    values, bucket_weights, states[i], sign_states[i], keys, sign_hash, col0
                )
            for b in range(batch):
                a = a_t[i, b]
                for c in range(n_cols):
                    acc[b, c] += a * values[c]
        out[:, col0 : col0 + n_cols] = acc
