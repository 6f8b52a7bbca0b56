"""Bucket indexes kept between ``partial_fit`` calls (``_index_store``)."""

import gc
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sk_hashednets import HashedMLPClassifier, HashedMLPRegressor
from sk_hashednets._hashed_layer import HashedLayer
from sk_hashednets._index_store import _KEPT, IndexStore, forget_indexes, kept_index_nbytes
from sk_hashednets._kernels._cpu import CPUBackend

X_ALL, Y_ALL = load_digits(return_X_y=True)
X_ALL = (X_ALL[:300] / 16).astype(np.float32)
Y_ALL = Y_ALL[:300]
CLASSES = np.unique(Y_ALL)
BATCHES = [slice(0, 100), slice(100, 200), slice(200, 300)]


def _model(**params):
    params = {
        "hidden_layer_sizes": (40, 30),
        "compression": 1 / 8,
        "batch_size": 32,
        "random_state": 0,
        **params,
    }
    return HashedMLPClassifier(**params)


@pytest.fixture
def index_builds(monkeypatch):
    """A list that grows by one for every bucket index the CPU backend hashes."""
    builds = []
    original = CPUBackend.bucket_index_tile

    def counted(self, layer_hash, out, *args, **kwargs):
        builds.append(out.shape)
        return original(self, layer_hash, out, *args, **kwargs)

    monkeypatch.setattr(CPUBackend, "bucket_index_tile", counted)
    return builds


def _index_bytes(model):
    """Bytes of the bucket indexes of every layer (all fit in one tile here)."""
    units = model._layer_units_
    return sum(4 * n_in * n_out for n_in, n_out in zip(units[:-1], units[1:]))


@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("hash_shards", [None, 4])
def test_kept_indexes_give_the_bits_of_new_ones(hashing, hash_shards, index_builds):
    kept = _model(hashing=hashing, hash_shards=hash_shards)
    anew = clone(kept)
    for batch in BATCHES:
        kept.partial_fit(X_ALL[batch], Y_ALL[batch], classes=CLASSES)
        anew.partial_fit(X_ALL[batch], Y_ALL[batch], classes=CLASSES)
        forget_indexes(anew)
    for a, b in zip(kept.bucket_weights_, anew.bucket_weights_):
        np.testing.assert_array_equal(a, b)
    n_layers = kept.n_layers_ - 1
    # Each layer hashed once for the model that kept its indexes, once a call for the other.
    assert len(index_builds) == n_layers + len(BATCHES) * n_layers


def test_partial_fit_hashes_each_layer_once_over_its_calls(index_builds):
    model = _model()
    for batch in BATCHES:
        model.partial_fit(X_ALL[batch], Y_ALL[batch], classes=CLASSES)
    assert len(index_builds) == model.n_layers_ - 1
    assert kept_index_nbytes(model) == _index_bytes(model) > 0
    footprint = model.memory_footprint()
    assert footprint["indexes"] == _index_bytes(model)
    assert footprint["total"] == footprint["parameters"] + footprint["plan"] + footprint["indexes"]


@pytest.mark.parametrize("warm_start", [False, True])
def test_keep_bucket_indexes_false_keeps_none_and_gives_the_same_bits(warm_start, index_builds):
    lean = _model(keep_bucket_indexes=False, warm_start=warm_start, max_iter=1)
    kept = clone(lean).set_params(keep_bucket_indexes=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one epoch a fit
        for batch in BATCHES:
            for model in (lean, kept):
                if warm_start:
                    model.fit(X_ALL[batch], Y_ALL[batch])
                else:
                    model.partial_fit(X_ALL[batch], Y_ALL[batch], classes=CLASSES)
            assert kept_index_nbytes(lean) == 0 == lean.memory_footprint()["indexes"]
            assert kept_index_nbytes(kept) == _index_bytes(kept)
    for a, b in zip(lean.bucket_weights_, kept.bucket_weights_):
        np.testing.assert_array_equal(a, b)
    n_layers = lean.n_layers_ - 1
    # The lean model hashes every layer at every call, the other once.
    assert len(index_builds) == len(BATCHES) * n_layers + n_layers
    # Turning it off drops what was kept (set_params), and nothing is kept again.
    kept.set_params(keep_bucket_indexes=False)
    assert kept_index_nbytes(kept) == 0
    kept.partial_fit(X_ALL[:50], Y_ALL[:50])
    assert kept_index_nbytes(kept) == 0


def test_fit_keeps_no_index_and_drops_the_kept_ones():
    model = _model(max_iter=2)
    model.partial_fit(X_ALL, Y_ALL, classes=CLASSES)
    assert kept_index_nbytes(model) > 0
    with pytest.warns(ConvergenceWarning):  # two epochs do not converge
        model.fit(X_ALL, Y_ALL)
    assert kept_index_nbytes(model) == 0
    assert model.memory_footprint()["indexes"] == 0


def test_warm_start_fits_hash_each_layer_once_over_their_calls(index_builds):
    kept = _model(max_iter=1, warm_start=True)
    anew = clone(kept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one epoch a call
        for _ in range(3):
            kept.fit(X_ALL, Y_ALL)
            anew.fit(X_ALL, Y_ALL)
            forget_indexes(anew)
    for a, b in zip(kept.bucket_weights_, anew.bucket_weights_):
        np.testing.assert_array_equal(a, b)
    n_layers = kept.n_layers_ - 1
    assert len(index_builds) == n_layers + 3 * n_layers
    assert kept_index_nbytes(kept) == _index_bytes(kept)
    kept.set_params(warm_start=False)  # set_params drops them; a cold fit keeps none
    with pytest.warns(ConvergenceWarning):
        kept.fit(X_ALL, Y_ALL)
    assert kept_index_nbytes(kept) == 0


def test_set_params_drops_the_kept_indexes():
    model = _model().partial_fit(X_ALL, Y_ALL, classes=CLASSES)
    model.set_params(verbose=False)
    assert kept_index_nbytes(model) == 0


def test_kept_indexes_are_not_pickled_or_cloned():
    model = _model().partial_fit(X_ALL, Y_ALL, classes=CLASSES)
    size_with = len(pickle.dumps(model))
    loaded = pickle.loads(pickle.dumps(model))
    assert kept_index_nbytes(loaded) == 0
    assert kept_index_nbytes(clone(model)) == 0
    forget_indexes(model)
    assert len(pickle.dumps(model)) == size_with


def test_a_changed_hash_is_hashed_anew(index_builds):
    # A version 2 model's shards are blocks of rows, version 3's are dealt in turn.
    model = _model(hash_shards=4).partial_fit(X_ALL, Y_ALL, classes=CLASSES)
    n_layers = model.n_layers_ - 1
    model.hash_spec_version_ = 2
    model.partial_fit(X_ALL, Y_ALL)
    assert len(index_builds) == 2 * n_layers
    assert kept_index_nbytes(model) == _index_bytes(model)  # version 3's are dropped


def _regressor_with_kept_indexes():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 8)), rng.standard_normal(64)
    model = HashedMLPRegressor(
        hidden_layer_sizes=(16,),
        batch_size=16,
        solver="sgd",
        learning_rate_init=0.01,
        random_state=0,
    ).partial_fit(X, y)
    assert kept_index_nbytes(model) > 0
    return model, X, y


def test_diverging_training_keeps_no_index():
    model, X, y = _regressor_with_kept_indexes()
    with pytest.raises(ValueError, match="diverged"), np.errstate(over="ignore"):
        model.partial_fit(X, y * 1e100)
    assert kept_index_nbytes(model) == 0


def test_non_finite_parameters_after_training_keep_no_index(monkeypatch):
    # The check that follows the training block raises after the indexes were stored.
    model, X, y = _regressor_with_kept_indexes()
    original = HashedMLPRegressor._fit_stochastic

    def spoiled(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.bucket_weights_[0][0] = np.nan

    monkeypatch.setattr(HashedMLPRegressor, "_fit_stochastic", spoiled)
    with pytest.raises(ValueError, match="non-finite"):
        model.partial_fit(X, y)
    assert kept_index_nbytes(model) == 0


def test_the_model_s_end_drops_its_indexes():
    model = _model().partial_fit(X_ALL, Y_ALL, classes=CLASSES)
    assert model in _KEPT
    n_kept = len(_KEPT)
    del model
    gc.collect()
    assert len(_KEPT) == n_kept - 1


def test_a_call_that_raises_while_training_keeps_no_index(monkeypatch):
    model = _model().partial_fit(X_ALL, Y_ALL, classes=CLASSES)
    assert kept_index_nbytes(model) > 0

    def fail(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(HashedLayer, "bucket_grad", fail)
    with pytest.raises(RuntimeError, match="injected"):
        model.partial_fit(X_ALL, Y_ALL)
    assert kept_index_nbytes(model) == 0


def test_layers_over_one_tile_keep_no_index(index_builds):
    # 64 x 40 float32 is 10 KiB: a 4 KiB budget tiles the first layer, which then hashes as it goes.
    model = _model(max_tile_bytes=4096)
    for batch in BATCHES:
        model.partial_fit(X_ALL[batch], Y_ALL[batch], classes=CLASSES)
    units = model._layer_units_
    kept = [(n_in, n_out) for n_in, n_out in zip(units[:-1], units[1:]) if 4 * n_in * n_out <= 4096]
    assert kept and len(kept) < model.n_layers_ - 1
    assert sorted(index_builds) == sorted(kept)
    assert kept_index_nbytes(model) == sum(4 * n_in * n_out for n_in, n_out in kept)


def test_store_hashes_only_what_it_does_not_hold():
    made = []

    def make(value):
        def build():
            made.append(value)
            return np.full(3, value, np.uint32)

        return build

    store = IndexStore({"a": np.zeros(3, np.uint32)})
    np.testing.assert_array_equal(store.get("a", make(1)), 0)
    np.testing.assert_array_equal(store.get("b", make(2)), 2)
    np.testing.assert_array_equal(store.get("b", make(3)), 2)
    assert made == [2]
    assert sorted(store.used) == ["a", "b"]
