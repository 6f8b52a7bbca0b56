"""The hash specification and the kernels that implement it.

The specification is written in ``docs/hashing.md`` and in
``sk_hashednets/_kernels/_hashing.py``. These tests check that the two agree
(through the document's table of test vectors), that both agree with an
independent MurmurHash3 (``mmh3``), that the map is statistically sound, and
that the Numba kernels and the tiled layer reproduce the NumPy reference.
"""

import os
import re
import struct
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
from _hash_vectors import BLOCK_VECTORS, DOC, ELEMENT_VECTORS
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import binomtest, chi2_contingency, chisquare
from sklearn.datasets import make_classification

from sk_hashednets import HashedMLPClassifier, _hashed_layer
from sk_hashednets._hashed_layer import HashedLayer
from sk_hashednets._kernels import (
    HASH_SPEC_VERSION,
    LayerHash,
    _reference,
    get_backend,
    hash_pairs,
    sign_seed,
)
from sk_hashednets._kernels._hashing import (
    BLOCK_SIZE,
    HASHING_MODES,
    SIGN_SEED_XOR,
    bucket_of,
    column_key,
    finish_hash,
    is_negative,
    row_state,
)
from sk_hashednets._kernels._numba import (
    materialize_tile,
    materialize_tile_block,
    scatter_bucket_grad,
)
from sk_hashednets._kernels._reference import bucket_grad, materialize

MAX_U32 = 2**32 - 1
# p-value below which a statistical test fails. The tests are deterministic
# (fixed seeds and grids); a sound map gives p-values spread over (0, 1), the
# biased maps of the negative controls give p-values below 1e-12.
ALPHA = 1e-6


def _mmh3_hash(mmh3, seed, i, j):
    return mmh3.hash(struct.pack("<II", i, j), seed, signed=False)


DOC_VECTORS = ELEMENT_VECTORS
DOC_VECTOR_IDS = [f"seed={s}-i={i}-j={j}-K={k}" for s, i, j, k, *_ in DOC_VECTORS]


# ----------------------------------------------------------------------------
# The document's test vectors
# ----------------------------------------------------------------------------


def test_doc_names_current_spec_version():
    versions = re.findall(r"HASH_SPEC_VERSION = (\d+)", DOC.read_text(encoding="utf-8"))
    assert versions and {int(v) for v in versions} == {HASH_SPEC_VERSION}


def test_doc_vectors_cover_edge_cases():
    assert len(DOC_VECTORS) >= 12
    assert len(set(DOC_VECTORS)) == len(DOC_VECTORS)
    seeds, rows, cols, n_buckets = (set(column) for column in list(zip(*DOC_VECTORS))[:4])
    assert {0, MAX_U32} <= seeds
    assert {1, MAX_U32} <= n_buckets
    assert any(k & (k - 1) for k in n_buckets), "a K that is not a power of two"
    assert max(rows) == MAX_U32 and max(cols) == MAX_U32
    assert any(i * 70000 + j >= 2**32 for _, i, j, *_ in DOC_VECTORS)


@pytest.mark.parametrize("vector", DOC_VECTORS, ids=DOC_VECTOR_IDS)
def test_doc_vectors_numpy_spec(vector):
    seed, i, j, n_buckets, _, _, bucket, sign = vector
    got_bucket, got_sign = hash_pairs(seed, [i], [j], n_buckets)
    assert got_bucket.tolist() == [bucket]
    assert got_sign.tolist() == [sign]


@pytest.mark.parametrize("vector", DOC_VECTORS, ids=DOC_VECTOR_IDS)
def test_doc_vectors_numba_scalar_functions(vector):
    seed, i, j, n_buckets, hash_value, sign_hash_value, bucket, sign = vector
    u64 = np.uint64
    key_j = column_key(u64(j))
    h = finish_hash(row_state(u64(seed), u64(i)), key_j)
    h_sign = finish_hash(row_state(sign_seed(seed), u64(i)), key_j)
    assert (h, h_sign) == (hash_value, sign_hash_value)
    assert bucket_of(u64(h), u64(n_buckets)) == bucket
    assert 1 - 2 * is_negative(u64(h_sign)) == sign
    # Called from Python, these dispatch to the compiled versions.
    assert row_state.signatures and finish_hash.signatures and bucket_of.signatures


@pytest.mark.parametrize("vector", DOC_VECTORS, ids=DOC_VECTOR_IDS)
def test_doc_vectors_mmh3(vector):
    mmh3 = pytest.importorskip("mmh3", reason="mmh3 is needed for the independent check")
    seed, i, j, n_buckets, hash_value, sign_hash_value, bucket, sign = vector
    assert _mmh3_hash(mmh3, seed, i, j) == hash_value
    assert _mmh3_hash(mmh3, seed ^ 0x9E3779B9, i, j) == sign_hash_value
    assert (hash_value * n_buckets) >> 32 == bucket
    assert (1 if sign_hash_value < 2**31 else -1) == sign


# ----------------------------------------------------------------------------
# The specification against an independent MurmurHash3
# ----------------------------------------------------------------------------


def test_sign_seed_constant():
    assert SIGN_SEED_XOR == 0x9E3779B9
    assert sign_seed(0) == 0x9E3779B9
    assert sign_seed(0x9E3779B9) == 0
    assert sign_seed(MAX_U32) == MAX_U32 ^ 0x9E3779B9


def test_random_keys_agree_with_mmh3():
    mmh3 = pytest.importorskip("mmh3", reason="mmh3 is needed for the independent check")
    rng = np.random.default_rng(0)
    n_seeds, n_pairs = 40, 100
    seeds = rng.integers(0, 2**32, n_seeds, dtype=np.uint64)
    n_buckets = rng.integers(1, 2**32, n_seeds, dtype=np.uint64)
    n_buckets[:4] = [1, 2, MAX_U32, 1000]
    for seed, k in zip(seeds.tolist(), n_buckets.tolist()):
        i = rng.integers(0, 2**32, n_pairs, dtype=np.uint64)
        j = rng.integers(0, 2**32, n_pairs, dtype=np.uint64)
        i[:2], j[:2] = MAX_U32, [0, MAX_U32]
        h = finish_hash.py_func(row_state.py_func(np.uint64(seed), i), column_key.py_func(j))
        bucket, sign = hash_pairs(seed, i, j, k)
        expected_h = [_mmh3_hash(mmh3, seed, a, b) for a, b in zip(i.tolist(), j.tolist())]
        expected_sign = [
            1 - 2 * (_mmh3_hash(mmh3, seed ^ 0x9E3779B9, a, b) >> 31)
            for a, b in zip(i.tolist(), j.tolist())
        ]
        assert h.tolist() == expected_h
        assert bucket.tolist() == [(x * k) >> 32 for x in expected_h]
        assert sign.tolist() == expected_sign
        assert 0 <= bucket.min() and bucket.max() < k


def test_row_and_column_are_separate_words():
    # With n_out = 2**16, a 32-bit linear index i * n_out + j would give
    # rows i and i + 2**16 the same keys.
    seed, n_buckets = 3, 1000
    rows = np.array([[5], [5 + 2**16]])
    bucket, sign = hash_pairs(seed, rows, np.arange(2000)[None, :], n_buckets)
    assert np.mean(bucket[0] == bucket[1]) < 0.01
    assert 0.4 < np.mean(sign[0] == sign[1]) < 0.6
    # The key is ordered: (i, j) and (j, i) are different entries.
    grid = np.arange(60)
    bucket, _ = hash_pairs(seed, grid[:, None], grid[None, :], n_buckets)
    assert np.mean(bucket == bucket.T) < 0.05


@pytest.mark.parametrize(
    "i, j",
    [
        (5, np.arange(4)),
        (np.array(5), np.arange(4)),
        (np.full(4, 5), 2),
        (np.full((1, 1), 5), np.arange(4)),
        ([5, 5, 5, 5], [0, 1, 2, 3]),
    ],
    ids=["int-array", "0d-array", "array-int", "2d-array", "lists"],
)
def test_hash_pairs_broadcasts_scalars_and_arrays(i, j):
    # hash_pairs documents i and j as array-likes broadcast together.
    i_flat, j_flat = (a.ravel() for a in np.broadcast_arrays(np.asarray(i), np.asarray(j)))
    expected_bucket, expected_sign = hash_pairs(3, i_flat, j_flat, 1000)
    bucket, sign = hash_pairs(3, i, j, 1000)
    expected_shape = np.broadcast_shapes(np.shape(i), np.shape(j))
    assert np.shape(bucket) == np.shape(sign) == expected_shape
    assert_array_equal(np.ravel(bucket), expected_bucket)
    assert_array_equal(np.ravel(sign), expected_sign)


# ----------------------------------------------------------------------------
# Statistics of the map
# ----------------------------------------------------------------------------

GRID_SHAPE = (784, 500)  # a first layer on MNIST-sized input
SEEDS = [0, 12345, MAX_U32]


def _grid_hashes(seed):
    rows = np.arange(GRID_SHAPE[0], dtype=np.uint64)[:, None]
    cols = np.arange(GRID_SHAPE[1], dtype=np.uint64)[None, :]
    return finish_hash.py_func(row_state.py_func(np.uint64(seed), rows), column_key.py_func(cols))


def _uniformity_pvalue(buckets, n_buckets):
    counts = np.bincount(np.asarray(buckets, dtype=np.int64).ravel(), minlength=n_buckets)
    assert len(counts) == n_buckets
    return chisquare(counts).pvalue


def _independence_pvalue(a, b):
    a, b = np.ravel(a).astype(bool), np.ravel(b).astype(bool)
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    return chi2_contingency(table).pvalue


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_buckets", [2, 3, 1000, 1024, 4099, 12345, 39200])
def test_buckets_are_uniform(seed, n_buckets):
    bucket, _ = hash_pairs(
        seed, np.arange(GRID_SHAPE[0])[:, None], np.arange(GRID_SHAPE[1])[None, :], n_buckets
    )
    assert _uniformity_pvalue(bucket, n_buckets) > ALPHA


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_buckets", [1000, 4099, 12345, 39200])
def test_uniformity_test_detects_biased_maps(seed, n_buckets):
    # Negative controls: the same statistic, threshold and grid reject a bit
    # mask (K not a power of two leaves buckets empty) and a multiply-high that
    # keeps only 16 bits of the hash (relative bias up to K / 2**16).
    h = _grid_hashes(seed)
    k = np.uint64(n_buckets)
    assert bucket_of.py_func(h, k).max() < n_buckets
    assert _uniformity_pvalue(bucket_of.py_func(h, k), n_buckets) > ALPHA
    assert _uniformity_pvalue(h & (k - np.uint64(1)), n_buckets) < ALPHA
    if n_buckets > 2**13:
        coarse = ((h >> np.uint64(16)) * k) >> np.uint64(16)
        assert _uniformity_pvalue(coarse, n_buckets) < ALPHA


@pytest.mark.parametrize("seed", SEEDS)
def test_signs_are_balanced(seed):
    _, sign = hash_pairs(
        seed, np.arange(GRID_SHAPE[0])[:, None], np.arange(GRID_SHAPE[1])[None, :], 1000
    )
    n_negative = int(np.sum(sign < 0))
    assert set(np.unique(sign).tolist()) == {-1, 1}
    assert binomtest(n_negative, sign.size, 0.5).pvalue > ALPHA


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_buckets", [2, 1000, 4099])
def test_sign_independent_of_bucket(seed, n_buckets):
    rows, cols = np.arange(GRID_SHAPE[0])[:, None], np.arange(GRID_SHAPE[1])[None, :]
    bucket, sign = hash_pairs(seed, rows, cols, n_buckets)
    negative = sign < 0
    assert _independence_pvalue(negative, bucket % 2 == 1) > ALPHA
    # The multiply-high takes the bucket from the high bits of the hash:
    # the sign must not be a function of them.
    upper_half = bucket >= n_buckets // 2
    assert _independence_pvalue(negative, upper_half) > ALPHA
    # Negative control: the top bit of the bucket hash is detected as dependent.
    same_hash_negative = _grid_hashes(seed) >> np.uint64(31)
    assert _independence_pvalue(same_hash_negative, upper_half) < ALPHA


# ----------------------------------------------------------------------------
# Numba kernels against the NumPy reference
# ----------------------------------------------------------------------------

LAYER_SEED = 2718281828


def _materialize_numba(bucket_weights, seed, n_rows, n_out, sign_hash, row_start):
    out = np.empty((n_rows, n_out), dtype=bucket_weights.dtype)
    materialize_tile(bucket_weights, np.uint64(seed), sign_seed(seed), sign_hash, row_start, out)
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


# ----------------------------------------------------------------------------
# HashedLayer: several tiles against one
# ----------------------------------------------------------------------------


def _layers(n_in, n_out, dtype, sign_hash, n_buckets):
    backend = get_backend("cpu")
    kw = dict(n_buckets=n_buckets)
    one_tile = HashedLayer(backend, n_in, n_out, LAYER_SEED, sign_hash, dtype, **kw)
    indexed = HashedLayer(backend, n_in, n_out, LAYER_SEED, sign_hash, dtype, keep_index=True, **kw)
    # Row tiles hold whole scatter blocks: two blocks a tile, then the least, one.
    block_rows = one_tile.scatter_block_rows
    row_bytes = n_out * np.dtype(dtype).itemsize
    two_blocks = HashedLayer(
        backend, n_in, n_out, LAYER_SEED, sign_hash, dtype, 2 * block_rows * row_bytes + 1, **kw
    )
    one_block = HashedLayer(backend, n_in, n_out, LAYER_SEED, sign_hash, dtype, 1, **kw)
    assert one_tile.single_tile and not one_tile.keeps_index and indexed.keeps_index
    assert 1 < block_rows < n_in // 2
    assert two_blocks.rows_per_tile == 2 * block_rows and one_block.rows_per_tile == block_rows
    for layer in (two_blocks, one_block):
        assert len(layer.tiles) > 2 and all(start % block_rows == 0 for start, _ in layer.tiles)
    return [one_tile, indexed, two_blocks, one_block]


def _layer_data(seed, n_samples, n_in, n_out, n_buckets, dtype, zeros):
    """Buckets, a layer input with a share ``zeros`` of zeros, and an output gradient."""
    rng = np.random.default_rng(seed)
    bucket_weights = rng.standard_normal(n_buckets).astype(dtype)
    A = rng.standard_normal((n_samples, n_in)).astype(dtype)
    A[rng.random(A.shape) < zeros] = 0
    D = rng.standard_normal((n_samples, n_out)).astype(dtype)
    return bucket_weights, A, D


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sign_hash", [True, False])
@pytest.mark.parametrize("sparse_input", [False, True])
def test_hashed_layer_tiles_agree(dtype, sign_hash, sparse_input):
    n_samples, n_in, n_out, n_buckets = 11, 37, 23, 101
    bucket_weights, A, D = _layer_data(5, n_samples, n_in, n_out, n_buckets, dtype, zeros=0.6)
    A_input = sp.csr_matrix(A) if sparse_input else A

    W = materialize(bucket_weights.astype(np.float64), LAYER_SEED, n_in, n_out, sign_hash)
    A64, D64 = A.astype(np.float64), D.astype(np.float64)
    expected_dot = A64 @ W
    expected_dot_t = D64 @ W.T
    expected_grad = bucket_grad(A64.T @ D64, LAYER_SEED, n_buckets, sign_hash)
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    atol = rtol * 10

    dots, dots_t, grads = [], [], []
    for layer in _layers(n_in, n_out, dtype, sign_hash, n_buckets):
        dots.append(layer.dot(A_input, bucket_weights))
        dots_t.append(layer.dot_transposed(D, bucket_weights))
        grads.append(layer.bucket_grad(A_input, D, np.full(n_buckets, np.nan, dtype=dtype)))
    for got_dot, got_dot_t, got_grad in zip(dots, dots_t, grads):
        assert got_dot.dtype == got_dot_t.dtype == got_grad.dtype == dtype
        assert got_dot.shape == (n_samples, n_out) and got_dot_t.shape == (n_samples, n_in)
        assert_allclose(got_dot, expected_dot, rtol=rtol, atol=atol)
        assert_allclose(got_dot_t, expected_dot_t, rtol=rtol, atol=atol)
        assert_allclose(got_grad, expected_grad, rtol=rtol, atol=atol)
    # The kept bucket index changes nothing, bit for bit.
    for got in (dots, dots_t, grads):
        assert_array_equal(got[1], got[0], strict=True)


def _assert_same_products(results):
    """Every layer's three products equal the first layer's, bit for bit."""
    for got in results[1:]:
        for product, expected in zip(got, results[0]):
            assert_array_equal(product, expected, strict=True)


def _products(layer, A, D, bucket_weights):
    grad = layer.bucket_grad(A, D, np.full(layer.n_buckets, np.nan, dtype=layer.dtype))
    return layer.dot(A, bucket_weights), layer.dot_transposed(D, bucket_weights), grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("sparse_input", [False, True])
def test_tile_budget_changes_no_bit(monkeypatch, dtype, hashing, sparse_input):
    # Panels of 256 bytes (32 MiB in the package) make many panels of a small
    # layer; budgets of one panel, of a few, and the untiled layer then give
    # the same bits: the products run panel by panel, whatever the tiles.
    monkeypatch.setattr(_hashed_layer, "PANEL_BYTES", 256)
    n_samples, n_in, n_out, n_buckets = 13, 70, 90, 300
    bucket_weights, A, D = _layer_data(7, n_samples, n_in, n_out, n_buckets, dtype, zeros=0.5)
    A_input = sp.csr_matrix(A) if sparse_input else A
    backend = get_backend("cpu")
    results = []
    for tile_bytes in (None, 256, 700, 3000):
        kw = {} if tile_bytes is None else {"tile_bytes": tile_bytes}
        layer = HashedLayer(
            backend,
            n_in,
            n_out,
            LAYER_SEED,
            True,
            dtype,
            hashing=hashing,
            n_buckets=n_buckets,
            keep_index=True,
            **kw,
        )
        assert len(layer.row_panels) > 2 and len(layer.column_panels) > 2
        assert layer.single_tile == (tile_bytes is None)
        results.append(_products(layer, A_input, D, bucket_weights))
    assert results[0][0].dtype == dtype
    _assert_same_products(results)


@pytest.mark.parametrize("n_in, n_out", [(1, 3), (2, 5)])
def test_one_row_over_the_budget_still_multiplies_by_columns(n_in, n_out):
    # A row over the budget makes one row tile (the whole matrix) but several
    # column tiles: A @ W must use the whole matrix's columns, not the tiles'.
    rng = np.random.default_rng(9)
    bucket_weights = rng.standard_normal(7)
    A = rng.standard_normal((4, n_in))
    layer = HashedLayer(
        get_backend("cpu"), n_in, n_out, LAYER_SEED, True, np.float64, 8, n_buckets=7
    )
    assert layer.single_tile and len(layer.column_tiles) == n_out
    W = materialize(bucket_weights, LAYER_SEED, n_in, n_out, True)
    assert_allclose(layer.dot(A, bucket_weights), A @ W, rtol=1e-13)


def test_panel_products_on_another_array_module_write_views_by_assignment():
    # CuPy's matmul is not trusted with a strided ``out``: a column panel is
    # assigned, a contiguous row panel goes through matmul(out=...).
    calls = []

    def matmul(a, b, out):
        assert out.flags.c_contiguous, "matmul was handed a strided out"
        calls.append(out.shape)
        return np.matmul(a, b, out=out)

    other_xp = types.SimpleNamespace(matmul=matmul)
    rng = np.random.default_rng(10)
    A, W = rng.standard_normal((4, 6)), rng.standard_normal((6, 8))
    Z = np.zeros((4, 8))
    _hashed_layer._matmul_into(other_xp, A, W[:, 2:5], Z[:, 2:5])
    assert calls == []
    assert_allclose(Z[:, 2:5], A @ W[:, 2:5], rtol=1e-14)
    G = np.zeros((6, 8))
    _hashed_layer._matmul_into(other_xp, W[2:4], W.T @ W, G[2:4])
    assert calls == [(2, 8)]
    assert_allclose(G[2:4], W[2:4] @ (W.T @ W), rtol=1e-13)


def test_tile_budget_changes_no_bit_at_the_package_panel():
    # A 64 MiB float64 matrix: two 32 MiB panels each way; tiles of one panel
    # (budgets of 32 and of 48 MiB) against the untiled matrix.
    n_samples, n_in, n_out, n_buckets = 8, 2048, 4096, 2**16
    assert _hashed_layer.PANEL_BYTES == 32 * 2**20
    bucket_weights, A, D = _layer_data(8, n_samples, n_in, n_out, n_buckets, np.float64, zeros=0)
    backend = get_backend("cpu")
    results = []
    for tile_bytes in (128 * 2**20, 48 * 2**20, 32 * 2**20):
        layer = HashedLayer(
            backend, n_in, n_out, LAYER_SEED, True, np.float64, tile_bytes, n_buckets=n_buckets
        )
        assert len(layer.row_panels) == len(layer.column_panels) == 2
        assert len(layer.tiles) == (1 if tile_bytes == 128 * 2**20 else 2)
        results.append(_products(layer, A, D, bucket_weights))
    _assert_same_products(results)


def test_hashed_layer_reuses_tile_of_last_dot():
    rng = np.random.default_rng(6)
    layer = HashedLayer(get_backend("cpu"), 9, 6, LAYER_SEED, True, np.float64, n_buckets=20)
    bucket_weights = rng.standard_normal(20)
    A, D = rng.standard_normal((4, 9)), rng.standard_normal((4, 6))
    layer.dot(A, bucket_weights)
    W = materialize(bucket_weights, LAYER_SEED, 9, 6)
    assert_allclose(layer.dot_transposed(D, bucket_weights, reuse_tile=True), D @ W.T)


# ----------------------------------------------------------------------------
# Layer seeds of the estimators
# ----------------------------------------------------------------------------


def _fit(**params):
    X, y = make_classification(n_samples=40, n_features=10, random_state=0)
    params = {"hidden_layer_sizes": (10, 10), "max_iter": 3, "random_state": 0, **params}
    return HashedMLPClassifier(**params).fit(X, y)


def _documented_seeds(rng, n_layers):
    seeds = []
    while len(seeds) < n_layers:
        seed = int(rng.randint(0, 2**32, dtype=np.uint64))
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def test_layers_of_same_shape_get_different_maps():
    clf = _fit()
    assert clf._layer_units_ == [10, 10, 10, 1]
    assert clf.hash_seeds_.dtype == np.uint32
    assert len(set(clf.hash_seeds_.tolist())) == 3
    grid = np.arange(10)[:, None], np.arange(10)[None, :]
    bucket_0, sign_0 = hash_pairs(int(clf.hash_seeds_[0]), *grid, clf.n_buckets_[0])
    bucket_1, sign_1 = hash_pairs(int(clf.hash_seeds_[1]), *grid, clf.n_buckets_[1])
    assert clf.n_buckets_[0] == clf.n_buckets_[1]
    assert not np.array_equal(bucket_0, bucket_1)
    assert not np.array_equal(sign_0, sign_1)
    # The fitted virtual matrices are read through these maps.
    W = clf.virtual_coefs()
    for layer in range(2):
        expected = materialize(clf.bucket_weights_[layer], int(clf.hash_seeds_[layer]), 10, 10)
        assert_array_equal(W[layer], expected)


@pytest.mark.parametrize("random_state", [0, 42])
def test_hash_seeds_follow_random_state(random_state):
    first = _fit(random_state=random_state).hash_seeds_
    second = _fit(random_state=random_state).hash_seeds_
    assert_array_equal(first, second)
    expected = _documented_seeds(np.random.RandomState(random_state), 3)
    assert first.tolist() == expected
    assert not np.array_equal(first, _fit(random_state=random_state + 1).hash_seeds_)


@pytest.mark.parametrize("hash_seed", [0, 7, MAX_U32])
def test_hash_seed_fixes_seeds_whatever_random_state(hash_seed):
    fits = [_fit(random_state=r, hash_seed=hash_seed) for r in (0, 1, None)]
    expected = _documented_seeds(np.random.RandomState(hash_seed), 3)
    for clf in fits:
        assert clf.hash_seeds_.tolist() == expected
    # random_state still changes the initial buckets.
    assert not np.array_equal(fits[0].bucket_weights_[0], fits[1].bucket_weights_[0])


def test_block_vectors_cover_edge_cases():
    assert len(BLOCK_VECTORS) >= 10
    n_buckets = {v[3] for v in BLOCK_VECTORS}
    assert {1, MAX_U32} <= n_buckets and any(k < BLOCK_SIZE for k in n_buckets if k > 1)
    assert any(v[1] == MAX_U32 for v in BLOCK_VECTORS)


@pytest.mark.parametrize("vector", BLOCK_VECTORS, ids=[str(v[:4]) for v in BLOCK_VECTORS])
def test_block_vectors(vector):
    seed, i, j, n_buckets, block_hash, block_sign_hash, start, bucket, sign = vector
    got_bucket, got_sign = hash_pairs(seed, [i], [j], n_buckets, hashing="block")
    assert (got_bucket.tolist(), got_sign.tolist()) == ([bucket], [sign])
    u64 = np.uint64
    key = column_key(u64(j // BLOCK_SIZE))
    assert finish_hash(row_state(u64(seed), u64(i)), key) == block_hash
    assert finish_hash(row_state(sign_seed(seed), u64(i)), key) == block_sign_hash
    assert bucket_of(u64(block_hash), u64(n_buckets)) == start
    mmh3 = pytest.importorskip("mmh3")
    assert _mmh3_hash(mmh3, seed, i, j // BLOCK_SIZE) == block_hash


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_buckets", [5, 16, 1000])
@pytest.mark.parametrize("row_start, col_start", [(0, 0), (3, 7), (2**32 - 4, 5)])
def test_block_materialize_is_bit_identical_to_reference(dtype, n_buckets, row_start, col_start):
    rng = np.random.default_rng(n_buckets)
    w = rng.standard_normal(n_buckets).astype(dtype)
    out = np.empty((4, 45), dtype=dtype)
    materialize_tile_block(w, np.uint64(9), sign_seed(9), True, row_start, out, col_start)
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


def test_block_buckets_are_uniform_and_runs_consecutive():
    n_buckets = 4099
    rows = np.arange(784, dtype=np.uint64)[:, None]
    cols = np.arange(512, dtype=np.uint64)[None, :]
    bucket, sign = hash_pairs(3, rows, cols, n_buckets, hashing="block")
    counts = np.bincount(bucket.ravel(), minlength=n_buckets)
    assert chisquare(counts).pvalue > ALPHA
    runs = bucket.reshape(784, 32, BLOCK_SIZE)
    assert ((np.diff(runs, axis=2) % n_buckets) == 1).all()
    assert abs((sign == 1).mean() - 0.5) < 0.01


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
    kernel(w, np.uint64(LAYER_SEED), sign_seed(LAYER_SEED), True, row_start, out, col_start)
    expected = _reference.materialize(
        w, LAYER_SEED, n_in, n_out, True, row_start=row_start, hashing=hashing
    )[:, col_start:]
    assert_array_equal(out, expected, strict=True)
