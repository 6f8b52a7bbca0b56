"""The estimators' layer seeds: one hash map a layer, fixed by random_state or hash_seed."""

import numpy as np
import pytest
from _hash_vectors import MAX_U32
from numpy.testing import assert_array_equal
from sklearn.datasets import make_classification

from sk_hashednets import HashedMLPClassifier
from sk_hashednets._kernels import (
    hash_pairs,
)
from sk_hashednets._kernels._reference import materialize

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
