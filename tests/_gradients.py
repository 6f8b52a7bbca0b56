"""A fitted hashed network's loss and gradient as a function of its packed parameters."""

from sk_hashednets._kernels import get_backend


def loss_and_grad_function(est, X, Y, sample_weight, soft_targets=None):
    """``theta -> (loss, grad)`` through the estimator's own L-BFGS objective.

    ``Y`` and ``soft_targets`` are what training passes to ``_backprop``: the
    binarised labels and, for distillation, the teacher's soft targets.
    """
    work = est._new_workspace(get_backend("cpu"), X.dtype)

    def loss_grad(theta):
        return est._loss_grad_lbfgs(theta, X, Y, sample_weight, soft_targets, work)

    return loss_grad
