"""Export of a fitted hashed MLP: its dense virtual matrices and scikit-learn's dense twin."""

import copy

import numpy as np
from sklearn.base import is_classifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.utils.validation import check_is_fitted

from ._attributes import EXPORTED_ATTRIBUTES
from ._kernels import get_backend


def virtual_coefs(model, max_bytes):
    """The dense virtual weight matrices of a fitted model (``BaseHashedMLP.virtual_coefs``)."""
    check_is_fitted(model)
    dtype = model.bucket_weights_[0].dtype
    units = model._layer_units_
    n_bytes = sum(a * b for a, b in zip(units[:-1], units[1:])) * dtype.itemsize
    if n_bytes > max_bytes:
        raise ValueError(
            f"The virtual matrices take {n_bytes} bytes, more than max_bytes="
            f"{max_bytes}. Raise max_bytes if you really want them in memory."
        )
    backend = get_backend("cpu")
    coefs = []
    for layer, w in zip(model._hashed_layers(backend, dtype), model.bucket_weights_):
        W = np.empty((layer.n_in, layer.n_out), dtype=dtype)
        backend.materialize_tile(layer.layer_hash, w, W)
        coefs.append(W)
    return coefs


def to_sklearn(model, max_bytes):
    """A scikit-learn MLP computing what a fitted model computes (``BaseHashedMLP.to_sklearn``)."""
    check_is_fitted(model)
    dense_class = MLPClassifier if is_classifier(model) else MLPRegressor
    params = model.get_params(deep=False)
    mlp = dense_class(**{name: copy.deepcopy(params[name]) for name in dense_class().get_params()})
    mlp.coefs_ = model.virtual_coefs(max_bytes=max_bytes)
    for name in EXPORTED_ATTRIBUTES:
        if hasattr(model, name):
            setattr(mlp, name, copy.deepcopy(getattr(model, name)))
    _dense_training_state(mlp)
    return mlp


def _dense_training_state(mlp):
    """Give a dense twin the private state scikit-learn's MLP reads when it trains on.

    scikit-learn sets it in ``_initialize``, which ``partial_fit`` and a warm
    start skip: the no-improvement counter (copied from the hashed model when
    it has one) and, under early stopping, the best weights so far, which it
    restores at the end of a fit. Those are the twin's own: the hashed model's
    fit ended on its best weights. scikit-learn keeps that copy whatever the
    setting but reads it only under early stopping; without it the twin keeps
    none, and its pickle is its weights' size, not twice it.
    """
    if not hasattr(mlp, "_no_improvement_count"):
        mlp._no_improvement_count = 0
    if mlp.early_stopping:
        mlp._best_coefs = [W.copy() for W in mlp.coefs_]
        mlp._best_intercepts = [b.copy() for b in mlp.intercepts_]
