"""Export to a dense scikit-learn twin (to_sklearn) and from there to ONNX."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, make_multilabel_classification, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.neural_network import MLPClassifier, MLPRegressor

from sk_hashednets import HashedMLPClassifier, HashedMLPRegressor


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_classifier_twin_predicts_the_same(digits, hashing, dtype):
    X, y = digits
    X = X.astype(dtype)
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(32, 16),
        compression=1 / 8,
        hashing=hashing,
        max_iter=20,
        early_stopping=True,
        random_state=0,
    ).fit(X, y)
    mlp = clf.to_sklearn()
    assert type(mlp) is MLPClassifier
    assert [W.shape for W in mlp.coefs_] == [(64, 32), (32, 16), (16, 10)]
    assert all(W.dtype == dtype for W in mlp.coefs_ + mlp.intercepts_)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(mlp.predict_proba(X), clf.predict_proba(X), rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(mlp.predict(X), clf.predict(X))
    assert mlp.score(X, y) == clf.score(X, y)
    # Parameters and history carried over; the twin owns its arrays.
    assert mlp.get_params()["hidden_layer_sizes"] == (32, 16)
    assert mlp.loss_curve_ == clf.loss_curve_ and mlp.n_iter_ == clf.n_iter_
    assert mlp.validation_scores_ == clf.validation_scores_
    mlp.intercepts_[0][:] = 0
    assert np.any(clf.intercepts_[0] != 0)


def test_multilabel_binary_and_string_labels_survive(digits):
    X, Y = make_multilabel_classification(n_samples=80, n_features=6, random_state=0)
    clf = HashedMLPClassifier(hidden_layer_sizes=(12,), max_iter=50, random_state=0).fit(X, Y)
    np.testing.assert_array_equal(clf.to_sklearn().predict(X), clf.predict(X))
    X, y = digits
    labels = np.where(y % 2 == 0, "even", "odd")
    clf = HashedMLPClassifier(hidden_layer_sizes=(12,), max_iter=20, random_state=0).fit(X, labels)
    mlp = clf.to_sklearn()
    np.testing.assert_array_equal(mlp.classes_, ["even", "odd"])
    np.testing.assert_array_equal(mlp.predict(X), clf.predict(X))


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_twin_predicts_the_same(loss):
    X, y = make_regression(n_samples=120, n_features=7, n_targets=2, random_state=0)
    y = np.abs(y) / 100 if loss == "poisson" else y / 100
    reg = HashedMLPRegressor(
        hidden_layer_sizes=(20,), loss=loss, compression=1 / 4, max_iter=30, random_state=0
    ).fit(X, y)
    mlp = reg.to_sklearn()
    assert type(mlp) is MLPRegressor and mlp.loss == loss
    np.testing.assert_allclose(mlp.predict(X), reg.predict(X), rtol=1e-12, atol=1e-12)


def test_feature_names_and_continued_training(digits):
    X, y = digits
    frame = pd.DataFrame(X[:300], columns=[f"pixel{k}" for k in range(64)])
    clf = HashedMLPClassifier(hidden_layer_sizes=(16,), max_iter=10, random_state=0)
    mlp = clf.fit(frame, y[:300]).to_sklearn()
    np.testing.assert_array_equal(mlp.feature_names_in_, frame.columns)
    with pytest.warns(UserWarning, match="feature names"):
        mlp.predict(X[:5])
    # The twin trains on as a dense network (with a fresh optimizer).
    before = [W.copy() for W in mlp.coefs_]
    mlp.partial_fit(frame, y[:300])
    assert not np.array_equal(before[0], mlp.coefs_[0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("early_stopping", [False, True])
def test_twin_pickle_holds_a_copy_of_the_weights_only_for_early_stopping(digits, early_stopping):
    # The best weights, which early stopping restores, are kept under early
    # stopping only (scikit-learn keeps them always but reads them only then),
    # so that the twin's pickle is its weights' size (it has no optimizer
    # state), not twice it.
    X, y = digits
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(1000,), max_iter=2, early_stopping=early_stopping, random_state=0
    )
    mlp = clf.fit(X, y).to_sklearn()
    weights = sum(a.nbytes for a in mlp.coefs_ + mlp.intercepts_)
    copies = len(pickle.dumps(mlp)) / weights
    assert (1.9 < copies < 2.1) if early_stopping else (0.9 < copies < 1.1)
    mlp.set_params(warm_start=True, max_iter=1)
    mlp.fit(X, y)  # the twin trains on either way


def test_export_refusals(digits):
    X, y = digits
    with pytest.raises(NotFittedError):
        HashedMLPClassifier().to_sklearn()
    clf = HashedMLPClassifier(hidden_layer_sizes=(16,), max_iter=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="more than max_bytes=1000"):
        clf.to_sklearn(max_bytes=1000)


def test_onnx_export_of_the_twin_matches_predict_proba(digits):
    skl2onnx = pytest.importorskip("skl2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from skl2onnx.common.data_types import FloatTensorType

    X, y = digits
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(64, 32), compression=1 / 16, max_iter=30, random_state=0
    ).fit(X, y)
    onx = skl2onnx.convert_sklearn(
        clf.to_sklearn(),
        initial_types=[("X", FloatTensorType([None, X.shape[1]]))],
        options={"zipmap": False},
    )
    session = onnxruntime.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    labels, proba = session.run(None, {"X": X})
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(labels, clf.predict(X))
