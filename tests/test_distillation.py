"""Knowledge distillation: the mixed loss, its gradient, and who fits the teacher."""

import io
import warnings

import numpy as np
import pytest
from _gradients import loss_and_grad_function
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neural_network import MLPClassifier

import sk_hashednets
from sk_hashednets import HashedMLPClassifier
from sk_hashednets._distillation import soften
from sk_hashednets._multilayer_perceptron import _pack


def _problem(kind, rng):
    X = rng.standard_normal((12, 5))
    if kind == "binary":
        return X, rng.integers(0, 2, 12)
    if kind == "multiclass":
        return X, np.arange(12) % 3
    return X, rng.integers(0, 2, (12, 3))


class FixedTeacher(ClassifierMixin, BaseEstimator):
    """A fitted teacher whose probabilities are drawn at random, per sample."""

    def __init__(self, n_outputs=3, seed=0):
        self.n_outputs = n_outputs
        self.seed = seed

    def fit(self, X, y):
        self.classes_ = np.unique(y) if np.ndim(y) == 1 else np.arange(np.shape(y)[1])
        return self

    def predict_proba(self, X):
        rng = np.random.default_rng(self.seed)
        p = rng.uniform(0.05, 1, (X.shape[0], self.n_outputs))
        return p / p.sum(axis=1, keepdims=True) if self.n_outputs > 2 else p


def _fitted(kind, temperature, weight, weighted=False):
    rng = np.random.default_rng(0)
    X, y = _problem(kind, rng)
    teacher = FixedTeacher(n_outputs=2 if kind == "binary" else 3).fit(X, y)
    est = HashedMLPClassifier(
        hidden_layer_sizes=(6,),
        activation="tanh",
        solver="lbfgs",
        alpha=0.1,
        max_iter=1,
        compression=0.5,
        teacher=teacher,
        distill_temperature=temperature,
        distill_weight=weight,
        random_state=1,
    )
    sample_weight = rng.uniform(0.5, 2.0, len(y)) if weighted else None
    est.fit(X, y, sample_weight=sample_weight)
    Y = est._label_binarizer.transform(y).astype(float)
    return est, X, Y, sample_weight


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("temperature", [1.0, 3.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_distillation_gradient_matches_central_differences(kind, temperature, weighted):
    est, X, Y, sample_weight = _fitted(kind, temperature, 0.3, weighted)
    Y, soft_targets = est._teacher_targets(X, Y, sample_weight, incremental=False)
    assert soft_targets.shape == (len(X), est.n_outputs_)
    loss_grad = loss_and_grad_function(est, X, Y, sample_weight, soft_targets)
    theta = _pack(est.bucket_weights_, est.intercepts_)
    _, grad = loss_grad(theta)
    eps = 1e-6
    numerical = np.array(
        [
            (loss_grad(theta + eps * e)[0] - loss_grad(theta - eps * e)[0]) / (2 * eps)
            for e in np.eye(len(theta))
        ]
    )
    assert np.linalg.norm(grad - numerical) / np.linalg.norm(numerical) < 1e-5


def test_at_temperature_one_distillation_is_training_on_mixed_targets():
    # (1 - a) CE(y, p) + a CE(q, p) = CE((1 - a) y + a q, p): same loss, same gradient.
    est, X, Y, _ = _fitted("multiclass", 1.0, 0.3)
    Y, q = est._teacher_targets(X, Y, None, incremental=False)
    theta = _pack(est.bucket_weights_, est.intercepts_)
    loss, grad = loss_and_grad_function(est, X, Y, None, q)(theta)
    plain = HashedMLPClassifier(**{**est.get_params(deep=False), "teacher": None})
    for name in (
        "n_outputs_",
        "n_layers_",
        "_layer_units_",
        "n_buckets_",
        "hash_seeds_",
        "sign_hash_",
        "hashing_",
        "hash_shards_",
        "hash_spec_version_",
        "out_activation_",
        "bucket_weights_",
        "intercepts_",
        "_bucket_indptr",
        "_intercept_indptr",
    ):
        setattr(plain, name, getattr(est, name))
    mixed_loss, mixed_grad = loss_and_grad_function(plain, X, 0.7 * Y + 0.3 * q, None)(theta)
    assert loss == pytest.approx(mixed_loss, rel=1e-12)
    np.testing.assert_allclose(grad, mixed_grad, rtol=1e-10, atol=1e-14)


def test_soften_matches_the_definition():
    p = np.array([[0.7, 0.2, 0.1], [1.0, 0.0, 0.0]])
    soft = soften(p, 2.0, "softmax")
    expected = np.sqrt(p) / np.sqrt(p).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(soft, expected, rtol=1e-12, atol=1e-150)  # 0 is clipped to tiny
    np.testing.assert_allclose(soften(p, 1.0, "softmax"), p, atol=1e-300)
    q = np.array([[0.9], [0.5], [0.0]])
    np.testing.assert_allclose(
        soften(q, 3.0, "logistic").ravel()[:2], [1 / (1 + (1 / 9) ** (1 / 3)), 0.5], rtol=1e-12
    )
    assert 0 < soften(q, 3.0, "logistic")[2, 0] < 1e-80


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:500] / 16).astype(np.float32), y[:500]


def test_weight_zero_is_training_without_a_teacher(digits):
    X, y = digits
    kwargs = {"hidden_layer_sizes": (16,), "max_iter": 5, "random_state": 0}
    plain = HashedMLPClassifier(**kwargs).fit(X, y)
    taught = HashedMLPClassifier(**kwargs, teacher=LogisticRegression(), distill_weight=0).fit(X, y)
    for a, b in zip(plain.bucket_weights_, taught.bucket_weights_):
        np.testing.assert_array_equal(a, b)
    assert plain.loss_curve_ == taught.loss_curve_


def test_divergence_with_a_teacher_names_the_distillation_settings(digits):
    X, y = digits
    student = HashedMLPClassifier(
        hidden_layer_sizes=(16,),
        solver="sgd",
        learning_rate_init=50.0,
        momentum=0.99,
        max_iter=20,
        random_state=0,
        teacher=LogisticRegression(max_iter=200),
        distill_temperature=20.0,
        distill_weight=0.9,
    )
    with pytest.warns(RuntimeWarning, match="overflow encountered|invalid value encountered"):
        with pytest.raises(ValueError, match=r"diverged.*distill_temperature \(now 0.9 \* 20.0\)"):
            student.fit(X * 100, y)
    assert not hasattr(student, "bucket_weights_")


def test_unfitted_teacher_is_cloned_and_fitted_a_fitted_one_used_as_is(digits):
    X, y = digits
    unfitted = MLPClassifier(hidden_layer_sizes=(32,), max_iter=50, random_state=0)
    HashedMLPClassifier(hidden_layer_sizes=(16,), max_iter=3, teacher=unfitted).fit(X, y)
    assert not hasattr(unfitted, "coefs_")  # the parameter is never fitted in place

    fitted = MLPClassifier(hidden_layer_sizes=(32,), max_iter=50, random_state=0).fit(X, y)
    before = [W.copy() for W in fitted.coefs_]
    clf = HashedMLPClassifier(hidden_layer_sizes=(16,), max_iter=3, teacher=fitted, random_state=0)
    clf.fit(X, y).partial_fit(X[:100], y[:100])
    assert all(np.array_equal(a, b) for a, b in zip(before, fitted.coefs_))
    # Learning from a (deliberately unsure) teacher moves the network towards its predictions.
    soft_teacher = LogisticRegression(C=0.01).fit(X, y)
    agree = {}
    for weight in (0.0, 1.0):
        student = HashedMLPClassifier(
            hidden_layer_sizes=(16,),
            max_iter=200,
            teacher=soft_teacher,
            distill_weight=weight,
            distill_temperature=1.0,
            random_state=0,
        ).fit(X, y)
        agree[weight] = np.abs(student.predict_proba(X) - soft_teacher.predict_proba(X)).mean()
    assert agree[1.0] < agree[0.0] / 3  # measured: 0.018 against 0.101


class RecordingTeacher(LogisticRegression):
    """Records the rows each clone is fitted on."""

    fits = []

    def fit(self, X, y, sample_weight=None):
        RecordingTeacher.fits.append(frozenset(map(bytes, np.asarray(X))))
        return super().fit(X, y)


def test_grid_search_refits_the_teacher_on_each_fold_only(digits):
    X, y = digits
    X, y = X[:200], y[:200]
    RecordingTeacher.fits = []
    cv = StratifiedKFold(n_splits=3)
    search = GridSearchCV(
        HashedMLPClassifier(
            hidden_layer_sizes=(8,), max_iter=3, teacher=RecordingTeacher(), random_state=0
        ),
        {"distill_weight": [0.2, 0.8]},
        cv=cv,
    ).fit(X, y)
    folds = [frozenset(map(bytes, X[train])) for train, _ in cv.split(X, y)]
    assert RecordingTeacher.fits[:6] == folds + folds
    assert RecordingTeacher.fits[6] == frozenset(map(bytes, X))  # the refit on all data
    assert search.best_params_["distill_weight"] in (0.2, 0.8)


def test_early_stopping_and_sample_weight_with_a_teacher(digits):
    X, y = digits
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(16,),
        max_iter=10,
        early_stopping=True,
        teacher=LogisticRegression(),
        random_state=0,
    ).fit(X, y, sample_weight=np.full(len(y), 2.0))
    assert len(clf.validation_scores_) == clf.n_iter_


def test_refusals(digits):
    X, y = digits
    with pytest.raises(ValueError, match="partial_fit needs a fitted teacher"):
        HashedMLPClassifier(teacher=LogisticRegression()).partial_fit(X, y, classes=range(10))
    other = LogisticRegression().fit(X, (y + 1) % 10 + 10)
    with pytest.raises(ValueError, match="teacher's classes .* differ"):
        HashedMLPClassifier(max_iter=2, teacher=other).fit(X, y)
    with pytest.raises(ValueError, match=r"returned shape \(500, 3\)"):
        HashedMLPClassifier(max_iter=2, teacher=_WrongShape()).fit(X, y)
    for name, value in [
        ("distill_temperature", 0),
        ("distill_temperature", -1.0),
        ("distill_weight", 1.5),
        ("distill_weight", -0.1),
        ("teacher", "mlp"),
        ("teacher", MLPClassifier),
    ]:
        with pytest.raises(ValueError, match=name):  # InvalidParameterError is one
            HashedMLPClassifier(max_iter=2, **{name: value}).fit(X, y)


class _WrongShape(FixedTeacher):
    """Has the right classes but gives 3 probabilities per sample for 10 classes."""


def test_persistence_keeps_the_student_not_the_teacher(digits):
    X, y = digits
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(8,), max_iter=3, teacher=LogisticRegression(), random_state=0
    ).fit(X, y)
    buffer = io.BytesIO()
    with pytest.warns(UserWarning, match="teacher=None"):
        sk_hashednets.save(clf, buffer)
    buffer.seek(0)
    loaded = sk_hashednets.load(buffer)
    assert loaded.teacher is None
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sk_hashednets.save(clf.set_params(teacher=None), io.BytesIO())
