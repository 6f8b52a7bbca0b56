"""Inspection plots: training curves and how a layer's buckets are used.

The plots need matplotlib (``pip install "sk_hashednets[plot]"``);
:func:`bucket_counts` does not.
"""

from dataclasses import replace
from numbers import Integral

import numpy as np
from scipy.stats import binom
from sklearn.utils.validation import check_is_fitted

from ._kernels import get_backend
from ._layout import layer_hash
from ._multilayer_perceptron import BaseHashedMLP

__all__ = ["bucket_counts", "plot_bucket_usage", "plot_loss_curve"]

#: Rows of the bucket-index map materialised at a time by :func:`bucket_counts`.
_COUNT_TILE_BYTES = 2**25


def _check_fitted(estimator):
    """A fitted hashed estimator, or a clear error."""
    if not isinstance(estimator, BaseHashedMLP):
        raise TypeError(
            f"Expected a HashedMLPClassifier or HashedMLPRegressor, got {type(estimator).__name__}."
        )
    check_is_fitted(estimator)


def _check_layer(estimator, layer):
    """Fitted hashed estimator and a valid layer index, or a clear error."""
    _check_fitted(estimator)
    n_layers = len(estimator.bucket_weights_)
    if not isinstance(layer, Integral) or isinstance(layer, bool) or not 0 <= layer < n_layers:
        raise ValueError(
            f"layer must be an int in [0, {n_layers}) for this model's {n_layers} weight "
            f"layers (0 is the input layer's), got {layer!r}."
        )
    return int(layer)


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError('Plotting needs matplotlib: pip install "sk_hashednets[plot]".') from exc
    return plt


def bucket_counts(estimator, layer=0):
    """Number of virtual weights that share each bucket of a layer.

    Walks the layer's virtual matrix in row tiles (never all of it at once)
    and counts, for every bucket, the entries hashed into it.

    Parameters
    ----------
    estimator : HashedMLPClassifier or HashedMLPRegressor
        A fitted hashed network.
    layer : int, default=0
        Weight layer, 0 for the one after the input.

    Returns
    -------
    counts : ndarray of int64 of shape (n_buckets_[layer],)
        ``counts.sum()`` is the layer's number of virtual weights.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sk_hashednets import HashedMLPClassifier
    >>> from sk_hashednets.plotting import bucket_counts
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = HashedMLPClassifier(hidden_layer_sizes=(50,), compression=1/4, solver="lbfgs",
    ...                           random_state=0).fit(X, y)
    >>> counts = bucket_counts(clf, layer=0)
    >>> counts.shape, int(counts.sum())
    ((50,), 200)
    """
    layer = _check_layer(estimator, layer)
    n_in, n_out = estimator._layer_units_[layer], estimator._layer_units_[layer + 1]
    n_buckets = int(estimator.n_buckets_[layer])
    # With unit signs and w = 0, 1, ..., K - 1 the materialised matrix holds
    # each entry's bucket index, exactly (K < 2**32 < 2**53).
    index_weights = np.arange(n_buckets, dtype=np.float64)
    rows_per_tile = max(1, _COUNT_TILE_BYTES // (8 * n_out))
    tile = np.empty((min(rows_per_tile, n_in), n_out), dtype=np.float64)
    backend = get_backend("cpu")
    unsigned_hash = replace(layer_hash(estimator, layer), sign_hash=False)
    counts = np.zeros(n_buckets, dtype=np.int64)
    for row_start in range(0, n_in, rows_per_tile):
        rows = tile[: min(rows_per_tile, n_in - row_start)]
        backend.materialize_tile(unsigned_hash, index_weights, rows, row_start=row_start)
        counts += np.bincount(rows.ravel().astype(np.int64), minlength=n_buckets)
    return counts


def plot_bucket_usage(estimator, layer=0, ax=None):
    """Histogram of how many virtual weights each bucket of a layer carries.

    Next to it, the distribution expected if every virtual weight picked its
    bucket independently and uniformly (binomial with ``n_in * n_out`` trials
    and probability ``1 / K``): a hash that does its job matches it.

    Parameters
    ----------
    estimator : HashedMLPClassifier or HashedMLPRegressor
        A fitted hashed network.
    layer : int, default=0
        Weight layer, 0 for the one after the input.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure's axes if None.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from sk_hashednets import HashedMLPClassifier
    >>> from sk_hashednets.plotting import plot_bucket_usage
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = HashedMLPClassifier(hidden_layer_sizes=(50,), compression=1/4, solver="lbfgs",
    ...                           random_state=0).fit(X, y)
    >>> ax = plot_bucket_usage(clf, layer=1)
    >>> ax.get_xlabel()
    'virtual weights per bucket'
    """
    counts = bucket_counts(estimator, layer)
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots()
    values = np.arange(counts.max() + 2)
    observed = np.bincount(counts, minlength=values.size)
    ax.bar(values, observed, width=0.8, color="C0", label="buckets")
    expected = binom.pmf(values, counts.sum(), 1 / counts.size) * counts.size
    ax.plot(values, expected, "o-", color="C1", label="independent uniform hashing")
    ax.set_xlabel("virtual weights per bucket")
    ax.set_ylabel("number of buckets")
    ax.set_title(
        f"Layer {layer}: {counts.sum()} virtual weights in {counts.size} buckets "
        f"({estimator.hashing_} hashing)"
    )
    ax.legend()
    return ax


def plot_loss_curve(estimator, ax=None):
    """Training loss per epoch, and the validation score under early stopping.

    Parameters
    ----------
    estimator : HashedMLPClassifier or HashedMLPRegressor
        A model fitted with a stochastic solver ("sgd" or "adam"), which
        records ``loss_curve_``.
    ax : matplotlib Axes, default=None
        Where to draw the loss; a new figure's axes if None. The validation
        score, when there is one, goes on a twin axis at the right.

    Returns
    -------
    ax : matplotlib Axes
        The axes of the loss.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from sk_hashednets import HashedMLPClassifier
    >>> from sk_hashednets.plotting import plot_loss_curve
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = HashedMLPClassifier(hidden_layer_sizes=(16,), max_iter=50, early_stopping=True,
    ...                           random_state=0).fit(X, y)
    >>> ax = plot_loss_curve(clf)
    >>> len(ax.lines) == 1 and ax.get_xlabel() == "epoch"
    True
    """
    _check_fitted(estimator)
    if not hasattr(estimator, "loss_curve_"):
        raise ValueError(
            "loss_curve_ is recorded by the stochastic solvers only; this model was fitted "
            f"with solver={estimator.solver!r}. Fit with solver='adam' or 'sgd' to plot it."
        )
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots()
    epochs = np.arange(1, len(estimator.loss_curve_) + 1)
    (loss_line,) = ax.plot(epochs, estimator.loss_curve_, color="C0", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    handles = [loss_line]
    if getattr(estimator, "validation_scores_", None) is not None:
        score_ax = ax.twinx()
        (score_line,) = score_ax.plot(
            epochs, estimator.validation_scores_, color="C1", label="validation score"
        )
        score_ax.set_ylabel("validation score")
        handles.append(score_line)
    ax.legend(handles=handles, loc="center right")
    return ax
