"""Behaviour of the estimators, ported from scikit-learn's ``neural_network/tests/test_mlp.py``.

partial_fit, warm_start, early stopping, stopping rules, loss bookkeeping,
probabilities, dtypes, labels, feature names and sample weights: the rules that
code written for ``MLPClassifier`` / ``MLPRegressor`` relies on. Networks and
data are small so that the whole file runs in well under a minute.
"""

import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit
from sklearn.datasets import (
    load_digits,
    load_iris,
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import MinMaxScaler, scale

import sk_hashednets._multilayer_perceptron as mlp_module
from sk_hashednets import HashedMLPClassifier, HashedMLPRegressor

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
ESTIMATORS = [HashedMLPClassifier, HashedMLPRegressor]

_X, _y = load_digits(n_class=3, return_X_y=True)
X_digits_multi = MinMaxScaler().fit_transform(_X[:200])
y_digits_multi = _y[:200]

_X, _y = load_digits(n_class=2, return_X_y=True)
X_digits_binary = MinMaxScaler().fit_transform(_X[:200])
y_digits_binary = _y[:200]

X_reg, y_reg = make_regression(n_samples=200, n_features=10, bias=20.0, noise=100.0, random_state=7)
y_reg = scale(y_reg)

X_iris, y_iris = load_iris(return_X_y=True)

# Small data that both estimators accept: the digit labels 0 and 1 are numbers too.
X_small, y_small = X_digits_binary[:100], y_digits_binary[:100]

CLASSIFICATION_DATASETS = {
    "multiclass": (X_digits_multi, y_digits_multi),
    "binary": (X_digits_binary, y_digits_binary),
}


@pytest.fixture(params=sorted(CLASSIFICATION_DATASETS))
def classification_data(request):
    return CLASSIFICATION_DATASETS[request.param]


@pytest.fixture(scope="module")
def multilabel_data():
    return make_multilabel_classification(n_samples=50, random_state=0, return_indicator=True)


def _fit_quietly(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


def _assert_same_parameters(est1, est2, rtol=1e-12):
    assert len(est1.bucket_weights_) == len(est2.bucket_weights_)
    for w1, w2 in zip(est1.bucket_weights_, est2.bucket_weights_):
        assert_allclose(w1, w2, rtol=rtol, atol=1e-14)
    for b1, b2 in zip(est1.intercepts_, est2.intercepts_):
        assert_allclose(b1, b2, rtol=rtol, atol=1e-14)


def _objective(est, X, y):
    """The training objective, recomputed from the fitted model with public tools."""
    penalty = 0.5 * est.alpha * sum(np.dot(w, w) for w in est.bucket_weights_) / X.shape[0]
    if isinstance(est, HashedMLPClassifier):
        data_term = log_loss(y, est.predict_proba(X), labels=est.classes_)
    else:
        data_term = 0.5 * np.mean((y - est.predict(X)) ** 2)
    return data_term + penalty


# ----------------------------------------------------------------------------
# partial_fit
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("n_epochs", [1, 4])
def test_partial_fit_epochs_equal_fit_without_shuffle(Estimator, solver, n_epochs):
    # One partial_fit is one epoch: with shuffle=False and the same random_state,
    # n partial_fit calls over all the data train exactly as fit(max_iter=n).
    X, y = X_small, y_small
    params = dict(
        hidden_layer_sizes=(32, 16),
        solver=solver,
        shuffle=False,
        batch_size=30,
        tol=0,
        learning_rate_init=0.05 if solver == "sgd" else 0.01,
        random_state=3,
    )
    fitted = _fit_quietly(Estimator(max_iter=n_epochs, **params), X, y)

    incremental = Estimator(**params)
    kwargs = {"classes": np.unique(y)} if Estimator is HashedMLPClassifier else {}
    for epoch in range(n_epochs):
        incremental.partial_fit(X, y, **kwargs)
        assert incremental.n_iter_ == 1
        assert incremental.t_ == (epoch + 1) * X.shape[0]
        assert len(incremental.loss_curve_) == epoch + 1

    assert fitted.n_iter_ == n_epochs
    assert fitted.t_ == incremental.t_
    _assert_same_parameters(fitted, incremental)
    assert_allclose(fitted.loss_curve_, incremental.loss_curve_, rtol=1e-12)
    assert_array_equal(fitted.predict(X), incremental.predict(X))
    if Estimator is HashedMLPClassifier:
        assert_allclose(fitted.predict_proba(X), incremental.predict_proba(X), rtol=1e-12)
    # Each call trains: one more epoch moves the parameters away from fit's.
    incremental.partial_fit(X, y)
    assert not np.allclose(fitted.bucket_weights_[0], incremental.bucket_weights_[0])


def test_partial_fit_classification(classification_data):
    # As in scikit-learn: 'fit' and repeated 'partial_fit' (one batch an epoch)
    # give the same predictions, and both learn the task.
    X, y = classification_data
    params = dict(
        hidden_layer_sizes=(32,),
        solver="sgd",
        random_state=1,
        alpha=1e-5,
        learning_rate_init=0.2,
    )
    fitted = _fit_quietly(HashedMLPClassifier(max_iter=40, tol=0, **params), X, y)
    incremental = HashedMLPClassifier(**params)
    for _ in range(40):
        incremental.partial_fit(X, y, classes=np.unique(y))
    assert_array_equal(fitted.predict(X), incremental.predict(X))
    assert incremental.score(X, y) > 0.95


@pytest.mark.parametrize("momentum", [0, 0.9])
def test_partial_fit_regression(momentum):
    X, y = X_reg, y_reg
    params = dict(
        hidden_layer_sizes=(32,),
        solver="sgd",
        activation="relu",
        random_state=1,
        learning_rate_init=0.01,
        batch_size=X.shape[0],
        momentum=momentum,
    )
    fitted = _fit_quietly(HashedMLPRegressor(max_iter=50, tol=0, **params), X, y)
    incremental = HashedMLPRegressor(**params)
    for _ in range(50):
        incremental.partial_fit(X, y)
    # A single full batch an epoch: shuffling only reorders a sum.
    assert_allclose(fitted.predict(X), incremental.predict(X), rtol=1e-7, atol=1e-9)
    assert incremental.score(X, y) > 0.5


def test_partial_fit_requires_classes_on_first_call():
    X, y = X_iris[:20], y_iris[:20]
    clf = HashedMLPClassifier(hidden_layer_sizes=(16,), solver="sgd")
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    assert not hasattr(clf, "bucket_weights_")
    # Once classes are given, later calls need not repeat them.
    clf.partial_fit(X, y, classes=[0, 1, 2])
    clf.partial_fit(X, y)
    assert_array_equal(clf.classes_, [0, 1, 2])


def test_partial_fit_classes_error():
    # Different classes in a later call are an error.
    X, y = [[3, 2]], [0]
    clf = HashedMLPClassifier(hidden_layer_sizes=(4,), solver="sgd")
    clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="is not the same as on last call to partial_fit"):
        clf.partial_fit(X, y, classes=[1, 2])


def test_partial_fit_labels_not_in_classes():
    X, y = [[3, 2], [1, 6]], [1, 0]
    clf = HashedMLPClassifier(hidden_layer_sizes=(4,), solver="sgd")
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        clf.partial_fit(X, y, classes=[2])
    clf = HashedMLPClassifier(hidden_layer_sizes=(4,), solver="sgd")
    clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        clf.partial_fit(X, [0, 7])


def test_partial_fit_unseen_classes():
    # Classes announced on the first call may first appear later (sklearn #6994).
    clf = HashedMLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    clf.partial_fit([[1], [2], [3]], ["a", "b", "c"], classes=["a", "b", "c", "d"])
    assert clf.predict_proba([[1]]).shape == (1, 4)
    clf.partial_fit([[4]], ["d"])
    assert_array_equal(clf.classes_, ["a", "b", "c", "d"])
    assert clf.score([[1], [2], [3], [4]], ["a", "b", "c", "d"]) > 0
    assert set(clf.predict([[1], [2], [3], [4]])) <= {"a", "b", "c", "d"}


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_partial_fit_not_available_for_lbfgs(Estimator):
    est = Estimator(solver="lbfgs")
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as excinfo:
        est.partial_fit(X_iris, y_iris)
    assert "only available for stochastic optimizers" in str(excinfo.value.__cause__)
    assert hasattr(est.set_params(solver="sgd"), "partial_fit")


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_partial_fit_with_early_stopping_raises(Estimator):
    kwargs = {"classes": np.unique(y_iris)} if Estimator is HashedMLPClassifier else {}
    est = Estimator(hidden_layer_sizes=(8,), early_stopping=True, random_state=0)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        est.partial_fit(X_iris, y_iris, **kwargs)

    # After a fit with early stopping too (sklearn gh-25693).
    est = _fit_quietly(
        Estimator(hidden_layer_sizes=(8,), early_stopping=True, max_iter=5, random_state=0),
        X_iris,
        y_iris,
    )
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        est.partial_fit(X_iris, y_iris)


def test_partial_fit_multilabel(multilabel_data):
    X, Y = multilabel_data
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(32,),
        solver="sgd",
        random_state=0,
        activation="logistic",
        alpha=1e-5,
        learning_rate_init=0.2,
        compression=0.5,
    )
    for _ in range(100):
        clf.partial_fit(X, Y, classes=[0, 1, 2, 3, 4])
    assert clf.out_activation_ == "logistic"
    assert clf.predict(X).shape == Y.shape
    assert clf.t_ == 100 * X.shape[0]
    assert clf.score(X, Y) > 0.9


def test_partial_fit_after_joblib_round_trip(tmp_path):
    # The optimizer state travels with the model (sklearn #19626).
    reg = HashedMLPRegressor(
        hidden_layer_sizes=(16,), random_state=42, learning_rate_init=0.01, max_iter=200
    )
    _fit_quietly(reg, [[2]], [4])
    path = tmp_path / "hashed_mlp.joblib"
    joblib.dump(reg, path)
    loaded = joblib.load(path)
    for _ in range(200):
        loaded.partial_fit([[2]], [1])
    assert_allclose(loaded.predict([[2]]), [1], rtol=1e-4)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_pickle_holds_a_copy_of_the_buckets_only_for_early_stopping(early_stopping):
    # Early stopping restores the best buckets at the end of a fit, so it keeps a
    # copy of them; without it a model holds its buckets and Adam's two moments
    # (three floats a stored parameter), and so does its pickle.
    X, y = make_classification(n_samples=200, n_features=100, random_state=0)
    clf = _fit_quietly(
        HashedMLPClassifier(
            hidden_layer_sizes=(2000,),
            compression=0.5,
            max_iter=2,
            early_stopping=early_stopping,
            random_state=0,
        ),
        X,
        y,
    )
    stored = sum(a.nbytes for a in clf.bucket_weights_ + clf.intercepts_)
    copies = len(pickle.dumps(clf)) / stored
    if early_stopping:
        assert 4.0 < copies < 4.2
    else:
        assert 3.0 < copies < 3.2


# ----------------------------------------------------------------------------
# warm_start
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_warm_start_continues_from_previous_solution(Estimator):
    # Plain SGD (no momentum, constant step) has no optimizer state, so two warm
    # fits of 3 epochs are exactly one fit of 6.
    X, y = X_small, y_small
    params = dict(
        hidden_layer_sizes=(16,),
        solver="sgd",
        momentum=0,
        learning_rate_init=0.1,
        shuffle=False,
        batch_size=25,
        tol=0,
        random_state=0,
    )
    warm = Estimator(warm_start=True, max_iter=3, **params)
    _fit_quietly(warm, X, y)
    first_curve = list(warm.loss_curve_)
    _fit_quietly(warm, X, y)
    cold = _fit_quietly(Estimator(max_iter=6, **params), X, y)

    assert warm.n_iter_ == 3
    assert warm.t_ == cold.t_ == 6 * X.shape[0]
    assert warm.loss_curve_[:3] == first_curve
    assert_allclose(warm.loss_curve_, cold.loss_curve_, rtol=1e-12)
    _assert_same_parameters(warm, cold)

    # Without warm_start, the second fit starts over.
    restart = Estimator(warm_start=False, max_iter=3, **params)
    _fit_quietly(restart, X, y)
    _fit_quietly(restart, X, y)
    assert restart.loss_curve_ == first_curve
    assert restart.t_ == 3 * X.shape[0]


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_warm_start_lowers_the_loss(solver):
    X, y = X_digits_multi, y_digits_multi
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(32,),
        solver=solver,
        warm_start=True,
        max_iter=5,
        random_state=0,
        learning_rate_init=0.01,
    )
    _fit_quietly(clf, X, y)
    first = clf.loss_
    _fit_quietly(clf, X, y)
    assert clf.loss_ < first
    if solver == "adam":
        assert len(clf.loss_curve_) == 10
        assert clf.loss_curve_[5] < clf.loss_curve_[0]


def test_learning_rate_warmstart():
    X = [[3, 2], [1, 6], [5, 6], [-2, -4]]
    y = [1, 1, 1, 0]
    for learning_rate in ["invscaling", "constant"]:
        clf = HashedMLPClassifier(
            hidden_layer_sizes=(4,),
            solver="sgd",
            learning_rate=learning_rate,
            max_iter=1,
            power_t=0.25,
            warm_start=True,
            random_state=0,
        )
        _fit_quietly(clf, X, y)
        prev_eta = clf._optimizer.learning_rate
        _fit_quietly(clf, X, y)
        post_eta = clf._optimizer.learning_rate
        assert clf.t_ == 8
        if learning_rate == "constant":
            assert prev_eta == post_eta == clf.learning_rate_init
        else:
            assert post_eta == pytest.approx(clf.learning_rate_init / pow(8 + 1, clf.power_t))
            assert post_eta < prev_eta


def test_warm_start_with_different_classes_raises():
    X, y = X_iris, y_iris
    y_2classes = np.array([0] * 75 + [1] * 75)
    y_3classes = np.array([0] * 40 + [1] * 40 + [2] * 70)
    y_3classes_alt = np.array([0] * 50 + [1] * 50 + [3] * 50)
    y_4classes = np.array([0] * 37 + [1] * 37 + [2] * 38 + [3] * 38)
    y_5classes = np.array([0] * 30 + [1] * 30 + [2] * 30 + [3] * 30 + [4] * 30)
    params = dict(
        hidden_layer_sizes=(2,),
        solver="lbfgs",
        warm_start=True,
        random_state=42,
        tol=1e-2,
        max_iter=20,
    )

    # Same classes (even in other proportions): no error.
    clf = _fit_quietly(HashedMLPClassifier(**params), X, y)
    _fit_quietly(clf, X, y)
    _fit_quietly(clf, X, y_3classes)

    for y_i in (y_2classes, y_3classes_alt, y_4classes, y_5classes):
        clf = _fit_quietly(HashedMLPClassifier(**params), X, y)
        message = (
            "warm_start can only be used where `y` has the same classes as in the previous "
            "call to fit. Previously got [0 1 2], `y` has %s" % np.unique(y_i)
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            clf.fit(X, y_i)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize(
    "change",
    [
        {"hidden_layer_sizes": (8,)},
        {"hidden_layer_sizes": (16, 8)},
        {"compression": 0.5},
        {"n_buckets": 20},
        {"n_buckets": [40, 2]},
        {"sign_hash": False},
    ],
    ids=["narrower", "deeper", "compression", "n_buckets", "n_buckets_list", "sign_hash"],
)
def test_warm_start_with_changed_architecture_raises(Estimator, change):
    X, y = X_iris, y_iris
    est = Estimator(hidden_layer_sizes=(16,), max_iter=3, warm_start=True, random_state=0)
    _fit_quietly(est, X, y)
    buckets = [w.copy() for w in est.bucket_weights_]
    est.set_params(**change)
    with pytest.raises(ValueError, match="warm_start"):
        est.fit(X, y)
    # The refused fit left the fitted model alone.
    for w, w_before in zip(est.bucket_weights_, buckets):
        assert_array_equal(w, w_before)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_partial_fit_with_changed_architecture_raises(Estimator):
    X, y = X_iris, y_iris
    kwargs = {"classes": np.unique(y)} if Estimator is HashedMLPClassifier else {}
    est = Estimator(hidden_layer_sizes=(16,), random_state=0)
    est.partial_fit(X, y, **kwargs)
    est.set_params(compression=1.0)
    with pytest.raises(ValueError, match="bucket counts"):
        est.partial_fit(X, y)


def test_warm_start_keeps_the_training_dtype():
    X, y = X_iris, y_iris
    clf = HashedMLPClassifier(hidden_layer_sizes=(8,), max_iter=3, warm_start=True, random_state=0)
    _fit_quietly(clf, X, y)
    _fit_quietly(clf, X.astype(np.float32), y)
    assert all(w.dtype == np.float64 for w in clf.bucket_weights_)
    assert all(b.dtype == np.float64 for b in clf.intercepts_)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_warm_start_full_iteration(Estimator):
    # A warm-started estimator runs max_iter epochs again (sklearn #16812).
    max_iter = 3
    est = Estimator(hidden_layer_sizes=(2,), solver="sgd", warm_start=True, max_iter=max_iter)
    _fit_quietly(est, X_iris, y_iris)
    assert est.n_iter_ == max_iter
    _fit_quietly(est, X_iris, y_iris)
    assert est.n_iter_ == max_iter
    assert len(est.loss_curve_) == 2 * max_iter


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_warm_start_no_convergence(Estimator, solver):
    # n_iter_ counts the epochs of the last fit and stops at max_iter (sklearn #24764).
    est = Estimator(
        hidden_layer_sizes=(16,),
        solver=solver,
        warm_start=True,
        early_stopping=False,
        max_iter=10,
        n_iter_no_change=np.inf,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning):
        est.fit(X_iris, y_iris)
    assert est.n_iter_ == 10

    est.set_params(max_iter=20)
    with pytest.warns(ConvergenceWarning):
        est.fit(X_iris, y_iris)
    assert est.n_iter_ == 20


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_warm_start_with_early_stopping(Estimator):
    est = Estimator(
        hidden_layer_sizes=(8,),
        max_iter=10,
        random_state=0,
        warm_start=True,
        early_stopping=True,
    )
    _fit_quietly(est, X_iris, y_iris)
    n_validation_scores = len(est.validation_scores_)
    est.set_params(max_iter=20)
    _fit_quietly(est, X_iris, y_iris)
    assert len(est.validation_scores_) > n_validation_scores
    assert est.best_validation_score_ == max(est.validation_scores_)


# ----------------------------------------------------------------------------
# Stopping rules: tol, n_iter_no_change, adaptive learning rate
# ----------------------------------------------------------------------------


def test_tolerance():
    # A large tol stops training long before max_iter.
    X, y = [[3, 2], [1, 6]], [1, 0]
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(16,), tol=0.5, max_iter=3000, solver="sgd", random_state=0
    )
    clf.fit(X, y)
    assert clf.max_iter > clf.n_iter_


@pytest.mark.parametrize("n_iter_no_change", [2, 5, 10, 30])
def test_n_iter_no_change(n_iter_no_change):
    X, y = X_digits_binary[:100], y_digits_binary[:100]
    max_iter = 3000
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(16,),
        tol=0.01,
        max_iter=max_iter,
        solver="sgd",
        n_iter_no_change=n_iter_no_change,
        random_state=0,
    )
    clf.fit(X, y)
    assert clf._no_improvement_count == n_iter_no_change + 1
    assert n_iter_no_change < clf.n_iter_ < max_iter
    # None of the last n_iter_no_change + 1 epochs beat the best loss before it by tol.
    curve = clf.loss_curve_
    for k in range(len(curve) - n_iter_no_change - 1, len(curve)):
        assert curve[k] > min(curve[:k]) - clf.tol
    assert clf.best_loss_ == min(clf.loss_curve_)


def test_n_iter_no_change_inf():
    # With n_iter_no_change=inf, training runs to max_iter however little it improves.
    X, y = X_digits_binary[:100], y_digits_binary[:100]
    max_iter = 300
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(16,),
        tol=1e9,
        max_iter=max_iter,
        solver="sgd",
        n_iter_no_change=np.inf,
        random_state=0,
    )
    _fit_quietly(clf, X, y)
    assert clf.n_iter_ == max_iter
    # A ridiculous tol: every epoch but the first counts as "no improvement".
    assert clf._no_improvement_count == clf.n_iter_ - 1


def test_adaptive_learning_rate():
    X, y = [[3, 2], [1, 6]], [1, 0]
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(16,),
        tol=0.5,
        max_iter=3000,
        solver="sgd",
        learning_rate="adaptive",
        random_state=0,
    )
    clf.fit(X, y)
    assert clf.max_iter > clf.n_iter_
    assert 1e-6 > clf._optimizer.learning_rate


# ----------------------------------------------------------------------------
# Early stopping
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_early_stopping(Estimator):
    X, y = X_digits_binary[:100], y_digits_binary[:100]
    tol = 0.2
    est = Estimator(
        hidden_layer_sizes=(16,),
        tol=tol,
        max_iter=3000,
        solver="sgd",
        early_stopping=True,
        random_state=0,
    )
    est.fit(X, y)
    assert est.max_iter > est.n_iter_
    assert est.best_loss_ is None
    assert isinstance(est.validation_scores_, list)
    assert len(est.validation_scores_) == len(est.loss_curve_) == est.n_iter_

    valid_scores = est.validation_scores_
    best_valid_score = est.best_validation_score_
    assert max(valid_scores) == best_valid_score
    assert best_valid_score + tol > valid_scores[-2]
    assert best_valid_score + tol > valid_scores[-1]
    # Only the training part of the split is counted in t_.
    n_train = X.shape[0] - int(np.ceil(est.validation_fraction * X.shape[0]))
    assert est.t_ == est.n_iter_ * n_train

    # Without early stopping, the validation attributes are None.
    est = Estimator(
        hidden_layer_sizes=(16,),
        tol=tol,
        max_iter=3000,
        solver="sgd",
        early_stopping=False,
        random_state=0,
    )
    est.fit(X, y)
    assert est.validation_scores_ is None
    assert est.best_validation_score_ is None
    assert est.best_loss_ is not None
    assert est.best_loss_ == min(est.loss_curve_)


@pytest.fixture
def recorded_splits(monkeypatch):
    """Record the train/validation splits the estimators make for early stopping."""
    splits = []
    original = mlp_module.train_test_split

    def recording_split(*arrays, **kwargs):
        result = original(*arrays, **kwargs)
        splits.append(result)
        return result

    monkeypatch.setattr(mlp_module, "train_test_split", recording_split)
    return splits


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_early_stopping_restores_the_best_epoch(Estimator, recorded_splits):
    # The fitted parameters are those of the best validation epoch, not the last.
    if Estimator is HashedMLPClassifier:
        # Noisy labels: validation accuracy peaks, then falls as the network overfits.
        X, y = make_classification(
            n_samples=200, n_features=20, n_informative=5, flip_y=0.2, random_state=0
        )
        learning_rate_init = 0.01
    else:
        X, y = X_digits_multi, y_digits_multi.astype(float)
        learning_rate_init = 0.05
    est = Estimator(
        hidden_layer_sizes=(32,),
        solver="adam",
        learning_rate_init=learning_rate_init,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=5,
        tol=0,
        max_iter=200,
        random_state=0,
    )
    _fit_quietly(est, X, y)
    assert len(recorded_splits) == 1
    X_val, y_val = recorded_splits[0][1], recorded_splits[0][3]
    if Estimator is HashedMLPClassifier:
        y_val = est._label_binarizer.inverse_transform(y_val)
    else:
        y_val = y_val.ravel()

    best_epoch = int(np.argmax(est.validation_scores_))
    assert best_epoch < est.n_iter_ - 1, "training should have gone on after its best epoch"
    assert est.score(X_val, y_val) == pytest.approx(est.best_validation_score_, rel=1e-12)
    assert est.score(X_val, y_val) != est.validation_scores_[-1]


def test_early_stopping_stratified():
    # The split for early stopping is stratified: one sample of a class is an error.
    X = [[1, 2], [2, 3], [3, 4], [4, 5]]
    y = [0, 0, 0, 1]
    clf = HashedMLPClassifier(hidden_layer_sizes=(4,), early_stopping=True)
    with pytest.raises(
        ValueError,
        match=(
            r"The least populated classes in y have only 1 member.*Classes with "
            r"too few members are: \['True'\]"
        ),
    ):
        clf.fit(X, y)


def test_early_stopping_stratified_split_keeps_class_proportions(recorded_splits):
    # As in scikit-learn, single-output (binary) targets are split stratified.
    X, y = X_iris, (y_iris == 0).astype(int)
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(8,),
        early_stopping=True,
        validation_fraction=0.2,
        max_iter=5,
        random_state=0,
    )
    _fit_quietly(clf, X, y)
    y_val = clf._label_binarizer.inverse_transform(recorded_splits[0][3])
    assert_array_equal(np.bincount(y_val), [20, 10])


def test_early_stopping_multilabel(multilabel_data):
    # Multilabel targets are not stratified, so early stopping works.
    X, Y = multilabel_data
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(16,), early_stopping=True, max_iter=30, random_state=0
    )
    _fit_quietly(clf, X, Y)
    assert clf.predict(X).shape == Y.shape
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None


def test_early_stopping_string_labels():
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    y = labels[y_iris]
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(16,), early_stopping=True, max_iter=30, random_state=42
    )
    _fit_quietly(clf, X_iris, y)
    assert clf.validation_scores_ is not None
    assert len(clf.validation_scores_) == clf.n_iter_
    assert np.isfinite(clf.validation_scores_).all()
    assert set(clf.predict(X_iris)) <= set(labels)


def test_early_stopping_with_sample_weight():
    # Unit weights follow the weighted split and give the unweighted model.
    X, y = make_regression(n_samples=100, n_features=2, n_informative=2, random_state=42)
    params = dict(
        hidden_layer_sizes=(10,),
        solver="adam",
        early_stopping=True,
        tol=1e-2,
        learning_rate_init=0.01,
        batch_size=10,
        random_state=42,
    )
    weighted = _fit_quietly(HashedMLPRegressor(**params), X, y, sample_weight=np.ones_like(y))
    unweighted = _fit_quietly(HashedMLPRegressor(**params), X, y)
    assert_allclose(weighted.predict(X), unweighted.predict(X))
    assert_allclose(weighted.validation_scores_, unweighted.validation_scores_)


def test_early_stopping_validation_set_too_small():
    X, y = make_regression(n_samples=2, n_features=5, random_state=0)
    reg = HashedMLPRegressor(hidden_layer_sizes=(4,), early_stopping=True, random_state=0)
    with pytest.raises(ValueError, match="The validation set is too small"):
        reg.fit(X, y)


# ----------------------------------------------------------------------------
# Losses, L-BFGS, warnings, verbose output
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_loss_curve_bookkeeping(Estimator, solver):
    X, y = X_small, y_small
    est = _fit_quietly(
        Estimator(hidden_layer_sizes=(16,), solver=solver, max_iter=15, random_state=0), X, y
    )
    assert len(est.loss_curve_) == est.n_iter_ == 15
    assert est.loss_ == est.loss_curve_[-1]
    assert est.best_loss_ == min(est.loss_curve_)
    assert est.t_ == 15 * X.shape[0]
    assert np.all(np.isfinite(est.loss_curve_))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_loss_curve_is_the_objective_at_each_epoch_start(Estimator):
    # Full-batch SGD without shuffling: the loss of epoch k is the objective at the
    # parameters left by epoch k - 1, L2 penalty on the buckets included.
    X, y = X_small, y_small
    params = dict(
        hidden_layer_sizes=(16,),
        solver="sgd",
        batch_size=X.shape[0],
        shuffle=False,
        tol=0,
        alpha=0.5,
        learning_rate_init=0.1,
        random_state=0,
    )
    two_epochs = _fit_quietly(Estimator(max_iter=2, **params), X, y)
    one_epoch = _fit_quietly(Estimator(max_iter=1, **params), X, y)
    assert two_epochs.loss_curve_[0] == one_epoch.loss_curve_[0]
    assert two_epochs.loss_curve_[1] == pytest.approx(_objective(one_epoch, X, y), rel=1e-9)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_lbfgs_loss_is_the_objective(Estimator):
    X, y = X_small, y_small
    est = _fit_quietly(
        Estimator(hidden_layer_sizes=(16,), solver="lbfgs", alpha=0.1, max_iter=30, random_state=0),
        X,
        y,
    )
    assert est.loss_ == pytest.approx(_objective(est, X, y), rel=1e-9)
    # As in scikit-learn, L-BFGS keeps no curve of per-epoch losses.
    assert not hasattr(est, "loss_curve_")
    assert not hasattr(est, "best_loss_")
    assert 0 < est.n_iter_ <= 30


def test_lbfgs_classification(classification_data):
    X, y = classification_data
    X_train, y_train, X_test = X[:150], y[:150], X[150:]
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(32,), solver="lbfgs", max_iter=100, random_state=1
    )
    _fit_quietly(clf, X_train, y_train)
    y_predict = clf.predict(X_test)
    assert clf.score(X_train, y_train) > 0.95
    assert y_predict.shape == (X_test.shape[0],)
    assert y_predict.dtype.kind == y_train.dtype.kind


def test_lbfgs_regression():
    reg = HashedMLPRegressor(
        hidden_layer_sizes=(32,),
        solver="lbfgs",
        max_iter=200,
        tol=1e-3,
        random_state=1,
        compression=0.5,
    )
    _fit_quietly(reg, X_reg, y_reg)
    assert reg.score(X_reg, y_reg) > 0.9


def test_multioutput_regression():
    X, y = make_regression(n_samples=100, n_features=10, n_targets=5, random_state=11)
    reg = HashedMLPRegressor(
        hidden_layer_sizes=(32,),
        solver="lbfgs",
        max_iter=100,
        tol=1e-2,
        random_state=1,
        compression=0.5,
    )
    _fit_quietly(reg, X, y)
    assert reg.predict(X).shape == y.shape
    assert reg.n_outputs_ == 5
    assert reg.score(X, y) > 0.9


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_lbfgs_classification_maxfun(classification_data, activation):
    # max_fun limits L-BFGS independently of max_iter.
    X, y = classification_data
    max_fun = 10
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(32,),
        solver="lbfgs",
        tol=0.0,
        max_iter=150,
        max_fun=max_fun,
        random_state=1,
        activation=activation,
    )
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    assert max_fun >= clf.n_iter_


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_lbfgs_regression_maxfun(activation):
    max_fun = 10
    reg = HashedMLPRegressor(
        hidden_layer_sizes=(32,),
        solver="lbfgs",
        tol=0.0,
        max_iter=150,
        max_fun=max_fun,
        random_state=1,
        activation=activation,
    )
    with pytest.warns(ConvergenceWarning):
        reg.fit(X_reg, y_reg)
    assert max_fun >= reg.n_iter_


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_convergence_warning_when_max_iter_reached(Estimator, solver):
    X, y = X_small, y_small
    est = Estimator(hidden_layer_sizes=(16,), solver=solver, max_iter=2, tol=0, random_state=0)
    if solver == "lbfgs":
        match = r"lbfgs failed to converge after 2 iteration"
    else:
        match = r"Maximum iterations \(2\) reached"
    with pytest.warns(ConvergenceWarning, match=match):
        est.fit(X, y)
    assert est.n_iter_ == 2


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_partial_fit_does_not_warn_about_convergence(Estimator):
    X, y = X_small, y_small
    kwargs = {"classes": np.unique(y)} if Estimator is HashedMLPClassifier else {}
    est = Estimator(hidden_layer_sizes=(16,), max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.partial_fit(X, y, **kwargs)
        est.partial_fit(X, y)


def test_verbose_sgd(capsys):
    X, y = [[3, 2], [1, 6]], [1, 0]
    clf = HashedMLPClassifier(solver="sgd", max_iter=2, verbose=10, hidden_layer_sizes=(2,))
    _fit_quietly(clf, X, y)
    clf.partial_fit(X, y)
    out, _ = capsys.readouterr()
    epoch_lines = [line for line in out.splitlines() if line.startswith("Iteration")]
    assert len(epoch_lines) == 3
    for line in epoch_lines:
        assert "loss =" in line
        assert "samples/s" in line
    assert epoch_lines[-1].startswith("Iteration 1,")


def test_verbose_early_stopping_reports_validation_scores(capsys):
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(8,), early_stopping=True, max_iter=3, verbose=True, random_state=0
    )
    _fit_quietly(clf, X_iris, y_iris)
    out, _ = capsys.readouterr()
    assert out.count("Validation score:") == 3
    assert out.count("Iteration") == 3


def test_not_verbose_prints_nothing(capsys):
    _fit_quietly(HashedMLPClassifier(hidden_layer_sizes=(8,), max_iter=3), X_iris, y_iris)
    out, _ = capsys.readouterr()
    assert out == ""


# ----------------------------------------------------------------------------
# Probabilities and output shapes
# ----------------------------------------------------------------------------


def test_predict_proba_binary():
    X, y = X_digits_binary[:50], y_digits_binary[:50]
    clf = HashedMLPClassifier(hidden_layer_sizes=(16,), activation="logistic", random_state=1)
    _fit_quietly(clf, X, y)
    y_proba = clf.predict_proba(X)
    y_log_proba = clf.predict_log_proba(X)

    assert clf.out_activation_ == "logistic"
    assert y_proba.shape == (y.shape[0], 2)
    assert_allclose(y_proba.sum(axis=1), 1)
    assert_array_equal(y_proba.argmax(axis=1), y_log_proba.argmax(axis=1))
    assert_allclose(y_log_proba, np.log(y_proba))
    assert_array_equal(clf.classes_[y_proba.argmax(axis=1)], clf.predict(X))
    assert clf.predict(X).shape == (y.shape[0],)
    assert roc_auc_score(y, y_proba[:, 1]) == 1.0


def test_predict_proba_multiclass():
    X, y = X_digits_multi[:10], y_digits_multi[:10]
    clf = HashedMLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    _fit_quietly(clf, X, y)
    y_proba = clf.predict_proba(X)
    y_log_proba = clf.predict_log_proba(X)

    assert clf.out_activation_ == "softmax"
    assert y_proba.shape == (y.shape[0], np.unique(y).size)
    assert_allclose(y_proba.sum(axis=1), 1)
    assert_array_equal(y_proba.argmax(axis=1), y_log_proba.argmax(axis=1))
    assert_allclose(y_log_proba, np.log(y_proba))
    assert_array_equal(clf.classes_[y_proba.argmax(axis=1)], clf.predict(X))


def test_predict_proba_multilabel(multilabel_data):
    # Multilabel outputs are independent logistics: rows need not sum to 1.
    X, Y = multilabel_data
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(32,), solver="lbfgs", random_state=0, compression=0.5
    )
    _fit_quietly(clf, X, Y)
    y_proba = clf.predict_proba(X)

    assert y_proba.shape == Y.shape
    assert_array_equal(y_proba > 0.5, Y)
    assert_array_equal(clf.predict(X), Y)
    y_log_proba = clf.predict_log_proba(X)
    assert (y_proba.sum(1) - 1).dot(y_proba.sum(1) - 1) > 1e-10
    assert_array_equal(y_proba.argmax(axis=1), y_log_proba.argmax(axis=1))
    assert_allclose(y_log_proba, np.log(y_proba))


def test_logistic_output_keeps_small_probabilities(multilabel_data):
    # MLPClassifier's logistic output is scipy's expit: a confident "no" is a tiny
    # positive probability with a finite log, not exactly 0 with a log of -inf.
    X, Y = multilabel_data
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(32,), solver="lbfgs", random_state=0, compression=0.5
    )
    _fit_quietly(clf, X, Y)
    W = clf.virtual_coefs()
    logits = np.maximum(X @ W[0] + clf.intercepts_[0], 0) @ W[1] + clf.intercepts_[1]
    assert logits.min() < -40, "the check needs confident negative outputs"
    assert_allclose(clf.predict_proba(X), expit(logits), rtol=1e-6)
    with np.errstate(divide="ignore"):
        log_proba = clf.predict_log_proba(X)
    assert np.isfinite(log_proba[logits > -700]).all()


# ----------------------------------------------------------------------------
# dtypes, labels, feature names
# ----------------------------------------------------------------------------


def test_mlp_classifier_dtypes_casting():
    X, y = X_digits_multi, y_digits_multi
    params = dict(alpha=1e-5, hidden_layer_sizes=(16, 8), random_state=1, max_iter=100, tol=1e-1)
    clf_64 = HashedMLPClassifier(**params).fit(X[:150], y[:150])
    clf_32 = HashedMLPClassifier(**params).fit(X[:150].astype(np.float32), y[:150])
    assert_array_equal(clf_64.predict(X[150:]), clf_32.predict(X[150:].astype(np.float32)))
    assert_allclose(
        clf_64.predict_proba(X[150:]),
        clf_32.predict_proba(X[150:].astype(np.float32)),
        rtol=1e-2,
    )


def test_mlp_regressor_dtypes_casting():
    X, y = X_digits_multi, y_digits_multi
    params = dict(alpha=1e-5, hidden_layer_sizes=(16, 8), random_state=1, max_iter=150, tol=1e-3)
    reg_64 = _fit_quietly(HashedMLPRegressor(**params), X[:150], y[:150])
    reg_32 = _fit_quietly(HashedMLPRegressor(**params), X[:150].astype(np.float32), y[:150])
    assert_allclose(reg_64.predict(X[150:]), reg_32.predict(X[150:].astype(np.float32)), rtol=5e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_mlp_param_dtypes(dtype, Estimator, solver):
    # The input dtype is the dtype of the buckets, intercepts and predictions.
    X, y = X_digits_multi.astype(dtype), y_digits_multi
    est = Estimator(
        alpha=1e-5,
        hidden_layer_sizes=(16, 8),
        solver=solver,
        random_state=1,
        max_iter=20,
        tol=1e-1,
    )
    _fit_quietly(est, X[:150], y[:150])
    assert all(w.dtype == dtype for w in est.bucket_weights_)
    assert all(b.dtype == dtype for b in est.intercepts_)
    pred = est.predict(X[150:])
    if Estimator is HashedMLPRegressor:
        assert pred.dtype == dtype
    else:
        assert est.predict_proba(X[150:]).dtype == dtype
        assert pred.dtype == y.dtype


def test_string_and_object_labels():
    names = np.array(["setosa", "versicolor", "virginica"])
    for y in (names[y_iris], names[y_iris].astype(object)):
        clf = _fit_quietly(
            HashedMLPClassifier(
                hidden_layer_sizes=(16,), solver="lbfgs", max_iter=50, random_state=0
            ),
            X_iris,
            y,
        )
        assert_array_equal(clf.classes_, names)
        pred = clf.predict(X_iris)
        # As MLPClassifier: labels come back in the dtype of classes_.
        assert pred.dtype == clf.classes_.dtype
        assert set(pred) <= set(names)
        assert clf.score(X_iris, y) > 0.9

    # Binary string labels: predictions are labels, probabilities two columns.
    y = np.where(y_digits_binary == 1, "one", "zero")
    clf = _fit_quietly(
        HashedMLPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0),
        X_digits_binary,
        y,
    )
    assert_array_equal(clf.classes_, ["one", "zero"])
    assert set(clf.predict(X_digits_binary)) <= {"one", "zero"}
    assert clf.predict_proba(X_digits_binary).shape == (len(y), 2)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_preserve_feature_names(Estimator):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(data=rng.randn(10, 2), columns=["colname_a", "colname_b"])
    y = pd.Series(data=np.full(10, 1), name="colname_y")

    # Early stopping scores the validation split without a feature-name warning (gh-24846).
    est = Estimator(
        hidden_layer_sizes=(4,), early_stopping=True, validation_fraction=0.2, max_iter=5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        # ConvergenceWarning is a UserWarning: the later filter comes first.
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        est.predict(X)
    assert_array_equal(est.feature_names_in_, ["colname_a", "colname_b"])
    assert est.n_features_in_ == 2

    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        est.predict(X.to_numpy())
    with pytest.raises(ValueError, match="feature names"):
        est.predict(X.rename(columns={"colname_a": "other"}))


# ----------------------------------------------------------------------------
# Sample weights
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_integer_weights_equal_repeated_samples_lbfgs(Estimator):
    X, y = X_iris[::3], y_iris[::3]
    sw = np.random.RandomState(0).randint(0, 4, X.shape[0])
    sw[:3] = [1, 2, 3]
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=50, tol=0, random_state=0)
    weighted = _fit_quietly(Estimator(**params), X, y, sample_weight=sw)
    repeated = _fit_quietly(Estimator(**params), np.repeat(X, sw, axis=0), np.repeat(y, sw))
    assert weighted.loss_ == pytest.approx(repeated.loss_, rel=1e-6)
    assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-5, atol=1e-6)
    if Estimator is HashedMLPClassifier:
        assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_zero_weights_equal_dropped_samples(Estimator, solver):
    # Full batch, no shuffling: a zero weight removes a sample from every gradient.
    X, y = X_iris, y_iris
    sw = np.ones(X.shape[0])
    sw[1::4] = 0
    kept = sw > 0
    params = dict(
        hidden_layer_sizes=(8,),
        solver=solver,
        max_iter=30,
        tol=0,
        random_state=0,
        batch_size=X.shape[0],
        shuffle=False,
        learning_rate_init=0.01,
    )
    weighted = _fit_quietly(Estimator(**params), X, y, sample_weight=sw)
    # Full batch of the kept samples too (batch_size=150 would be clipped, with a warning).
    dropped = _fit_quietly(Estimator(**{**params, "batch_size": int(kept.sum())}), X[kept], y[kept])
    _assert_same_parameters(weighted, dropped, rtol=1e-6)
    if Estimator is HashedMLPClassifier:
        assert_allclose(weighted.predict_proba(X), dropped.predict_proba(X), atol=1e-8)
    else:
        assert_allclose(weighted.predict(X), dropped.predict(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_sample_weight_changes_the_fit(Estimator):
    X, y = X_small, y_small
    sw = np.where(y == 1, 10.0, 1.0)
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=20, random_state=0)
    weighted = _fit_quietly(Estimator(**params), X, y, sample_weight=sw)
    unweighted = _fit_quietly(Estimator(**params), X, y)
    assert not np.allclose(weighted.bucket_weights_[0], unweighted.bucket_weights_[0])


# ----------------------------------------------------------------------------
# Activations and losses
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_every_activation_classifies(activation, solver):
    X, y = X_digits_multi, y_digits_multi
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(32, 16),
        activation=activation,
        solver=solver,
        max_iter=30,
        learning_rate_init=0.01,
        random_state=0,
    )
    _fit_quietly(clf, X, y)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    assert_allclose(proba.sum(axis=1), 1)
    assert clf.score(X, y) > 0.8


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_every_activation_and_loss_regresses(activation, loss):
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(120, 6))
    linear = X @ rng.uniform(-1, 1, 6)
    y = rng.poisson(np.exp(linear)).astype(float) if loss == "poisson" else linear
    reg = HashedMLPRegressor(
        loss=loss,
        hidden_layer_sizes=(32, 16),
        activation=activation,
        max_iter=30,
        learning_rate_init=0.01,
        random_state=0,
    )
    _fit_quietly(reg, X, y)
    pred = reg.predict(X)
    assert pred.shape == y.shape
    assert np.isfinite(pred).all()
    assert reg.out_activation_ == ("exp" if loss == "poisson" else "identity")
    if loss == "poisson":
        assert (pred > 0).all()
    assert np.isfinite(reg.loss_curve_).all()
    assert reg.loss_curve_[-1] < reg.loss_curve_[0]


def test_poisson_with_negative_targets_raises():
    X, y = X_reg[:50], y_reg[:50]
    assert (y < 0).any()
    with pytest.raises(ValueError, match="non-negative"):
        HashedMLPRegressor(loss="poisson", hidden_layer_sizes=(4,)).fit(X, y)
    # Squared error takes the same targets.
    _fit_quietly(HashedMLPRegressor(hidden_layer_sizes=(4,), max_iter=2), X, y)


# ----------------------------------------------------------------------------
# Other behaviour from test_mlp.py
# ----------------------------------------------------------------------------


def _public_fitted_attributes(est):
    return {a for a in vars(est) if a.endswith("_") and not a.startswith("_")}


@pytest.mark.parametrize(
    "Estimator, Reference",
    [(HashedMLPClassifier, MLPClassifier), (HashedMLPRegressor, MLPRegressor)],
)
@pytest.mark.parametrize(
    "params",
    [{"solver": "adam"}, {"solver": "lbfgs"}, {"solver": "sgd", "early_stopping": True}],
    ids=["adam", "lbfgs", "early_stopping"],
)
def test_fitted_attributes_are_those_of_sklearn(Estimator, Reference, params):
    # Code written for MLPClassifier / MLPRegressor finds every attribute it knows,
    # bar coefs_, whose place bucket_weights_ takes.
    X, y = X_iris, y_iris
    params = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, **params)
    est = _fit_quietly(Estimator(**params), X, y)
    ref = _fit_quietly(Reference(**params), X, y)
    expected = _public_fitted_attributes(ref) - {"coefs_"}
    assert expected <= _public_fitted_attributes(est)
    for name in expected:
        if getattr(ref, name) is None:
            assert getattr(est, name) is None, name
        elif name in ("loss_curve_", "validation_scores_"):
            assert len(getattr(est, name)) == len(getattr(ref, name))
    assert est.n_iter_ == ref.n_iter_
    assert est.t_ == ref.t_
    assert est.out_activation_ == ref.out_activation_
    assert len(est.bucket_weights_) == len(ref.coefs_)


def test_alpha():
    # A larger alpha gives smaller buckets.
    X, y = X_digits_binary[:100], y_digits_binary[:100]
    sums = []
    for alpha in [0, 1]:
        clf = _fit_quietly(
            HashedMLPClassifier(
                hidden_layer_sizes=(10,), alpha=alpha, random_state=1, max_iter=100
            ),
            X,
            y,
        )
        sums.append([np.abs(w).sum() for w in clf.bucket_weights_])
    assert (np.array(sums[0]) > np.array(sums[1])).all()


def test_shuffle():
    X, y = make_regression(n_samples=50, n_features=5, n_targets=1, random_state=0)
    params = dict(hidden_layer_sizes=(2,), max_iter=1, batch_size=1, random_state=0)
    for shuffle in [True, False]:
        reg1 = _fit_quietly(HashedMLPRegressor(shuffle=shuffle, **params), X, y)
        reg2 = _fit_quietly(HashedMLPRegressor(shuffle=shuffle, **params), X, y)
        assert_array_equal(reg1.bucket_weights_[0], reg2.bucket_weights_[0])

    reg1 = _fit_quietly(HashedMLPRegressor(shuffle=True, **params), X, y)
    reg2 = _fit_quietly(HashedMLPRegressor(shuffle=False, **params), X, y)
    assert not np.array_equal(reg1.bucket_weights_[0], reg2.bucket_weights_[0])


def test_a_call_saves_its_number_lists_without_deep_copies():
    # Every call saves the fitted state it may have to put back (a failed call
    # leaves the model as it was: tests/test_bad_input.py). The loss curve gains
    # an item per partial_fit call: it is saved as a new list of the same items,
    # so that a long stream does not deep-copy its whole curve at every call.
    curve = [0.5, 0.25, np.float64(0.125)]
    saved = mlp_module._saved_copy("loss_curve_", curve)
    assert saved == curve and saved is not curve
    assert all(a is b for a, b in zip(saved, curve))
    assert mlp_module._saved_copy("validation_scores_", None) is None
    weights = [np.ones(3)]
    copied = mlp_module._saved_copy("bucket_weights_", weights)
    assert copied[0] is not weights[0]  # arrays, which a call changes in place: deep copies
    np.testing.assert_array_equal(copied[0], weights[0])


@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_call_failing_after_an_epoch_puts_its_curves_back(monkeypatch, early_stopping):
    # The loss curve and the validation scores are saved as lists (not deep
    # copies): a warm-start fit that fails in its second epoch, after the first
    # appended to them, leaves them as they were.
    est = HashedMLPClassifier(
        hidden_layer_sizes=(8,),
        max_iter=3,
        early_stopping=early_stopping,
        warm_start=True,
        random_state=0,
    )
    _fit_quietly(est, X_iris, y_iris)
    curve = list(est.loss_curve_)
    scores = None if est.validation_scores_ is None else list(est.validation_scores_)
    steps = []
    real_backprop = HashedMLPClassifier._backprop

    def failing_in_the_second_epoch(self, *args, **kwargs):
        steps.append(1)
        if len(steps) > 1:  # iris is one minibatch: the second epoch's step
            raise RuntimeError("injected failure")
        return real_backprop(self, *args, **kwargs)

    monkeypatch.setattr(HashedMLPClassifier, "_backprop", failing_in_the_second_epoch)
    with pytest.raises(RuntimeError, match="injected failure"):
        est.fit(X_iris, y_iris)
    assert len(steps) == 2
    assert est.loss_curve_ == curve
    assert est.validation_scores_ == scores
