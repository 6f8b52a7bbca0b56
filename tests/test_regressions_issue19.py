"""Regression tests for the defects of issue 19, each failing on the code before its fix."""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_hashednets import HashedMLPClassifier, HashedMLPRegressor

X_IRIS, Y_IRIS = load_iris(return_X_y=True)


def test_lbfgs_verbose_raises_no_deprecation_warning():
    """Item 3: ``disp`` is deprecated by SciPy 1.15; like scikit-learn, do not pass it."""
    clf = HashedMLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", verbose=True, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        clf.fit(X_IRIS, Y_IRIS)
    assert clf.n_iter_ >= 1 and np.isfinite(clf.loss_)


def _twin(estimator, solver, early_stopping):
    """A dense twin of a model whose every epoch counts as no improvement (tol=10).

    With ``n_iter_no_change=1`` the next epoch of the twin reaches scikit-learn's
    no-improvement bookkeeping at once.
    """
    hashed = HashedMLPClassifier if estimator == "classifier" else HashedMLPRegressor
    y = Y_IRIS if estimator == "classifier" else X_IRIS[:, 0] - X_IRIS[:, 1]
    model = hashed(
        hidden_layer_sizes=(16,),
        solver=solver,
        early_stopping=early_stopping,
        tol=10,
        n_iter_no_change=1,
        max_iter=5,
        random_state=0,
    ).fit(X_IRIS, y)
    mlp = model.to_sklearn()
    assert type(mlp) is (MLPClassifier if estimator == "classifier" else MLPRegressor)
    return mlp, y


@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_twin_trains_on_with_partial_fit(estimator, solver):
    """Item 1: the twin's first epoch without improvement needs _no_improvement_count."""
    mlp, y = _twin(estimator, solver, early_stopping=False)
    before, n_epochs = [W.copy() for W in mlp.coefs_], len(mlp.loss_curve_)
    for _ in range(3):
        mlp.partial_fit(X_IRIS, y)
    assert len(mlp.loss_curve_) == n_epochs + 3 and mlp.n_iter_ == 1  # per call, as in sklearn
    assert not np.array_equal(before[0], mlp.coefs_[0])
    assert np.isfinite(mlp.predict(X_IRIS).astype(float)).all()


@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_twin_of_early_stopped_model_refuses_partial_fit_as_sklearn_does(estimator, solver):
    mlp, y = _twin(estimator, solver, early_stopping=True)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        mlp.partial_fit(X_IRIS, y)


@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
@pytest.mark.parametrize(
    "solver, early_stopping",
    [("adam", False), ("adam", True), ("sgd", False), ("sgd", True), ("lbfgs", False)],
)
def test_twin_trains_on_with_warm_start_fit(estimator, solver, early_stopping):
    """Item 1: a warm-start fit needs _no_improvement_count, and under early
    stopping _best_coefs / _best_intercepts, which it restores at the end."""
    mlp, y = _twin(estimator, solver, early_stopping)
    before = [W.copy() for W in mlp.coefs_]
    n_epochs = len(getattr(mlp, "loss_curve_", []))
    best_before = getattr(mlp, "best_validation_score_", None)
    mlp.set_params(warm_start=True, max_iter=3)
    if solver == "lbfgs":
        mlp.set_params(tol=0.0)  # with gtol=10 L-BFGS-B would stop at once
    mlp.fit(X_IRIS, y)
    if solver != "lbfgs":
        assert len(mlp.loss_curve_) > n_epochs
    if early_stopping:
        new_scores = mlp.validation_scores_[n_epochs:]
        assert len(mlp.validation_scores_) == len(mlp.loss_curve_)
        assert mlp.best_validation_score_ == max(best_before, *new_scores)
        # The best weights are restored: the twin's own unless a new epoch beat them.
        improved = max(new_scores) > best_before
        assert np.array_equal(before[0], mlp.coefs_[0]) != improved
    else:
        assert not np.array_equal(before[0], mlp.coefs_[0])
    assert np.isfinite(mlp.predict(X_IRIS).astype(float)).all()


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_minibatch_of_zero_weight_is_a_no_op_step(solver):
    """Item 4: a minibatch whose weights sum to zero made the loss 0/0 ("Training
    diverged"); it now contributes nothing, as if its samples were not there."""
    weights = np.ones(len(X_IRIS))
    weights[:10] = 0.0  # with shuffle=False and batch_size=10: the whole first minibatch
    kw = dict(hidden_layer_sizes=(8,), solver=solver, batch_size=10, shuffle=False, max_iter=4)
    model = HashedMLPClassifier(**kw, random_state=0).fit(X_IRIS, Y_IRIS, sample_weight=weights)
    without = HashedMLPClassifier(**kw, random_state=0).fit(
        X_IRIS[10:], Y_IRIS[10:], sample_weight=weights[10:]
    )
    for a, b in zip(
        model.bucket_weights_ + model.intercepts_, without.bucket_weights_ + without.intercepts_
    ):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(model.loss_curve_).all()


@pytest.mark.parametrize("name", ["dropout", "input_dropout"])
def test_dropout_that_rounds_to_one_is_refused_by_validation(name):
    """Item 7a: rates in [1 - 2**-17, 1) rounded to a 16-bit threshold of 65536
    (ZeroDivisionError); they are refused before anything is trained."""
    model = HashedMLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    model.fit(X_IRIS, Y_IRIS)
    fitted = [b.copy() for b in model.bucket_weights_]
    for rate in (0.999995, 1 - 2**-17):
        model.set_params(warm_start=True, **{name: rate})
        with pytest.raises(ValueError, match=rf"'{name}' parameter .* range \[0.0, 0.99999237"):
            model.fit(X_IRIS, Y_IRIS)
    for a, b in zip(model.bucket_weights_, fitted):
        np.testing.assert_array_equal(a, b)
    # The largest rate that keeps a unit now and then still trains.
    model.set_params(warm_start=False, **{name: 1 - 2**-16})
    assert np.isfinite(model.fit(X_IRIS, Y_IRIS).loss_)


def _student(teacher):
    return HashedMLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, teacher=teacher)


def _same_student(a, b):
    for x, y in zip(a.bucket_weights_ + a.intercepts_, b.bucket_weights_ + b.intercepts_):
        np.testing.assert_array_equal(x, y)


WEIGHTS = np.where(np.arange(len(Y_IRIS)) % 3 == 0, 3.0, 0.5)


def test_pipeline_teacher_gets_the_weights_through_its_last_step():
    """Item 7b: Pipeline.fit refused ``sample_weight=``; it goes to the last step."""
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    student = _student(pipe).fit(X_IRIS, Y_IRIS, sample_weight=WEIGHTS)
    fitted = clone(pipe).fit(X_IRIS, Y_IRIS, logisticregression__sample_weight=WEIGHTS)
    _same_student(student, _student(fitted).fit(X_IRIS, Y_IRIS, sample_weight=WEIGHTS))
    # Not as if fitted without them: the weights reached the teacher.
    unweighted = clone(pipe).fit(X_IRIS, Y_IRIS)
    assert not np.allclose(fitted.predict_proba(X_IRIS), unweighted.predict_proba(X_IRIS))


def test_pipeline_teacher_under_metadata_routing_gets_what_it_requests():
    with sklearn.config_context(enable_metadata_routing=True):
        logistic = LogisticRegression(max_iter=500).set_fit_request(sample_weight=True)
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False), logistic)
        student = _student(pipe).fit(X_IRIS, Y_IRIS, sample_weight=WEIGHTS)
        fitted = clone(pipe).fit(X_IRIS, Y_IRIS, sample_weight=WEIGHTS)
        _same_student(student, _student(fitted).fit(X_IRIS, Y_IRIS, sample_weight=WEIGHTS))


def test_teacher_without_sample_weight_is_fitted_without_and_says_so():
    """Item 7b: KNeighborsClassifier.fit takes no sample_weight (it raised TypeError)."""
    knn = KNeighborsClassifier()
    with pytest.warns(UserWarning, match="KNeighborsClassifier.fit takes no sample_weight"):
        student = _student(knn).fit(X_IRIS, Y_IRIS, sample_weight=WEIGHTS)
    fitted = clone(knn).fit(X_IRIS, Y_IRIS)
    _same_student(student, _student(fitted).fit(X_IRIS, Y_IRIS, sample_weight=WEIGHTS))
    # All-ones weights change nothing: no warning.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _student(knn).fit(X_IRIS, Y_IRIS, sample_weight=np.ones(len(Y_IRIS)))
    assert not [w for w in caught if "sample_weight" in str(w.message)]


def _fitted_state(model):
    return [a.copy() for a in model.bucket_weights_ + model.intercepts_]


@pytest.mark.parametrize(
    "before, after, how, match",
    [
        ({"solver": "lbfgs"}, {"solver": "adam"}, "fit", "solver is now 'adam'"),
        ({"solver": "lbfgs"}, {"solver": "sgd"}, "partial_fit", "solver is now 'sgd'"),
        ({"early_stopping": False}, {"early_stopping": True}, "fit", "early_stopping is now True"),
        ({"early_stopping": True}, {"early_stopping": False}, "fit", "early_stopping is now False"),
        (
            {"early_stopping": True, "solver": "sgd"},
            {"early_stopping": False},
            "partial_fit",
            "early_stopping is now False",
        ),
    ],
)
def test_warm_start_after_a_changed_solver_or_early_stopping_is_refused(before, after, how, match):
    """Item 7d: these crashed with an internal AttributeError or TypeError."""
    model = HashedMLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, **before)
    model.fit(X_IRIS, Y_IRIS)
    fitted = _fitted_state(model)
    model.set_params(warm_start=True, **after)
    with pytest.raises(ValueError, match=rf"{match}.*Set warm_start=False"):
        getattr(model, how)(X_IRIS, Y_IRIS)
    for a, b in zip(_fitted_state(model), fitted):
        np.testing.assert_array_equal(a, b)


def test_warm_start_between_stochastic_solvers_and_to_lbfgs_still_trains():
    model = HashedMLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    model.fit(X_IRIS, Y_IRIS)
    for solver in ("sgd", "adam", "lbfgs"):
        fitted = _fitted_state(model)
        model.set_params(warm_start=True, solver=solver).fit(X_IRIS, Y_IRIS)
        assert not np.array_equal(_fitted_state(model)[0], fitted[0])


@pytest.mark.parametrize("how", ["fit", "partial_fit"])
def test_changed_hash_seed_under_warm_start_is_refused_like_hashing(how):
    """Item 7d: a changed hash_seed was silently ignored, while hashing and sign_hash
    were refused; now every setting of the hash is."""
    model = HashedMLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, hash_seed=1)
    model.fit(X_IRIS, Y_IRIS)
    seeds, fitted = model.hash_seeds_.copy(), _fitted_state(model)
    model.set_params(warm_start=True, hash_seed=2)
    with pytest.raises(ValueError, match=r"hash_seed is now 2.*Set warm_start=False"):
        getattr(model, how)(X_IRIS, Y_IRIS)
    np.testing.assert_array_equal(model.hash_seeds_, seeds)
    for a, b in zip(_fitted_state(model), fitted):
        np.testing.assert_array_equal(a, b)
    # The same seed, or None (the seeds stay those drawn at the first fit), trains on.
    for hash_seed in (1, None):
        getattr(model.set_params(hash_seed=hash_seed), how)(X_IRIS, Y_IRIS)
        np.testing.assert_array_equal(model.hash_seeds_, seeds)
