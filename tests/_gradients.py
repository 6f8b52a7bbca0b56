"""A fitted hashed network's loss and gradient as a function of its packed parameters."""

import numpy as np

from sk_hashednets._kernels import get_backend


def loss_and_grad_function(est, X, Y, sample_weight, soft_targets=None):
    """``theta -> (loss, grad)`` through the estimator's own L-BFGS objective.

    ``Y`` and ``soft_targets`` are what training passes to ``_backprop``: the
    binarised labels and, for distillation, the teacher's soft targets.
    """
    layers = est._hashed_layers(get_backend("cpu"), X.dtype)
    activations = [X] + [None] * (est.n_layers_ - 1)
    deltas = [None] * (est.n_layers_ - 1)
    bucket_grads = [np.empty(k) for k in est.n_buckets_]
    intercept_grads = [np.empty(n) for n in est._layer_units_[1:]]

    def loss_grad(theta):
        return est._loss_grad_lbfgs(
            theta,
            X,
            Y,
            sample_weight,
            soft_targets,
            activations,
            deltas,
            bucket_grads,
            intercept_grads,
            layers,
        )

    return loss_grad
