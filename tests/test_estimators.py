"""The estimators as scikit-learn sees them: API checks, gradients, accuracy, persistence."""

import io
import os

import joblib
import numba
import numpy as np
import pytest
import scipy.sparse as sp
from _gradients import loss_and_grad_function
from numpy.testing import assert_array_equal
from sklearn.datasets import load_diabetes, load_digits, make_classification, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_hashednets import HASH_SPEC_VERSION, HashedMLPClassifier, HashedMLPRegressor, _hashed_layer
from sk_hashednets._kernels import get_backend
from sk_hashednets._kernels._reference import loss_and_grads
from sk_hashednets._multilayer_perceptron import _pack

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]


# The epochs of the GPU module's checks: every check passes as with the default 200, in half
# the time (the checks train on small data sets that these epochs fit).
@parametrize_with_checks(
    [
        HashedMLPClassifier(random_state=0, max_iter=50),
        HashedMLPRegressor(random_state=0, max_iter=100),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# ----------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------


def _problem(kind, rng):
    X = rng.standard_normal((12, 5))
    if kind == "binary":
        return HashedMLPClassifier, X, rng.integers(0, 2, 12)
    if kind == "multiclass":
        return HashedMLPClassifier, X, np.arange(12) % 3
    if kind == "multilabel":
        return HashedMLPClassifier, X, rng.integers(0, 2, (12, 3))
    if kind == "squared_error":
        return HashedMLPRegressor, X, rng.standard_normal(12)
    if kind == "poisson":
        return HashedMLPRegressor, X, rng.poisson(2.0, 12).astype(float)
    raise ValueError(kind)


def _targets(est, y):
    if hasattr(est, "classes_"):
        return est._label_binarizer.transform(y).astype(float)
    return y.reshape(len(y), -1).astype(float)


KINDS = ["binary", "multiclass", "multilabel", "squared_error", "poisson"]
# Each factor enters the gradient in its own place: the hidden activation in
# the hidden deltas, the kind in the output delta and loss, the weights in the
# loss, the hashing in the scatter. Every activation meets every kind, and the
# weights and block hashing each meet every kind and every activation: 41
# cases where the full product has 80.
GRADIENT_CASES = (
    [(a, k, False, "element") for a in ACTIVATIONS for k in KINDS]
    + [("tanh", k, True, h) for k in KINDS for h in ("element", "block")]
    + [(a, "multiclass", True, "element") for a in ACTIVATIONS if a != "tanh"]
    + [(a, "multiclass", False, "block") for a in ACTIVATIONS]
    + [("relu", k, False, "block") for k in KINDS if k != "multiclass"]
)


@pytest.mark.parametrize("activation, kind, weighted, hashing", GRADIENT_CASES)
def test_gradient_matches_central_differences(activation, kind, weighted, hashing):
    rng = np.random.default_rng(0)
    Estimator, X, y = _problem(kind, rng)
    kwargs = {"loss": "poisson"} if kind == "poisson" else {}
    est = Estimator(
        # Block hashing: rows wider than one block of 16, with a partial last block.
        hidden_layer_sizes=(6, 4) if hashing == "element" else (20, 18),
        activation=activation,
        solver="lbfgs",
        alpha=0.1,
        max_iter=1,
        compression=0.5,
        hashing=hashing,
        random_state=1,
        **kwargs,
    )
    sample_weight = rng.uniform(0.5, 2.0, len(y)) if weighted else None
    est.fit(X, y, sample_weight=sample_weight)
    Y = _targets(est, y)
    loss_grad = loss_and_grad_function(est, X, Y, sample_weight)
    theta = _pack(est.bucket_weights_, est.intercepts_)
    _, grad = loss_grad(theta)

    eps = 1e-6
    numerical = np.empty_like(theta)
    for k in range(len(theta)):
        step = np.zeros_like(theta)
        step[k] = eps
        numerical[k] = (loss_grad(theta + step)[0] - loss_grad(theta - step)[0]) / (2 * eps)
    rel_error = np.linalg.norm(grad - numerical) / np.linalg.norm(numerical)
    assert rel_error < 1e-5


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", ["multiclass", "multilabel", "squared_error", "poisson"])
@pytest.mark.parametrize("sign_hash", [True, False])
@pytest.mark.parametrize("hashing", ["element", "block"])
def test_backprop_matches_numpy_reference(activation, kind, sign_hash, hashing):
    """The estimator's tiled, Numba-backed step against the dense textbook one."""
    rng = np.random.default_rng(1)
    Estimator, X, y = _problem(kind, rng)
    kwargs = {"loss": "poisson"} if kind == "poisson" else {}
    est = Estimator(
        hidden_layer_sizes=(7, 5) if hashing == "element" else (21, 35),
        activation=activation,
        solver="lbfgs",
        alpha=0.01,
        max_iter=2,
        compression=0.3,
        sign_hash=sign_hash,
        hashing=hashing,
        random_state=0,
        **kwargs,
    )
    est.fit(X, y)
    Y = _targets(est, y)
    theta = _pack(est.bucket_weights_, est.intercepts_)
    loss, grad = loss_and_grad_function(est, X, Y, None)(theta)

    loss_name = est._loss_name()
    if loss_name == "log_loss" and est.out_activation_ == "logistic":
        loss_name = "binary_log_loss"
    ref_loss, ref_bucket_grads, ref_intercept_grads = loss_and_grads(
        X,
        Y,
        est.bucket_weights_,
        est.intercepts_,
        est.hash_seeds_,
        sign_hash,
        activation,
        est.out_activation_,
        loss_name,
        est.alpha,
        hashing=hashing,
    )
    assert loss == pytest.approx(ref_loss, rel=1e-10)
    np.testing.assert_allclose(
        grad, _pack(ref_bucket_grads, ref_intercept_grads), rtol=1e-9, atol=1e-12
    )


# ----------------------------------------------------------------------------
# Accuracy on real data
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0)


@pytest.mark.parametrize("compression, min_accuracy", [(1 / 8, 0.96), (1 / 64, 0.90)])
def test_digits_accuracy(digits_split, compression, min_accuracy):
    """20 epochs at learning rate 0.01 in float32 reach the accuracy of the default
    settings' 200 epochs (studies/digits_accuracy.py runs those) in a tenth of the time."""
    X_train, X_test, y_train, y_test = digits_split
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(256,),
        compression=compression,
        learning_rate_init=0.01,
        max_iter=20,
        random_state=0,
    )
    clf.fit(X_train.astype(np.float32), y_train)
    assert clf.score(X_test.astype(np.float32), y_test) >= min_accuracy
    expected_buckets = [int(np.ceil(compression * 64 * 256)), int(np.ceil(compression * 256 * 10))]
    assert clf.n_buckets_ == expected_buckets
    assert clf.n_stored_params_ == sum(expected_buckets) + 256 + 10


@pytest.mark.slow
def test_regressor_close_to_mlp_regressor():
    """Diabetes (standardised X and y): R^2 within 0.05 of MLPRegressor, mean of 3 seeds."""
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    mean, std = y_train.mean(), y_train.std()
    y_train, y_test = (y_train - mean) / std, (y_test - mean) / std
    params = dict(hidden_layer_sizes=(32,), solver="lbfgs", alpha=30.0, max_iter=500)
    r2_hashed, r2_dense = [], []
    for seed in range(3):
        hashed = HashedMLPRegressor(compression=1 / 8, random_state=seed, **params)
        r2_hashed.append(hashed.fit(X_train, y_train).score(X_test, y_test))
        dense = MLPRegressor(random_state=seed, **params)
        r2_dense.append(dense.fit(X_train, y_train).score(X_test, y_test))
    assert np.mean(r2_dense) > 0.3  # the comparison means something only if MLP learns
    assert np.mean(r2_hashed) >= np.mean(r2_dense) - 0.05


# ----------------------------------------------------------------------------
# dtypes, sparse input, dropout
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(digits_split, dtype):
    X_train, X_test, y_train, _ = digits_split
    clf = HashedMLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
    clf.fit(X_train.astype(dtype), y_train)
    assert all(w.dtype == dtype for w in clf.bucket_weights_ + clf.intercepts_)
    assert clf.predict_proba(X_test.astype(dtype)).dtype == dtype


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_matches_dense(fmt):
    X, y = make_classification(n_samples=80, n_features=30, random_state=0)
    X[np.abs(X) < 1] = 0
    params = dict(hidden_layer_sizes=(10,), solver="lbfgs", max_iter=20, random_state=0)
    dense = HashedMLPClassifier(**params).fit(X, y)
    sparse = HashedMLPClassifier(**params).fit(sp.csr_matrix(X).asformat(fmt), y)
    for a, b in zip(dense.bucket_weights_, sparse.bucket_weights_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(
        dense.predict_proba(X), sparse.predict_proba(sp.csr_matrix(X).asformat(fmt)), rtol=1e-7
    )


def test_dropout_is_training_only(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = HashedMLPClassifier(hidden_layer_sizes=(128,), dropout=0.3, max_iter=60, random_state=0)
    clf.fit(X_train, y_train)
    # Off at predict: deterministic, and the network still learns.
    np.testing.assert_array_equal(clf.predict_proba(X_test), clf.predict_proba(X_test))
    assert clf.score(X_test, y_test) > 0.9
    no_dropout = HashedMLPClassifier(hidden_layer_sizes=(128,), max_iter=2, random_state=0)
    with_dropout = HashedMLPClassifier(
        hidden_layer_sizes=(128,), dropout=0.5, max_iter=2, random_state=0
    )
    assert no_dropout.fit(X_train, y_train).loss_ != with_dropout.fit(X_train, y_train).loss_


def test_input_dropout_trains_on_the_masked_inputs(monkeypatch):
    """A step with input dropout is a step without it on ``X * mask``, bit for bit."""
    X, y = make_classification(n_samples=40, n_features=12, random_state=0)
    mask = np.random.default_rng(0).binomial(1, 0.7, X.shape) / 0.7
    params = dict(
        hidden_layer_sizes=(9,),
        solver="sgd",
        batch_size=40,
        shuffle=False,
        max_iter=1,
        random_state=0,
    )
    monkeypatch.setattr(
        HashedMLPClassifier, "_dropout_mask", lambda self, shape, rate, dtype: mask.astype(dtype)
    )
    dropped = HashedMLPClassifier(input_dropout=0.3, **params).fit(X, y)
    masked = HashedMLPClassifier(**params).fit(X * mask, y)
    for a, b in zip(
        dropped.bucket_weights_ + dropped.intercepts_, masked.bucket_weights_ + masked.intercepts_
    ):
        np.testing.assert_array_equal(a, b)
    unmasked = HashedMLPClassifier(**params).fit(X, y)
    assert not np.array_equal(unmasked.bucket_weights_[0], dropped.bucket_weights_[0])


def test_input_dropout_is_training_only_and_the_same_for_sparse_input(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    params = dict(hidden_layer_sizes=(128,), input_dropout=0.2, max_iter=60, random_state=0)
    dense = HashedMLPClassifier(**params).fit(X_train, y_train)
    np.testing.assert_array_equal(dense.predict_proba(X_test), dense.predict_proba(X_test))
    assert dense.score(X_test, y_test) > 0.9
    sparse = HashedMLPClassifier(**params).fit(sp.csr_matrix(X_train), y_train)
    for a, b in zip(dense.bucket_weights_, sparse.bucket_weights_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.3])
def test_dropout_masks_drop_at_the_rate_and_keep_the_mean(rate):
    clf = HashedMLPClassifier()
    clf._random_state = np.random.RandomState(0)
    mask = clf._dropout_mask((400, 500), rate, np.dtype(np.float32))
    assert mask.dtype == np.float32 and mask.shape == (400, 500)
    kept = np.unique(mask)
    assert len(kept) == 2 and kept[0] == 0
    p = round(rate * 2**16) / 2**16  # the rate, to 16 bits
    assert abs(p - rate) <= 2**-17
    np.testing.assert_allclose(kept[1], 1 / (1 - p), rtol=1e-7)  # E[mask] = 1
    assert abs((mask == 0).mean() - rate) < 0.005
    assert not np.array_equal(mask, clf._dropout_mask((400, 500), rate, np.dtype(np.float32)))


# ----------------------------------------------------------------------------
# Determinism and threads
# ----------------------------------------------------------------------------


def test_fit_is_bit_identical_on_one_and_two_threads(digits_split):
    X_train, _, y_train, _ = digits_split
    X_train = X_train.astype(np.float32)
    previous = numba.get_num_threads()
    fitted = []
    try:
        for n_threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(n_threads)
            clf = HashedMLPClassifier(hidden_layer_sizes=(64, 32), max_iter=3, random_state=0)
            fitted.append(clf.fit(X_train, y_train))
    finally:
        numba.set_num_threads(previous)
    one, two = fitted
    for a, b in zip(one.bucket_weights_ + one.intercepts_, two.bucket_weights_ + two.intercepts_):
        np.testing.assert_array_equal(a, b)


def _numba_threads(estimator, X, y):
    return numba.get_num_threads()


@pytest.mark.slow
def test_grid_search_over_compression_in_pipeline_limits_threads(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("mlp", HashedMLPClassifier(hidden_layer_sizes=(32,), max_iter=100, random_state=0)),
        ]
    )
    search = GridSearchCV(
        pipe,
        {"mlp__compression": [1 / 4, 1 / 16]},
        cv=2,
        n_jobs=2,
        scoring={"accuracy": "accuracy", "threads": _numba_threads},
        refit="accuracy",
    )
    search.fit(X_train, y_train)
    # Each of the 2 workers gets at most its share of the cores.
    assert max(search.cv_results_["mean_test_threads"]) <= max(1, (os.cpu_count() or 1) // 2)
    assert search.best_params_["mlp__compression"] in (1 / 4, 1 / 16)
    assert search.score(X_test, y_test) > 0.85
    assert search.best_estimator_[-1].n_buckets_[0] == int(
        np.ceil(search.best_params_["mlp__compression"] * 64 * 32)
    )


# ----------------------------------------------------------------------------
# Persistence
# ----------------------------------------------------------------------------


def _dumped_size(est):
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    return buffer.tell()


def test_joblib_round_trip_gives_identical_predictions(digits_split):
    X_train, X_test, y_train, _ = digits_split
    clf = HashedMLPClassifier(hidden_layer_sizes=(32,), max_iter=5, random_state=0).fit(
        X_train, y_train
    )
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))
    np.testing.assert_array_equal(loaded.predict(X_test), clf.predict(X_test))


def test_joblib_file_follows_the_buckets_not_the_virtual_weights():
    rng = np.random.default_rng(0)
    X = rng.random((64, 784), dtype=np.float32)
    y = np.arange(64) % 10
    params = dict(hidden_layer_sizes=(1000, 1000), max_iter=1, random_state=0)
    hashed = HashedMLPClassifier(compression=1 / 64, **params).fit(X, y)
    dense = MLPClassifier(**params).fit(X, y)
    hashed_size, dense_size = _dumped_size(hashed), _dumped_size(dense)
    assert hashed_size < dense_size / 10
    # The bound that makes it true: buckets (with optimizer state), not virtual weights.
    n_stored = hashed.n_stored_params_
    assert hashed_size < 8 * n_stored * 4 + 100_000


# ----------------------------------------------------------------------------
# Hashing parameters, device and validation
# ----------------------------------------------------------------------------


def test_n_buckets_overrides_compression():
    X, y = make_classification(n_samples=40, n_features=20, random_state=0)
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(30,), n_buckets=[50, 7], max_iter=2, compression=0.9
    )
    clf.fit(X, y)
    assert clf.n_buckets_ == [50, 7]
    assert [len(w) for w in clf.bucket_weights_] == [50, 7]
    # A single int applies to every layer, capped at each layer's size (30 x 1).
    clf.set_params(n_buckets=100).fit(X, y)
    assert clf.n_buckets_ == [100, 30]


def test_sign_hash_changes_the_virtual_matrix():
    X, y = make_classification(n_samples=30, n_features=8, random_state=0)
    kw = dict(hidden_layer_sizes=(6,), max_iter=1, random_state=0, compression=0.25)
    signed = HashedMLPClassifier(sign_hash=True, **kw).fit(X, y)
    unsigned = HashedMLPClassifier(sign_hash=False, **kw).fit(X, y)
    W_unsigned = unsigned.virtual_coefs()[0]
    # Without the sign hash every entry is one of the buckets, with its sign.
    assert np.isin(W_unsigned, unsigned.bucket_weights_[0]).all()
    W_signed = signed.virtual_coefs()[0]
    assert np.isin(np.abs(W_signed), np.abs(signed.bucket_weights_[0])).all()
    assert (np.sign(W_signed) != np.sign(signed.bucket_weights_[0][0])).any()


def test_virtual_coefs_compute_the_predictions(digits_split):
    X_train, X_test, y_train, _ = digits_split
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(20,), activation="tanh", max_iter=5, random_state=0
    )
    clf.fit(X_train, y_train)
    W0, W1 = clf.virtual_coefs()
    assert W0.shape == (64, 20) and W1.shape == (20, 10)
    logits = np.tanh(X_test @ W0 + clf.intercepts_[0]) @ W1 + clf.intercepts_[1]
    np.testing.assert_allclose(clf.predict_proba(X_test).argmax(1), logits.argmax(1))
    with pytest.raises(ValueError, match="max_bytes"):
        clf.virtual_coefs(max_bytes=100)
    assert not hasattr(clf, "coefs_")


OVERFLOW = "overflow encountered|invalid value encountered"


def test_divergence_stops_with_a_message_and_keeps_the_previous_model():
    X, y = make_regression(n_samples=200, n_features=20, noise=1.0, random_state=0)
    params = dict(solver="sgd", momentum=0.99, max_iter=50, random_state=0)
    reg = HashedMLPRegressor(learning_rate_init=1.0, **params)
    # NumPy warns of the overflow on the way to the non-finite loss.
    with pytest.warns(RuntimeWarning, match=OVERFLOW):
        with pytest.raises(ValueError, match="diverged.*Lower learning_rate_init"):
            reg.fit(X * 100, y * 100)
    with pytest.raises(NotFittedError):  # no half-trained model, no NaN predictions
        reg.predict(X)
    # A fitted model that diverges on a warm start keeps its parameters.
    reg = HashedMLPRegressor(learning_rate_init=1e-4, **params).fit(X, y)
    before = [w.copy() for w in reg.bucket_weights_]
    reg.set_params(warm_start=True, learning_rate_init=1.0)
    with pytest.warns(RuntimeWarning, match=OVERFLOW):
        with pytest.raises(ValueError, match="diverged"):
            reg.fit(X * 100, y * 100)
    for a, b in zip(reg.bucket_weights_, before):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(reg.predict(X)).all()


def test_verbose_reports_time_and_throughput(capsys):
    X, y = make_classification(n_samples=50, random_state=0)
    HashedMLPClassifier(hidden_layer_sizes=(5,), max_iter=2, verbose=True).fit(X, y)
    out = capsys.readouterr().out
    assert "Iteration 1, loss =" in out and "samples/s" in out and "time =" in out


def test_pipeline_with_scaler(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    pipe = make_pipeline(
        StandardScaler(), HashedMLPClassifier(hidden_layer_sizes=(64,), random_state=0)
    )
    assert pipe.fit(X_train, y_train).score(X_test, y_test) > 0.93


def test_model_from_another_hash_specification_is_refused(digits_split):
    X_train, X_test, y_train, _ = digits_split
    clf = HashedMLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    clf.fit(X_train, y_train)
    clf.hash_spec_version_ = HASH_SPEC_VERSION + 1
    message = f"hash specification version {HASH_SPEC_VERSION + 1}"
    with pytest.raises(ValueError, match=message):
        clf.predict(X_test)
    with pytest.raises(ValueError, match=message):
        clf.set_params(warm_start=True).fit(X_train, y_train)


@pytest.mark.parametrize("sparse", [False, True])
def test_tile_budget_changes_no_bit_of_a_fit(monkeypatch, digits_split, sparse):
    """Tiles split the work, not the products: with panels of 600 bytes (32 MiB
    in the package), fits under budgets of one panel, of a few and of the whole
    matrix give the same bits, in the buckets and in the predictions."""
    monkeypatch.setattr(_hashed_layer, "PANEL_BYTES", 600)
    X_train, X_test, y_train, _ = digits_split
    if sparse:
        X_train, X_test = sp.csr_matrix(X_train), sp.csr_matrix(X_test)
    kw = dict(hidden_layer_sizes=(37, 23), max_iter=3, random_state=0)
    untiled = HashedMLPClassifier(**kw).fit(X_train, y_train)
    for tile_bytes in (600, 2500):
        tiled = HashedMLPClassifier(max_tile_bytes=tile_bytes, **kw).fit(X_train, y_train)
        layers = tiled._hashed_layers(get_backend("cpu"), np.float64)[:2]
        assert all(len(layer.tiles) > 1 and len(layer.column_tiles) > 1 for layer in layers)
        if tile_bytes > 600:  # several panels a tile
            assert all(len(layer.column_panels) > len(layer.column_tiles) for layer in layers)
        for a, b in zip(tiled.bucket_weights_, untiled.bucket_weights_):
            assert_array_equal(a, b, strict=True)
        assert_array_equal(tiled.predict_proba(X_test), untiled.predict_proba(X_test), strict=True)


@pytest.mark.parametrize("sparse", [False, True])
def test_tile_budget_below_a_panel_changes_results_only_by_rounding(digits_split, sparse):
    """A budget below one panel makes smaller panels: each entry of A @ W,
    D @ W.T and A.T @ D is still one whole dot product, but BLAS may sum it in
    another order for another shape, so results agree to float64 rounding."""
    X_train, X_test, y_train, _ = digits_split
    if sparse:
        X_train, X_test = sp.csr_matrix(X_train), sp.csr_matrix(X_test)
    kw = dict(hidden_layer_sizes=(37, 23), max_iter=3, random_state=0)
    untiled = HashedMLPClassifier(**kw).fit(X_train, y_train)
    tiled = HashedMLPClassifier(max_tile_bytes=600, **kw).fit(X_train, y_train)
    layers = tiled._hashed_layers(get_backend("cpu"), np.float64)
    assert all(len(layer.tiles) > 1 and len(layer.column_tiles) > 1 for layer in layers)
    for a, b in zip(tiled.bucket_weights_, untiled.bucket_weights_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        tiled.predict_proba(X_test), untiled.predict_proba(X_test), rtol=1e-10, atol=1e-12
    )


def test_block_hashing_learns_digits_and_is_kept_by_warm_start(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    block = HashedMLPClassifier(
        hidden_layer_sizes=(256,), compression=1 / 8, hashing="block", random_state=0
    ).fit(X_train, y_train)
    assert block.hashing_ == "block"
    assert block.score(X_test, y_test) >= 0.95
    W = block.virtual_coefs()[0]
    # Runs of 16 entries of a row read consecutive buckets, up to sign.
    index = {abs(float(v)): k for k, v in enumerate(block.bucket_weights_[0])}
    run = [index[abs(float(v))] for v in W[5, 16:32]]
    assert np.all(np.diff(run) % block.n_buckets_[0] == 1)
    with pytest.raises(ValueError, match="hashing is now 'element'"):
        block.set_params(warm_start=True, hashing="element").fit(X_train, y_train)
