"""The one list of fitted attributes: what a fit sets, documents, exports and saves."""

import io

import numpy as np
import pytest
from sklearn.datasets import load_iris

from sk_hashednets import HashedMLPClassifier, HashedMLPRegressor, load, save
from sk_hashednets._attributes import EXPORTED_ATTRIBUTES, FITTED_ATTRIBUTES, META_ATTRIBUTES

LISTED = {a.name for a in FITTED_ATTRIBUTES}


@pytest.fixture(scope="module")
def iris_frame():
    return load_iris(return_X_y=True, as_frame=True)


@pytest.mark.parametrize("Estimator", [HashedMLPClassifier, HashedMLPRegressor])
def test_a_fit_sets_exactly_the_listed_public_attributes(Estimator, iris_frame):
    X, y = iris_frame
    est = Estimator(hidden_layer_sizes=(5,), max_iter=2, random_state=0)
    with pytest.warns(Warning):  # not converged in 2 epochs
        est.fit(X, y)
    public = {name for name in vars(est) if name.endswith("_") and not name.startswith("_")}
    expected = {name for name in LISTED if not name.startswith("_")}
    if Estimator is HashedMLPRegressor:
        expected.discard("classes_")
    assert public == expected
    assert "_layer_units_" in vars(est)
    for attribute in FITTED_ATTRIBUTES:
        if attribute.doc is not None:
            assert f"\n    {attribute.name} : {attribute.type}\n" in Estimator.__doc__


def test_export_and_file_carry_the_listed_attributes(iris_frame):
    X, y = iris_frame
    clf = HashedMLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0)
    with pytest.warns(Warning):
        clf.fit(X, y)
    mlp = clf.to_sklearn()
    for name in EXPORTED_ATTRIBUTES:
        assert repr(getattr(mlp, name)) == repr(getattr(clf, name))
    buffer = io.BytesIO()
    save(clf, buffer)
    buffer.seek(0)
    loaded = load(buffer)
    for name in META_ATTRIBUTES:
        assert getattr(loaded, name) == pytest.approx(getattr(clf, name))
    np.testing.assert_array_equal(loaded.feature_names_in_, clf.feature_names_in_)
