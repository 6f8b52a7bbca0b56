"""The inspection helpers: bucket counts exact, plots drawn from the fitted data."""

import sys

import matplotlib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.neural_network import MLPClassifier

from sk_hashednets import HashedMLPClassifier, HashedMLPRegressor, plotting
from sk_hashednets._kernels._hashing import hash_pairs

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y


@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("tile_bytes", [2**25, 8 * 37 * 3])
def test_bucket_counts_match_the_specification(iris, monkeypatch, hashing, tile_bytes):
    # A tile of 3 rows of 37 columns forces many tiles and a short last one.
    monkeypatch.setattr(plotting, "_COUNT_TILE_BYTES", tile_bytes)
    X, y = iris
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(37,), compression=1 / 5, hashing=hashing, max_iter=2, random_state=0
    ).fit(X, y)
    for layer in range(2):
        n_in, n_out = clf._layer_units_[layer], clf._layer_units_[layer + 1]
        i, j = np.meshgrid(np.arange(n_in), np.arange(n_out), indexing="ij")
        buckets, _ = hash_pairs(
            int(clf.hash_seeds_[layer]), i, j, int(clf.n_buckets_[layer]), hashing
        )
        expected = np.bincount(buckets.ravel(), minlength=clf.n_buckets_[layer])
        np.testing.assert_array_equal(plotting.bucket_counts(clf, layer), expected)


def test_bucket_usage_histogram_counts_every_bucket(iris):
    X, y = iris
    clf = HashedMLPRegressor(
        hidden_layer_sizes=(64,), compression=1 / 8, max_iter=2, random_state=0
    ).fit(X, y)
    ax = plotting.plot_bucket_usage(clf, layer=0)
    heights = [patch.get_height() for patch in ax.patches]
    counts = plotting.bucket_counts(clf, 0)
    assert sum(heights) == clf.n_buckets_[0]
    assert sum(h * v for v, h in enumerate(heights)) == counts.sum() == 4 * 64
    plt.close("all")


def test_loss_curve_plots_loss_and_validation_scores(iris):
    X, y = iris
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(16,), max_iter=30, early_stopping=True, random_state=0
    ).fit(X, y)
    fig, ax = plt.subplots()
    assert plotting.plot_loss_curve(clf, ax=ax) is ax
    np.testing.assert_allclose(ax.lines[0].get_ydata(), clf.loss_curve_)
    (score_ax,) = [other for other in fig.axes if other is not ax]
    np.testing.assert_allclose(score_ax.lines[0].get_ydata(), clf.validation_scores_)
    plt.close("all")

    no_validation = HashedMLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
    ax = plotting.plot_loss_curve(no_validation.fit(X, y))
    assert len(ax.figure.axes) == 1
    plt.close("all")


def test_clear_errors(iris, monkeypatch):
    X, y = iris
    with pytest.raises(NotFittedError):
        plotting.bucket_counts(HashedMLPClassifier())
    with pytest.raises(TypeError, match="Expected a HashedMLPClassifier"):
        plotting.bucket_counts(MLPClassifier(max_iter=5).fit(X, y))
    lbfgs = HashedMLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=5).fit(X, y)
    for layer in (-1, 2, 1.0, True, "0"):
        with pytest.raises(ValueError, match=r"layer must be an int in \[0, 2\)"):
            plotting.bucket_counts(lbfgs, layer)
    with pytest.raises(ValueError, match="solver='lbfgs'"):
        plotting.plot_loss_curve(lbfgs)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"sk_hashednets\[plot\]"):
        plotting.plot_bucket_usage(lbfgs)
