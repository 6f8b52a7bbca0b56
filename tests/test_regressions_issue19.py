"""Regression tests for the defects of issue 19, each failing on the code before its fix."""

import warnings

import numpy as np
from sklearn.datasets import load_iris

from sk_hashednets import HashedMLPClassifier

X_IRIS, Y_IRIS = load_iris(return_X_y=True)


def test_lbfgs_verbose_raises_no_deprecation_warning():
    """Item 3: ``disp`` is deprecated by SciPy 1.15; like scikit-learn, do not pass it."""
    clf = HashedMLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", verbose=True, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        clf.fit(X_IRIS, Y_IRIS)
    assert clf.n_iter_ >= 1 and np.isfinite(clf.loss_)
