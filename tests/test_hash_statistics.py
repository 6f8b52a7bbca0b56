"""Statistics of the hash map: uniform buckets, balanced signs, sign independent of bucket.

Each test has a negative control: the same statistic, threshold and grid reject
a biased map.
"""

import numpy as np
import pytest
from _hash_vectors import MAX_U32
from scipy.stats import binomtest, chi2_contingency, chisquare

from sk_hashednets._kernels import (
    hash_pairs,
)
from sk_hashednets._kernels._hashing import (
    BLOCK_SIZE,
    bucket_of,
    column_key,
    finish_hash,
    row_state,
)

# p-value below which a statistical test fails. The tests are deterministic
# (fixed seeds and grids); a sound map gives p-values spread over (0, 1), the
# biased maps of the negative controls give p-values below 1e-12.
ALPHA = 1e-6


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
