"""The Numba kernels and the CPU backend against the NumPy reference.

Materialise and scatter, element and block hashing, bucket index tiles, far
inside huge virtual matrices, and the same bits whatever the thread count or
the scatter's workspace.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from _hash_vectors import LAYER_SEED
from numpy.testing import assert_allclose, assert_array_equal

from sk_hashednets._kernels import (
    LayerHash,
    _reference,
    get_backend,
    hash_pairs,
    sign_seed,
)
from sk_hashednets._kernels._cpu import _read_only
from sk_hashednets._kernels._hashing import (
    HASHING_MODES,
)
from sk_hashednets._kernels._numba import (
    materialize_tile,
    materialize_tile_block,
    scatter_bucket_grad,
)
from sk_hashednets._kernels._reference import bucket_grad, materialize

# ----------------------------------------------------------------------------
# Numba kernels against the NumPy reference
# ----------------------------------------------------------------------------


def _materialize_numba(bucket_weights, seed, n_rows, n_out, sign_hash, row_start):
    out = np.empty((n_rows, n_out), dtype=bucket_weights.dtype)
    # Read-only buckets, as the CPU backend passes them: one compilation per dtype.
    materialize_tile(
        _read_only(bucket_weights),
        np.uint64(seed),
        sign_seed(seed),
        sign_hash,
        row_start,
        out,
        0,
        1,
        1,
    )
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sign_hash", [True, False])
@pytest.mark.parametrize(
    "n_in, n_out, row_start, n_buckets",
    [(41, 37, 0, 101), (41, 37, 13, 101), (300, 7, 250, 1), (64, 64, 0, 4096)],
)
def test_materialize_tile_matches_reference(dtype, sign_hash, n_in, n_out, row_start, n_buckets):
    rng = np.random.default_rng(0)
    bucket_weights = rng.standard_normal(n_buckets).astype(dtype)
    got = _materialize_numba(
        bucket_weights, LAYER_SEED, n_in - row_start, n_out, sign_hash, row_start
    )
    expected = materialize(bucket_weights, LAYER_SEED, n_in, n_out, sign_hash, row_start)
    assert got.dtype == expected.dtype == dtype
    assert_array_equal(got, expected, strict=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sign_hash", [True, False])
def test_materialize_tile_beyond_32bit_linear_index(dtype, sign_hash):
    # The last rows of a (2**32) x 70000 virtual matrix: 3e14 entries.
    n_in, n_out, row_start = 2**32, 70000, 2**32 - 5
    rng = np.random.default_rng(1)
    bucket_weights = rng.standard_normal(70001).astype(dtype)
    got = _materialize_numba(bucket_weights, LAYER_SEED, 5, n_out, sign_hash, row_start)
    expected = materialize(bucket_weights, LAYER_SEED, n_in, n_out, sign_hash, row_start)
    assert_array_equal(got, expected, strict=True)
    # Not a copy of the first rows, as a wrapped 32-bit index could make it.
    first_rows = _materialize_numba(bucket_weights, LAYER_SEED, 5, n_out, sign_hash, 0)
    assert np.mean(got == first_rows) < 0.01


def _scatter_numba(
    grad_tile, seed, n_buckets, sign_hash, row_start, out=None, block_rows=3, hashing="element"
):
    out = np.zeros(n_buckets, dtype=grad_tile.dtype) if out is None else out
    partials = np.empty((2, n_buckets), dtype=grad_tile.dtype)
    before = grad_tile.copy()
    scatter_bucket_grad(
        grad_tile,
        np.uint64(seed),
        sign_seed(seed),
        sign_hash,
        row_start,
        out,
        block_rows,
        partials,
        HASHING_MODES[hashing],
    )
    assert_array_equal(grad_tile, before)  # the gradient tile is left as it was
    return out


SCATTER_CASES = [(40, 30, 0, 97), (40, 30, 17, 5), (8, 200, 2**32 - 8, 1000), (25, 25, 3, 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sign_hash", [True, False])
@pytest.mark.parametrize("n_rows, n_out, row_start, n_buckets", SCATTER_CASES)
def test_scatter_bucket_grad_matches_reference(
    dtype, sign_hash, n_rows, n_out, row_start, n_buckets
):
    rng = np.random.default_rng(2)
    grad_tile = rng.standard_normal((n_rows, n_out)).astype(dtype)
    got = _scatter_numba(grad_tile, LAYER_SEED, n_buckets, sign_hash, row_start)
    expected = bucket_grad(grad_tile, LAYER_SEED, n_buckets, sign_hash, row_start)
    assert got.dtype == dtype and expected.dtype == np.float64
    # Bound on the error of a recursive sum of n terms in the kernel's dtype:
    # n * eps * sum(|terms|), per bucket.
    abs_sum = bucket_grad(np.abs(grad_tile), LAYER_SEED, n_buckets, False, row_start)
    bucket, _ = hash_pairs(
        LAYER_SEED,
        np.arange(row_start, row_start + n_rows, dtype=np.uint64)[:, None],
        np.arange(n_out, dtype=np.uint64)[None, :],
        n_buckets,
    )
    n_terms = np.bincount(bucket.ravel(), minlength=n_buckets)
    tolerance = n_terms * np.finfo(dtype).eps * abs_sum
    assert np.all(np.abs(got - expected) <= tolerance)
    if dtype == np.float64:
        assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


_THREADS_SCRIPT = """
import sys
import numba
import numpy as np
from sk_hashednets._kernels import sign_seed
from sk_hashednets._kernels._numba import scatter_bucket_grad

seed, cases, thread_counts = {seed!r}, {cases!r}, {thread_counts!r}
results = {{}}
for n_rows, n_out, row_start, n_buckets in cases:
    for dtype in ("float32", "float64"):
        for sign_hash in (True, False):
            rng = np.random.default_rng(3)
            grad = rng.standard_normal((n_rows, n_out)).astype(dtype)
            for n_threads in thread_counts:
                numba.set_num_threads(n_threads)
                out = np.zeros(n_buckets, dtype=dtype)
                # Room for two blocks of 3 rows at a time, whatever the threads.
                partials = np.empty((2, n_buckets), dtype=dtype)
                scatter_bucket_grad(
                    grad, np.uint64(seed), sign_seed(seed), sign_hash, row_start,
                    out, 3, partials,
                )
                key = f"{{n_rows}}-{{n_out}}-{{row_start}}-{{n_buckets}}-{{dtype}}-{{sign_hash}}"
                results[f"{{key}}-{{n_threads}}"] = out
np.savez(sys.argv[1], **results)
"""


def test_scatter_bucket_grad_independent_of_thread_count(tmp_path):
    # Numba's thread count is capped by NUMBA_NUM_THREADS, read at import: a
    # child process with NUMBA_NUM_THREADS=7 runs the kernel on 1, 2, 3 and 7
    # threads whatever the number of cores here.
    thread_counts = (1, 2, 3, 7)
    script = _THREADS_SCRIPT.format(
        seed=LAYER_SEED, cases=SCATTER_CASES, thread_counts=thread_counts
    )
    path = tmp_path / "results.npz"
    env = {**os.environ, "NUMBA_NUM_THREADS": str(max(thread_counts))}
    completed = subprocess.run(
        [sys.executable, "-c", script, str(path)], env=env, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    with np.load(path) as results:
        keys = sorted({name.rsplit("-", 1)[0] for name in results.files})
        assert len(keys) == 4 * len(SCATTER_CASES)
        for key in keys:
            first = results[f"{key}-1"]
            for n_threads in thread_counts[1:]:
                assert_array_equal(results[f"{key}-{n_threads}"], first, strict=True)


@pytest.mark.parametrize("hashing", ["element", "block"])
def test_scatter_workspace_size_changes_no_bit(hashing):
    # The scatter sums its blocks in waves of as many as the workspace holds:
    # one block at a time, a few, or all of them (what the CPU backend gives
    # small bucket vectors) must give the same bits.
    rng = np.random.default_rng(4)
    n_rows, n_out, n_buckets, block_rows = 40, 30, 97, 3
    grad = rng.standard_normal((n_rows, n_out)).astype(np.float32)
    n_blocks = -(-n_rows // block_rows)
    results = []
    for n_partials in (1, 2, 5, n_blocks):
        out = np.zeros(n_buckets, dtype=np.float32)
        partials = np.empty((n_partials, n_buckets), dtype=np.float32)
        seeds = np.uint64(LAYER_SEED), sign_seed(LAYER_SEED)
        scatter_bucket_grad(
            grad, *seeds, True, 0, out, block_rows, partials, HASHING_MODES[hashing]
        )
        results.append(out)
    for out in results[1:]:
        assert_array_equal(out, results[0], strict=True)
    backend = get_backend("cpu")
    small = backend.scatter_workspace(n_rows, block_rows, n_buckets, np.float32)[1]
    assert small.shape == (n_blocks, n_buckets)  # one wave for a small bucket vector


@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("sign_hash", [True, False])
def test_scatter_bucket_grad_accumulates_tiles(sign_hash, hashing):
    # Row tiles that start on scatter-block boundaries add every bucket's terms
    # in the same order as scattering the whole matrix at once, whatever the
    # room for partial sums.
    rng = np.random.default_rng(4)
    grad = rng.standard_normal((30, 20)).astype(np.float32)
    whole = _scatter_numba(grad, LAYER_SEED, 50, sign_hash, 0, block_rows=5, hashing=hashing)
    for tiles in ([(0, 10), (10, 30)], [(0, 5), (5, 25), (25, 30)]):
        tiled = np.zeros(50, dtype=np.float32)
        for start, stop in tiles:
            _scatter_numba(
                grad[start:stop],
                LAYER_SEED,
                50,
                sign_hash,
                start,
                out=tiled,
                block_rows=5,
                hashing=hashing,
            )
        assert_array_equal(tiled, whole, strict=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sign_hash", [True, False])
@pytest.mark.parametrize("hashing", ["element", "block"])
# 1 and 7 buckets: a block of 16 wraps around the buckets more than once; 16
# and 1000: at most once.
@pytest.mark.parametrize("n_buckets", [1, 7, 16, 1000])
def test_bucket_index_tiles_give_the_hashed_results_bit_for_bit(
    dtype, sign_hash, hashing, n_buckets
):
    rng = np.random.default_rng(n_buckets)
    n_rows, n_cols = 21, 37
    w = rng.standard_normal(n_buckets).astype(dtype)
    grad = rng.standard_normal((n_rows, n_cols)).astype(dtype)
    backend = get_backend("cpu")
    layer_hash = LayerHash.for_layer(
        LAYER_SEED, sign_hash=sign_hash, hashing=hashing, n_buckets=n_buckets
    )
    index = np.empty((n_rows, n_cols), dtype=np.uint32)
    backend.bucket_index_tile(layer_hash, index)
    bucket, sign = hash_pairs(
        LAYER_SEED, np.arange(n_rows)[:, None], np.arange(n_cols)[None, :], n_buckets, hashing
    )
    assert_array_equal(index & 0x7FFFFFFF, bucket)
    assert_array_equal(index >> 31, (sign < 0) & sign_hash)

    hashed, gathered = np.empty((n_rows, n_cols), dtype), np.empty((n_rows, n_cols), dtype)
    backend.materialize_tile(layer_hash, w, hashed)
    backend.gather_tile(w, index, gathered)
    assert_array_equal(gathered, hashed, strict=True)

    block_rows = backend.scatter_block_rows(n_rows, n_cols, n_buckets)
    scratch = backend.scatter_workspace(n_rows, block_rows, n_buckets, dtype)
    by_hash, by_index = np.zeros(n_buckets, dtype), np.zeros(n_buckets, dtype)
    backend.scatter_bucket_grad(layer_hash, grad, by_hash, scratch)
    backend.scatter_indexed(grad, index, by_index, scratch)
    assert_array_equal(by_index, by_hash, strict=True)
    assert_allclose(
        by_hash,
        _reference.bucket_grad(grad, LAYER_SEED, n_buckets, sign_hash, hashing=hashing),
        rtol=1e-4 if dtype == np.float32 else 1e-12,
        atol=1e-5 if dtype == np.float32 else 1e-12,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_buckets", [5, 16, 1000])
@pytest.mark.parametrize("row_start, col_start", [(0, 0), (3, 7), (2**32 - 4, 5)])
def test_block_materialize_is_bit_identical_to_reference(dtype, n_buckets, row_start, col_start):
    rng = np.random.default_rng(n_buckets)
    w = rng.standard_normal(n_buckets).astype(dtype)
    out = np.empty((4, 45), dtype=dtype)
    materialize_tile_block(
        _read_only(w), np.uint64(9), sign_seed(9), True, row_start, out, col_start, 1, 1
    )
    ref = _reference.materialize(
        w, 9, row_start + 4, col_start + 45, True, row_start=row_start, hashing="block"
    )[:, col_start:]
    np.testing.assert_array_equal(out, ref, strict=True)


@pytest.mark.parametrize("n_buckets", [5, 1000])
def test_block_scatter_matches_reference(n_buckets):
    rng = np.random.default_rng(0)
    grad = rng.standard_normal((30, 50))
    out = _scatter_numba(grad, 4, n_buckets, True, 11, hashing="block")
    ref = _reference.bucket_grad(grad, 4, n_buckets, True, row_start=11, hashing="block")
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "n_in, n_out",
    [(40_000, 60_000), (70_000, 70_000)],
    ids=["above-2**31-entries", "above-2**32-entries"],
)
@pytest.mark.parametrize("hashing", ["element", "block"])
def test_tile_far_inside_a_huge_virtual_matrix(n_in, n_out, hashing):
    """The last rows (and a far column tile) of 2.4e9- and 4.9e9-entry matrices."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal(n_in * n_out // 1024).astype(np.float32)
    kernel = materialize_tile_block if hashing == "block" else materialize_tile
    row_start, col_start = n_in - 3, n_out - 50
    out = np.empty((3, 50), dtype=np.float32)
    kernel(w, np.uint64(LAYER_SEED), sign_seed(LAYER_SEED), True, row_start, out, col_start, 1, 1)
    expected = _reference.materialize(
        w, LAYER_SEED, n_in, n_out, True, row_start=row_start, hashing=hashing
    )[:, col_start:]
    assert_array_equal(out, expected, strict=True)
