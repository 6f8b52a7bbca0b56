"""Bad input, fed to both estimators at fit, partial_fit, predict and predict_proba.

The battery tries 449 bad-input cases (the parametrised test cases of this
module; ``test_docstring_counts_the_cases`` keeps the number honest): non-finite
values in X, y, classes and sample weights; wrong, zero and mismatched
feature counts; no samples, one sample and one class; string, boolean,
object and categorical labels; DataFrames with matching, renamed, reordered and
extra columns; every scipy sparse format; Fortran-ordered, strided, read-only
and memory-mapped arrays; integer, boolean and float16 input; malformed arrays;
invalid hashing, tiling, progress-bar and architecture parameters, bucket lists that
do not fit the network and dropout with a solver that cannot use it; and failed calls on fitted
models, which must leave the model exactly as it was.

Each case either works (finite predictions of the right shape and type, equal to
those of the equivalent clean input) or raises a ``ValueError`` / ``TypeError``
that names the parameter or the input. Where scikit-learn's ``MLPClassifier`` /
``MLPRegressor`` raises on the same input, the message must be scikit-learn's
(which says what to do where it can), with only the class name changed.
"""

import copy
import math
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier, MLPRegressor

from sk_hashednets import HashedMLPClassifier, HashedMLPRegressor

ESTIMATORS = {"clf": HashedMLPClassifier, "reg": HashedMLPRegressor}
REFERENCE = {HashedMLPClassifier: MLPClassifier, HashedMLPRegressor: MLPRegressor}

SMALL = {"hidden_layer_sizes": (4,), "max_iter": 2, "random_state": 0}
N_SAMPLES, N_FEATURES = 30, 3
CLASSES = np.array([0, 1, 2])


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------


def _is_classifier(Estimator):
    return issubclass(Estimator, ClassifierMixin)


def _data(Estimator, sparse_friendly=False):
    """Clean training data: 30 samples, 3 features; 3 classes or a real target."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_SAMPLES, N_FEATURES))
    if sparse_friendly:
        X[X < 0.3] = 0.0
    if _is_classifier(Estimator):
        return X, np.arange(N_SAMPLES) % 3
    return X, rng.standard_normal(N_SAMPLES)


def _new(Estimator, **params):
    return Estimator(**{**SMALL, **params})


def _partial_fit(est, X, y, **kwargs):
    if isinstance(est, ClassifierMixin):
        kwargs.setdefault("classes", CLASSES)
    return est.partial_fit(X, y, **kwargs)


def _fitted_on(Estimator, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _new(Estimator, **params).fit(X, y)


def _fitted(Estimator, **params):
    return _fitted_on(Estimator, *_data(Estimator), **params)


def _feed(Estimator, where, X, y=None, **kwargs):
    """Feed X (and y) to ``where`` of an Estimator; return what it returns.

    "fit" and "partial_fit" (a first call: the classifier gets ``classes=``)
    start from a new estimator; "partial_fit_after_fit", "warm_start_fit",
    "predict" and "predict_proba" from one fitted on clean data.
    """
    X_clean, y_clean = _data(Estimator)
    if y is None:
        y = y_clean
    if where == "fit":
        return _new(Estimator).fit(X, y, **kwargs)
    if where == "partial_fit":
        return _partial_fit(_new(Estimator), X, y, **kwargs)
    if where == "partial_fit_after_fit":
        return _partial_fit(_new(Estimator).fit(X_clean, y_clean), X, y, **kwargs)
    if where == "warm_start_fit":
        return _new(Estimator, warm_start=True).fit(X_clean, y_clean).fit(X, y, **kwargs)
    return getattr(_new(Estimator).fit(X_clean, y_clean), where)(X)


def _expect_error(Estimator, action, match, compare_with_sklearn=True):
    """``action(Estimator)`` raises ValueError or TypeError matching ``match``.

    Where scikit-learn's MLP raises a ValueError or TypeError on the same
    action, the message must be its own, up to the class name.
    """
    with pytest.raises((ValueError, TypeError), match=match) as ours:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # scikit-learn's type_of_target casts labels to int to test them.
            warnings.filterwarnings("ignore", "invalid value encountered in cast")
            action(Estimator)
    if not compare_with_sklearn:
        return
    reference = REFERENCE[Estimator]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            action(reference)
    except (ValueError, TypeError) as theirs:
        expected = str(theirs).replace(reference.__name__, Estimator.__name__)
        assert str(ours.value) == expected
        assert isinstance(ours.value, ValueError) == isinstance(theirs, ValueError)


def _outcome(action, Estimator):
    """What ``action(Estimator)`` does: its exception and the warnings it gives.

    Returns ``(exception type or None, message or None, warnings)``; the class
    name in messages is replaced by "ESTIMATOR", ConvergenceWarnings are left out.
    """
    name = Estimator.__name__
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            action(Estimator)
            error = (None, None)
        except Exception as exc:
            error = (type(exc), str(exc).replace(name, "ESTIMATOR"))
    given = sorted(
        (w.category.__name__, str(w.message).replace(name, "ESTIMATOR"))
        for w in caught
        if not issubclass(w.category, ConvergenceWarning)
    )
    return error + (given,)


def _check_predictions(est, X):
    """Finite predictions of the right shape, labels from ``classes_``."""
    pred = est.predict(X)
    if isinstance(est, ClassifierMixin):
        assert pred.shape == (X.shape[0],)
        assert pred.dtype == est.classes_.dtype
        assert set(pred.tolist()) <= set(est.classes_.tolist())
        proba = est.predict_proba(X)
        assert proba.shape == (X.shape[0], max(2, len(est.classes_)))
        assert np.isfinite(proba).all()
        assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    else:
        assert pred.shape == (X.shape[0],)
        assert np.isfinite(pred).all()
    return pred


def _predictions(est, X):
    if isinstance(est, ClassifierMixin):
        return est.predict(X), est.predict_proba(X)
    return (est.predict(X),)


def _assert_identical(a, b, path="value"):
    """a and b are equal bit for bit: arrays in dtype, shape and every value."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), path
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert_array_equal(a, b, err_msg=path, strict=True)
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_identical(u, v, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for name in a:
            _assert_identical(a[name], b[name], f"{path}[{name!r}]")
    else:
        assert type(a) is type(b), path
        assert a == b or (a != a and b != b), path


def _assert_same_model(a, b):
    """Same buckets, intercepts and predictions, bit for bit."""
    _assert_identical(a.bucket_weights_, b.bucket_weights_, "bucket_weights_")
    _assert_identical(a.intercepts_, b.intercepts_, "intercepts_")
    X, _ = _data(type(a))
    _assert_identical(_predictions(a, X), _predictions(b, X), "predictions")


def _ids(key, *parts):
    return "-".join([key, *map(str, parts)])


def _wheres(key, wheres):
    """Drop predict_proba for the regressor."""
    return [w for w in wheres if not (key == "reg" and w == "predict_proba")]


# ----------------------------------------------------------------------------
# Non-finite values
# ----------------------------------------------------------------------------

NON_FINITE_X_CASES = [
    pytest.param(key, where, value, container, id=_ids(key, where, name, container))
    for key in ESTIMATORS
    for where in _wheres(key, ["fit", "partial_fit", "predict", "predict_proba"])
    for name, value in [("nan", np.nan), ("inf", np.inf)]
    for container in ["dense", "csr"]
]


@pytest.mark.parametrize("key, where, value, container", NON_FINITE_X_CASES)
def test_non_finite_X(key, where, value, container):
    Estimator = ESTIMATORS[key]
    X, _ = _data(Estimator)
    X[3, 1] = value
    if container == "csr":
        X = sp.csr_matrix(X)
    match = "NaN" if np.isnan(value) else "infinity"
    _expect_error(Estimator, lambda E: _feed(E, where, X), match)


def _y_with(Estimator, kind):
    _, y = _data(Estimator)
    if kind == "nan":
        return np.where(np.arange(N_SAMPLES) == 4, np.nan, y.astype(float))
    if kind == "inf":
        return np.where(np.arange(N_SAMPLES) == 4, np.inf, y.astype(float))
    if kind == "nan_object":
        labels = np.array(["a", "b", "c"], dtype=object)[np.arange(N_SAMPLES) % 3]
        labels[4] = np.nan
        return labels
    raise ValueError(kind)


NON_FINITE_Y_CASES = [
    pytest.param(key, where, kind, id=_ids(key, where, kind))
    for key in ESTIMATORS
    for where in ["fit", "partial_fit"]
    for kind in (["nan", "inf", "nan_object"] if key == "clf" else ["nan", "inf"])
]


@pytest.mark.parametrize("key, where, kind", NON_FINITE_Y_CASES)
def test_non_finite_y(key, where, kind):
    Estimator = ESTIMATORS[key]
    X, _ = _data(Estimator)
    y = _y_with(Estimator, kind)
    kwargs = {}
    if kind == "nan_object" and where == "partial_fit":
        kwargs["classes"] = np.array(["a", "b", "c"], dtype=object)
    match = "infinity" if kind == "inf" else "NaN"
    # The classifier's partial_fit checks y before reading its labels: its
    # message names y ("Input y contains NaN."), where scikit-learn's says
    # "Input contains NaN." or, for object labels, crashes with a TypeError.
    ours_differ = Estimator is HashedMLPClassifier and where == "partial_fit"
    if ours_differ:
        match = "Input (y )?contains " + match
    _expect_error(
        Estimator,
        lambda E: _feed(E, where, X, y, **kwargs),
        match,
        compare_with_sklearn=not ours_differ,
    )


@pytest.mark.parametrize("value", [pytest.param(np.nan, id="nan"), pytest.param(np.inf, id="inf")])
def test_non_finite_classes_at_partial_fit(value):
    X, y = _data(HashedMLPClassifier)
    classes = np.array([0.0, 1.0, 2.0, value])
    match = "NaN" if np.isnan(value) else "infinity"
    _expect_error(
        HashedMLPClassifier,
        lambda E: _new(E).partial_fit(X, y, classes=classes),
        match,
    )


# ----------------------------------------------------------------------------
# Feature counts, empty input, one sample, one class
# ----------------------------------------------------------------------------

FEATURE_COUNT_CASES = [
    pytest.param(key, where, n_features, container, id=_ids(key, where, n_features, container))
    for key in ESTIMATORS
    for where in _wheres(
        key, ["predict", "predict_proba", "partial_fit_after_fit", "warm_start_fit"]
    )
    for n_features in [2, 4]
    for container in ["dense", "csr"]
]


@pytest.mark.parametrize("key, where, n_features, container", FEATURE_COUNT_CASES)
def test_wrong_number_of_features(key, where, n_features, container):
    Estimator = ESTIMATORS[key]
    X = np.random.default_rng(1).standard_normal((N_SAMPLES, n_features))
    if container == "csr":
        X = sp.csr_matrix(X)
    match = f"X has {n_features} features, but {Estimator.__name__} is expecting 3 features"
    _expect_error(Estimator, lambda E: _feed(E, where, X), match)


EMPTY_CASES = [
    pytest.param(key, where, shape, id=_ids(key, where, f"{shape[0]}x{shape[1]}"))
    for key in ESTIMATORS
    for where in _wheres(key, ["fit", "partial_fit", "predict", "predict_proba"])
    for shape in [(0, N_FEATURES), (N_SAMPLES, 0)]
]


@pytest.mark.parametrize("key, where, shape", EMPTY_CASES)
def test_empty_input(key, where, shape):
    Estimator = ESTIMATORS[key]
    _, y = _data(Estimator)
    X = np.empty(shape)
    y = y[: shape[0]]
    match = "0 sample" if shape[0] == 0 else "0 feature"
    _expect_error(Estimator, lambda E: _feed(E, where, X, y), match)


@pytest.mark.parametrize(
    "key, where",
    [
        pytest.param(key, where, id=_ids(key, where))
        for key in ESTIMATORS
        for where in ["fit", "partial_fit", "predict"]
    ],
)
def test_one_sample(key, where):
    """One sample trains (a classifier then has one class) and predicts, as in sklearn."""
    Estimator = ESTIMATORS[key]
    X, y = _data(Estimator)
    if where == "predict":
        est = _fitted(Estimator)
        single = _check_predictions(est, X[:1])
        batch = _predictions(est, X)
        assert_array_equal(single, batch[0][:1])
        if key == "clf":
            assert_allclose(est.predict_proba(X[:1]), batch[1][:1], rtol=1e-12)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if where == "fit":
            est = _new(Estimator).fit(X[:1], y[:1])
        else:
            est = _partial_fit(_new(Estimator), X[:1], y[:1])
    _check_predictions(est, X)
    assert est.n_features_in_ == N_FEATURES
    if key == "clf" and where == "fit":
        assert_array_equal(est.classes_, y[:1])
        assert_array_equal(est.predict(X), np.full(N_SAMPLES, y[0]))


ONE_CLASS_CASES = [
    pytest.param("fit", np.full(N_SAMPLES, 7), None, id="fit-int"),
    pytest.param("fit", np.full(N_SAMPLES, "only"), None, id="fit-str"),
    pytest.param("partial_fit", np.full(N_SAMPLES, 7), [7], id="partial_fit-int"),
]


@pytest.mark.parametrize("where, y, classes", ONE_CLASS_CASES)
def test_one_class_behaves_as_sklearn(where, y, classes):
    """MLPClassifier fits one class, predicts it and gives two probability columns."""
    X, _ = _data(HashedMLPClassifier)
    models = []
    for Estimator in (HashedMLPClassifier, MLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = _new(Estimator)
            est = est.fit(X, y) if where == "fit" else est.partial_fit(X, y, classes=classes)
        models.append(est)
    ours, theirs = models
    _assert_identical(ours.classes_, theirs.classes_, "classes_")
    _assert_identical(ours.predict(X), theirs.predict(X), "predict")
    assert_array_equal(ours.predict(X), np.full(N_SAMPLES, y[0]))
    assert ours.predict_proba(X).shape == theirs.predict_proba(X).shape
    _check_predictions(ours, X)


@pytest.mark.parametrize("where", ["fit", "partial_fit"])
def test_constant_regression_target(where):
    X, _ = _data(HashedMLPRegressor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = _feed(HashedMLPRegressor, where, X, np.full(N_SAMPLES, 3.0))
    _check_predictions(est, X)


# ----------------------------------------------------------------------------
# Labels
# ----------------------------------------------------------------------------


def _labels(kind):
    index = np.arange(N_SAMPLES) % 3
    if kind == "str":
        return np.array(["cat", "dog", "emu"])[index], np.array(["cat", "dog", "emu"])
    if kind == "bool":
        return index == 0, np.array([False, True])
    if kind == "object":
        names = np.array(["cat", "dog", "emu"], dtype=object)
        return names[index], names
    if kind == "category":
        pd = pytest.importorskip("pandas")
        names = np.array(["cat", "dog", "emu"])
        return pd.Series(pd.Categorical(names[index])), names
    raise ValueError(kind)


@pytest.mark.parametrize("where", ["fit", "partial_fit"])
@pytest.mark.parametrize("kind", ["str", "bool", "object", "category"])
def test_label_types(kind, where):
    """Labels come back as labels: the values of y, in MLPClassifier's dtype."""
    X, _ = _data(HashedMLPClassifier)
    y, classes = _labels(kind)
    models = []
    for Estimator in (HashedMLPClassifier, MLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = _new(Estimator)
            est = est.fit(X, y) if where == "fit" else est.partial_fit(X, y, classes=classes)
        models.append(est)
    ours, theirs = models
    _assert_identical(ours.classes_, theirs.classes_, "classes_")
    pred = _check_predictions(ours, X)
    assert pred.dtype == theirs.predict(X).dtype
    assert set(pred.tolist()) <= set(np.asarray(classes).tolist())
    # The same model as with the labels encoded as 0, 1, 2.
    codes = np.searchsorted(ours.classes_, np.asarray(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = _new(HashedMLPClassifier)
        coded = (
            est.fit(X, codes)
            if where == "fit"
            else est.partial_fit(X, codes, classes=np.arange(len(classes)))
        )
    _assert_identical(ours.bucket_weights_, coded.bucket_weights_, "bucket_weights_")
    assert_array_equal(pred, ours.classes_[coded.predict(X)])


# ----------------------------------------------------------------------------
# DataFrames
# ----------------------------------------------------------------------------


def _frame(X, columns=("a", "b", "c")):
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(X, columns=list(columns))


def _dataframe_action(scenario):
    def action(Estimator):
        X, y = _data(Estimator)
        df = _frame(X)
        if scenario == "renamed":
            return _new(Estimator).fit(df, y).predict(df.rename(columns={"a": "z"}))
        if scenario == "reordered":
            return _new(Estimator).fit(df, y).predict(df[["b", "a", "c"]])
        if scenario == "extra_column":
            return _new(Estimator).fit(df, y).predict(df.assign(d=1.0))
        if scenario == "missing_column":
            return _new(Estimator).fit(df, y).predict(df[["a", "b"]])
        if scenario == "array_after_frame":
            return _new(Estimator).fit(df, y).predict(X)
        if scenario == "frame_after_array":
            return _new(Estimator).fit(X, y).predict(df)
        if scenario == "partial_fit_renamed":
            return _partial_fit(_new(Estimator).fit(df, y), df.rename(columns={"a": "z"}), y)
        if scenario == "mixed_column_types":
            return _new(Estimator).fit(_frame(X, ["a", 1, "c"]), y)
        raise ValueError(scenario)

    return action


DATAFRAME_SCENARIOS = [
    "renamed",
    "reordered",
    "extra_column",
    "missing_column",
    "array_after_frame",
    "frame_after_array",
    "partial_fit_renamed",
    "mixed_column_types",
]


@pytest.mark.parametrize("scenario", DATAFRAME_SCENARIOS)
@pytest.mark.parametrize("key", list(ESTIMATORS))
def test_dataframe_columns_checked_as_sklearn(key, scenario):
    """Same exception or warning, with the same message, as scikit-learn's MLP."""
    Estimator = ESTIMATORS[key]
    action = _dataframe_action(scenario)
    ours = _outcome(action, Estimator)
    theirs = _outcome(action, REFERENCE[Estimator])
    assert ours[0] is theirs[0]
    assert ours[1:] == theirs[1:]
    # Each scenario is bad: it raises, or it warns about feature names.
    assert ours[0] is not None or any("feature names" in msg for _, msg in ours[2])
    if ours[0] is not None:
        assert issubclass(ours[0], (ValueError, TypeError))
        assert "feature" in ours[1].lower()


@pytest.mark.parametrize("column_names", ["str", "int"])
@pytest.mark.parametrize("key", list(ESTIMATORS))
def test_dataframe_trains_as_its_array(key, column_names):
    """A DataFrame gives the model of its values; string column names are kept."""
    Estimator = ESTIMATORS[key]
    X, y = _data(Estimator)
    columns = ["a", "b", "c"] if column_names == "str" else [0, 1, 2]
    df = _frame(X, columns)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        from_frame = _new(Estimator).fit(df, y)
        frame_predictions = _predictions(from_frame, df)
    from_array = _fitted_on(Estimator, X, y)
    if column_names == "str":
        assert_array_equal(from_frame.feature_names_in_, columns)
    else:
        assert not hasattr(from_frame, "feature_names_in_")
    assert from_frame.n_features_in_ == N_FEATURES
    _assert_identical(from_frame.bucket_weights_, from_array.bucket_weights_, "bucket_weights_")
    _assert_identical(from_frame.intercepts_, from_array.intercepts_, "intercepts_")
    _assert_identical(frame_predictions, _predictions(from_array, X), "predictions")


# ----------------------------------------------------------------------------
# Sparse matrices and arrays
# ----------------------------------------------------------------------------

SPARSE_CONTAINERS = [
    getattr(sp, f"{fmt}_{kind}")
    for fmt in ["csr", "csc", "coo", "bsr", "lil", "dok", "dia"]
    for kind in ["matrix", "array"]
    if hasattr(sp, f"{fmt}_{kind}")
]


@pytest.mark.parametrize("container", SPARSE_CONTAINERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("key", list(ESTIMATORS))
def test_sparse_formats_match_dense(key, container):
    """Every scipy format trains and predicts as its dense twin, to float rounding."""
    Estimator = ESTIMATORS[key]
    X, y = _data(Estimator, sparse_friendly=True)
    X_sparse = container(X)
    assert_array_equal(X_sparse.toarray(), X)

    dense = _fitted_on(Estimator, X, y)
    sparse = _fitted_on(Estimator, X_sparse, y)
    sparse_params = sparse.bucket_weights_ + sparse.intercepts_
    for a, b in zip(sparse_params, dense.bucket_weights_ + dense.intercepts_):
        assert a.dtype == b.dtype == np.float64
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for ours, expected in zip(_predictions(dense, X_sparse), _predictions(dense, X)):
        if ours.dtype.kind == "f":
            assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)
        else:
            assert_array_equal(ours, expected)

    _partial_fit(sparse, X_sparse, y)
    _partial_fit(dense, X, y)
    for a, b in zip(sparse.bucket_weights_, dense.bucket_weights_):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------
# Memory layouts and dtypes
# ----------------------------------------------------------------------------


def _layout(name, X, tmp_path):
    if name == "fortran":
        return np.asfortranarray(X)
    if name == "strided_view":
        big = np.zeros((2 * X.shape[0], 3 * X.shape[1]))
        big[::2, ::3] = X
        return big[::2, ::3]
    if name == "read_only":
        X = X.copy()
        X.flags.writeable = False
        return X
    if name == "memmap_npy":
        np.save(tmp_path / "X.npy", X)
        return np.load(tmp_path / "X.npy", mmap_mode="r")
    if name == "memmap_raw":
        path = tmp_path / "X.raw"
        X.tofile(path)
        return np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)
    raise ValueError(name)


LAYOUTS = ["fortran", "strided_view", "read_only", "memmap_npy", "memmap_raw"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("key", list(ESTIMATORS))
def test_memory_layouts_give_identical_models(key, layout, tmp_path):
    Estimator = ESTIMATORS[key]
    X, y = _data(Estimator)
    X_layout = _layout(layout, X, tmp_path)
    assert_array_equal(X_layout, X)
    assert not X_layout.flags.c_contiguous or not X_layout.flags.writeable

    reference = _fitted_on(Estimator, X, y)
    model = _fitted_on(Estimator, X_layout, y)
    _assert_same_model(model, reference)
    _assert_identical(_predictions(reference, X_layout), _predictions(reference, X))

    _partial_fit(model, X_layout, y)
    _partial_fit(reference, X, y)
    _assert_same_model(model, reference)


def _typed(dtype):
    rng = np.random.default_rng(2)
    if dtype == np.float16:
        return rng.standard_normal((N_SAMPLES, N_FEATURES)).astype(np.float16)
    if dtype == np.bool_:
        return rng.standard_normal((N_SAMPLES, N_FEATURES)) > 0
    if dtype == np.uint8:
        return rng.integers(0, 12, (N_SAMPLES, N_FEATURES)).astype(np.uint8)
    return rng.integers(-6, 7, (N_SAMPLES, N_FEATURES)).astype(dtype)


@pytest.mark.parametrize(
    "dtype", [np.int32, np.int64, np.uint8, np.float16, np.bool_], ids=lambda d: d.__name__
)
@pytest.mark.parametrize("key", list(ESTIMATORS))
def test_input_dtypes_train_in_float64(key, dtype):
    """As scikit-learn's MLP: anything but float32 and float64 becomes float64."""
    Estimator = ESTIMATORS[key]
    _, y = _data(Estimator)
    X = _typed(dtype)
    X64 = X.astype(np.float64)
    model = _fitted_on(Estimator, X, y)
    reference = _fitted_on(Estimator, X64, y)
    assert all(w.dtype == np.float64 for w in model.bucket_weights_ + model.intercepts_)
    _assert_same_model(model, reference)
    _assert_identical(_predictions(reference, X), _predictions(reference, X64))
    _partial_fit(model, X, y)
    _partial_fit(reference, X64, y)
    _assert_same_model(model, reference)


# ----------------------------------------------------------------------------
# Malformed arrays and sample weights
# ----------------------------------------------------------------------------


def _malformed_action(case):
    def action(Estimator):
        X, y = _data(Estimator)
        if case == "X_1d":
            return _new(Estimator).fit(X[:, 0], y)
        if case == "X_3d":
            return _new(Estimator).fit(X[:, :, None], y)
        if case == "X_complex":
            return _new(Estimator).fit(X + 1j, y)
        if case == "X_strings":
            return _new(Estimator).fit(np.full(X.shape, "a"), y)
        if case == "predict_1d":
            return _new(Estimator).fit(X, y).predict(X[0])
        if case == "y_too_short":
            return _new(Estimator).fit(X, y[:-3])
        if case == "y_strings":
            return _new(Estimator).fit(X, np.where(y > 0, "up", "down"))
        if case == "y_continuous":
            return _new(Estimator).fit(X, np.linspace(0, 1, N_SAMPLES))
        if case.startswith("sample_weight_"):
            where, kind = case.removeprefix("sample_weight_").split("-")
            sample_weight = np.ones(N_SAMPLES)
            if kind == "nan":
                sample_weight[2] = np.nan
            elif kind == "negative":
                sample_weight[2] = -1.0
            elif kind == "zero":
                sample_weight[:] = 0.0
            else:
                sample_weight = sample_weight[:-1]
            return _feed(Estimator, where, X, y, sample_weight=sample_weight)
        raise ValueError(case)

    return action


MALFORMED_CASES = [
    pytest.param(key, case, match, id=_ids(key, case))
    for key in ESTIMATORS
    for case, match in [
        ("X_1d", "Expected 2D array"),
        ("X_3d", "dim 3"),
        ("X_complex", "Complex data"),
        ("X_strings", "could not convert string to float"),
        ("predict_1d", "Expected 2D array"),
        ("y_too_short", "inconsistent numbers of samples"),
        ("sample_weight_fit-nan", "sample_weight"),
        ("sample_weight_fit-negative", "sample_weight"),
        ("sample_weight_fit-zero", "(?i)sample.weight"),
        ("sample_weight_fit-short", "sample_weight"),
        ("sample_weight_partial_fit-nan", "sample_weight"),
        ("sample_weight_partial_fit-negative", "sample_weight"),
        ("y_continuous" if key == "clf" else "y_strings", None),
    ]
]


@pytest.mark.parametrize("key, case, match", MALFORMED_CASES)
def test_malformed_input(key, case, match):
    Estimator = ESTIMATORS[key]
    if case == "y_continuous":
        match = "Unknown label type"
    if case == "y_strings":
        # MLPRegressor fails deep in its loss (numpy's UFuncTypeError); ours
        # says which input cannot be converted.
        match = "could not convert string to float"
        _expect_error(Estimator, _malformed_action(case), match, compare_with_sklearn=False)
        return
    _expect_error(Estimator, _malformed_action(case), match)


# ----------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------

INVALID_PARAMETERS = [
    ("compression", 0),
    ("compression", -0.5),
    ("compression", 1.5),
    ("compression", np.nan),
    ("compression", np.inf),
    ("n_buckets", 0),
    ("n_buckets", -3),
    ("n_buckets", 2.5),
    ("n_buckets", True),
    ("n_buckets", [1000, 2]),
    ("n_buckets", [3]),
    ("n_buckets", [3, 2, 1]),
    ("n_buckets", [2.5, 2]),
    ("n_buckets", [0, 2]),
    ("hidden_layer_sizes", 0),
    ("hidden_layer_sizes", -4),
    ("hidden_layer_sizes", (0,)),
    ("hidden_layer_sizes", (-2,)),
    ("hidden_layer_sizes", (4, 0)),
    ("hidden_layer_sizes", (4.5,)),
    ("hidden_layer_sizes", 4.5),
    ("hidden_layer_sizes", "abc"),
    ("device", "tpu"),
    ("device", "CPU"),
    ("device", None),
    ("dropout", 1),
    ("dropout", 1.0),
    ("dropout", -0.1),
    ("dropout", np.nan),
    ("input_dropout", 1.0),
    ("input_dropout", -0.1),
    ("input_dropout", np.nan),
    ("hash_seed", -1),
    ("hash_seed", 2**32),
    ("hash_seed", 2**64),
    ("hash_seed", 3.0),
    ("sign_hash", 1),
    ("sign_hash", 0),
    ("sign_hash", "yes"),
    ("sign_hash", None),
    ("hashing", "blocks"),
    ("hashing", "Element"),
    ("hashing", None),
    ("max_tile_bytes", 0),
    ("max_tile_bytes", -1),
    ("max_tile_bytes", 1.5),
    ("progress_bar", 1),
    ("progress_bar", "yes"),
]

INVALID_PARAMETER_CASES = [
    pytest.param(key, where, name, value, id=_ids(key, where, f"{name}={value!r}"))
    for key in ESTIMATORS
    for where in ["fit", "partial_fit"]
    for name, value in INVALID_PARAMETERS
]


@pytest.mark.parametrize("key, where, name, value", INVALID_PARAMETER_CASES)
def test_invalid_parameters(key, where, name, value):
    """An invalid parameter is a ValueError or TypeError that names it."""
    Estimator = ESTIMATORS[key]
    X, y = _data(Estimator)
    est = _new(Estimator, **{name: value})
    with pytest.raises((ValueError, TypeError), match=re.escape(name)):
        if where == "fit":
            est.fit(X, y)
        else:
            _partial_fit(est, X, y)
    assert not hasattr(est, "bucket_weights_")


@pytest.mark.parametrize(
    "n_buckets, match",
    [
        ([10], "n_buckets has 1 entries but the network has 2 layers"),
        ([10, 0], r"n_buckets\[1\] must be an integer >= 1"),
        ([10, 2.5], r"n_buckets\[1\] must be an integer >= 1"),
        ([10, 31], r"n_buckets\[1\]=31 exceeds the 30 virtual weights of layer 1"),
    ],
)
def test_bad_n_buckets_lists(n_buckets, match):
    X, y = make_classification(n_samples=40, n_features=20, random_state=0)
    with pytest.raises(ValueError, match=match):
        HashedMLPClassifier(hidden_layer_sizes=(30,), n_buckets=n_buckets).fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"compression": 0}, "compression"),
        ({"compression": 1.5}, "compression"),
        ({"n_buckets": 0}, "n_buckets"),
        ({"hidden_layer_sizes": (10, 0)}, "hidden_layer_sizes"),
        ({"device": "tpu"}, "device"),
        ({"dropout": 1.0}, "dropout"),
        ({"hash_seed": -1}, "hash_seed"),
    ],
)
def test_bad_parameters_are_named(params, match):
    X, y = make_classification(n_samples=20, random_state=0)
    with pytest.raises(ValueError, match=match):
        HashedMLPClassifier(**params).fit(X, y)


@pytest.mark.parametrize("name", ["dropout", "input_dropout"])
def test_dropout_with_lbfgs_is_refused(name):
    X, y = make_classification(n_samples=20, random_state=0)
    with pytest.raises(ValueError, match=f"{name} > 0 needs a stochastic solver"):
        HashedMLPClassifier(solver="lbfgs", **{name: 0.2}).fit(X, y)


EDGE_PARAMETERS = [
    ("hidden_layer_sizes", ()),
    ("hidden_layer_sizes", np.array([4])),
    ("compression", 1.0),
    ("compression", 1e-300),
    ("n_buckets", 10**6),
    ("hash_seed", 0),
    ("hash_seed", 2**32 - 1),
    ("sign_hash", np.False_),
]


@pytest.mark.parametrize(
    "key, name, value",
    [
        pytest.param(key, name, value, id=_ids(key, f"{name}={value!r}"))
        for key in ESTIMATORS
        for name, value in EDGE_PARAMETERS
    ],
)
def test_edge_parameters_work(key, name, value):
    """Valid extremes train and predict; () is a network without hidden layers, as in sklearn."""
    Estimator = ESTIMATORS[key]
    X, y = _data(Estimator)
    est = _fitted_on(Estimator, X, y, **{name: value})
    _check_predictions(est, X)
    virtual = [a * b for a, b in zip(est._layer_units_[:-1], est._layer_units_[1:])]
    if name == "hidden_layer_sizes":
        reference = _fitted_on(REFERENCE[Estimator], X, y, **{name: value})
        assert est.n_layers_ == reference.n_layers_
    elif name == "compression":
        assert est.n_buckets_ == [math.ceil(value * v) for v in virtual]
        assert all(k >= 1 for k in est.n_buckets_)
    elif name == "n_buckets":
        assert est.n_buckets_ == virtual
    elif name == "hash_seed":
        assert est.hash_seeds_.dtype == np.uint32
    else:
        assert est.sign_hash_ is False


# ----------------------------------------------------------------------------
# A failed call leaves the model as it was
# ----------------------------------------------------------------------------

FITTED_ATTRIBUTES = [
    "bucket_weights_",
    "intercepts_",
    "n_iter_",
    "t_",
    "loss_",
    "loss_curve_",
    "best_loss_",
    "classes_",
    "n_features_in_",
    "n_outputs_",
    "n_layers_",
    "n_buckets_",
    "hash_seeds_",
    "out_activation_",
    "device_",
]


def _failure(Estimator, case):
    """(parameters to set, call) of a call that must fail on a fitted model."""
    X, y = _data(Estimator)
    X_nan = X.copy()
    X_nan[5, 0] = np.nan
    X_inf = X.copy()
    X_inf[5, 0] = np.inf
    where, bad = case.split("-")
    params = {"warm_start": True} if where == "warm_start_fit" else {}
    if bad == "architecture":
        params["hidden_layer_sizes"] = (5,)
    if where == "warm_start_fit":

        def train(est, X_bad, y_bad, **kwargs):
            return est.fit(X_bad, y_bad, **kwargs)

    else:

        def train(est, X_bad, y_bad, **kwargs):
            return _partial_fit(est, X_bad, y_bad, **kwargs)

    calls = {
        "nan_X": lambda est: train(est, X_nan, y),
        "inf_X": lambda est: train(est, X_inf, y),
        "sparse_nan_X": lambda est: train(est, sp.csr_matrix(X_nan), y),
        "few_features": lambda est: train(est, X[:, :2], y),
        "many_features": lambda est: train(est, np.hstack([X, X]), y),
        "negative_sample_weight": lambda est: train(est, X, y, sample_weight=-np.ones(N_SAMPLES)),
        "architecture": lambda est: train(est, X, y),
        "new_class": lambda est: train(est, X, np.where(y == 2, 3, y)),
        "fewer_classes": lambda est: train(est, X, y % 2),
        "other_classes_arg": lambda est: est.partial_fit(X, y, classes=[0, 1, 2, 3]),
        "nan_y": lambda est: train(est, X, np.where(np.arange(N_SAMPLES) == 1, np.nan, y)),
        "two_outputs": lambda est: train(est, X, np.c_[y, y]),
        "diverging": lambda est: train(est, X * 1e300, y),
    }
    return params, calls[bad]


FAILURES = {
    "clf": [
        "partial_fit-nan_X",
        "partial_fit-inf_X",
        "partial_fit-sparse_nan_X",
        "partial_fit-few_features",
        "partial_fit-many_features",
        "partial_fit-negative_sample_weight",
        "partial_fit-new_class",
        "partial_fit-other_classes_arg",
        "warm_start_fit-nan_X",
        "warm_start_fit-few_features",
        "warm_start_fit-new_class",
        "warm_start_fit-fewer_classes",
        "warm_start_fit-architecture",
    ],
    "reg": [
        "partial_fit-nan_X",
        "partial_fit-inf_X",
        "partial_fit-sparse_nan_X",
        "partial_fit-few_features",
        "partial_fit-many_features",
        "partial_fit-negative_sample_weight",
        "partial_fit-nan_y",
        "partial_fit-two_outputs",
        "partial_fit-diverging",
        "warm_start_fit-nan_X",
        "warm_start_fit-few_features",
        "warm_start_fit-nan_y",
        "warm_start_fit-architecture",
        "warm_start_fit-diverging",
    ],
}


def _snapshot(est):
    X, _ = _data(type(est))
    state = {
        name: copy.deepcopy(getattr(est, name)) for name in FITTED_ATTRIBUTES if hasattr(est, name)
    }
    state["predictions"] = _predictions(est, X)
    return state


@pytest.mark.parametrize(
    "key, case",
    [pytest.param(key, case, id=_ids(key, case)) for key in ESTIMATORS for case in FAILURES[key]],
)
def test_failed_call_leaves_fitted_model_unchanged(key, case):
    """Every fitted attribute and prediction is as before, bit for bit, and
    training continues exactly as on a twin that never saw the failed call."""
    Estimator = ESTIMATORS[key]
    X, y = _data(Estimator)
    est = _fitted_on(Estimator, X, y, max_iter=3)
    original = est.get_params()
    params, call = _failure(Estimator, case)
    est.set_params(**params)
    twin = copy.deepcopy(est)
    before = _snapshot(est)

    with pytest.raises((ValueError, TypeError)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            call(est)

    after = _snapshot(est)
    assert before.keys() == after.keys()
    for name in before:
        _assert_identical(after[name], before[name], name)

    for model in (est, twin):
        model.set_params(**original)
        _partial_fit(model, X, y)
    _assert_same_model(est, twin)
    _assert_identical(_snapshot(est), _snapshot(twin), "continued training")


FIRST_CALL_FAILURES = [
    pytest.param(key, failure, check, id=_ids(key, failure, check))
    for key, failure in [("clf", "nan_X"), ("clf", "label_not_in_classes"), ("reg", "nan_X")]
    for check in ["unfitted", "retry"]
]


@pytest.mark.parametrize("key, failure, check", FIRST_CALL_FAILURES)
def test_failed_first_partial_fit_leaves_estimator_unfitted(key, failure, check):
    """After a failed first partial_fit the estimator is still unfitted: predict
    raises NotFittedError, and a corrected partial_fit gives a fresh model."""
    Estimator = ESTIMATORS[key]
    X, y = _data(Estimator)
    est = _new(Estimator)
    if failure == "nan_X":
        X_nan = X.copy()
        X_nan[0, 0] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            _partial_fit(est, X_nan, y)
    else:
        with pytest.raises(ValueError, match="classes"):
            est.partial_fit(X, y, classes=[0, 1])
    if check == "unfitted":
        with pytest.raises(NotFittedError):
            est.predict(X)
    else:
        _partial_fit(est, X, y)
        _assert_same_model(est, _partial_fit(_new(Estimator), X, y))


# ----------------------------------------------------------------------------
# The count in the module docstring
# ----------------------------------------------------------------------------


def _n_parametrised_cases():
    n = 0
    for name, obj in globals().items():
        marks = getattr(obj, "pytestmark", []) if name.startswith("test_") else []
        sizes = [len(mark.args[1]) for mark in marks if mark.name == "parametrize"]
        if sizes:
            n += math.prod(sizes)
    return n


def test_docstring_counts_the_cases():
    stated = int(re.search(r"tries (\d+) bad-input cases", __doc__).group(1))
    assert stated == _n_parametrised_cases()
