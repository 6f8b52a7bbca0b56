"""The hash specification: ``docs/hashing.md``, the NumPy spec and an independent MurmurHash3 agree.

The specification is written in ``docs/hashing.md`` and in
``sk_hashednets/_kernels/_hashing.py``. These tests check that the two agree
(through the document's tables of test vectors, element and block hashing) and
that both agree with an independent MurmurHash3 (``mmh3``).
"""

import re
import struct

import numpy as np
import pytest
from _hash_vectors import BLOCK_VECTORS, DOC, ELEMENT_VECTORS, MAX_U32
from numpy.testing import assert_array_equal

from sk_hashednets._kernels import (
    HASH_SPEC_VERSION,
    hash_pairs,
    sign_seed,
)
from sk_hashednets._kernels._hashing import (
    BLOCK_SIZE,
    SIGN_SEED_XOR,
    bucket_of,
    column_key,
    finish_hash,
    is_negative,
    row_state,
)


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
