"""Knowledge distillation: softened teacher targets and the student's mixed loss.

A student trained on a teacher's probabilities softened by a temperature ``T``
learns from how the teacher ranks the wrong classes ("dark knowledge", Hinton,
Vinyals and Dean, 2015). The loss is::

    (1 - a) * CE(y, p) + a * T**2 * CE(q_T, p_T)

with ``p = act(z)`` and ``p_T = act(z / T)`` the student's probabilities at
temperature 1 and ``T``, ``q_T`` the teacher's at ``T`` and ``a`` the weight
of the teacher. Its gradient with respect to the logits ``z`` is
``(1 - a) * (p - y) + a * T * (p_T - q_T)``: the ``T**2`` keeps the teacher's
share of the gradient independent of ``T``.
"""

import warnings

import numpy as np
import sklearn
from scipy.special import expit, softmax
from sklearn.pipeline import Pipeline
from sklearn.utils.metadata_routing import get_routing_for_object
from sklearn.utils.validation import has_fit_parameter

from . import _base


def soften(proba, temperature, out_activation):
    """The teacher's probabilities at ``temperature``.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_outputs)
        Class probabilities (softmax outputs) or, for logistic outputs, the
        probability of each output being 1.
    temperature : float
    out_activation : {"softmax", "logistic"}

    Returns
    -------
    soft : ndarray of float64, same shape
        ``softmax(log(proba) / T)``, or ``expit(logit(proba) / T)``.
    """
    proba = np.asarray(proba, dtype=np.float64)
    tiny = np.finfo(np.float64).tiny
    if out_activation == "softmax":
        return softmax(np.log(np.maximum(proba, tiny)) / temperature, axis=1)
    proba = np.clip(proba, tiny, 1 - np.finfo(np.float64).epsneg)
    return expit((np.log(proba) - np.log1p(-proba)) / temperature)


def mix_in_teacher(
    loss, delta, logits, soft_targets, temperature, weight, out_activation, loss_name, sample_weight
):
    """Turn the label loss and its output delta into the distillation ones.

    Takes NumPy or CuPy arrays (the training device's).

    Parameters
    ----------
    loss : float
        ``CE(y, p)``, the loss on the labels.
    delta : ndarray of shape (n_samples, n_outputs)
        ``p - y``, updated in place to the mixed gradient.
    logits : ndarray of shape (n_samples, n_outputs)
        The student's output before its output activation.
    soft_targets : ndarray of shape (n_samples, n_outputs)
        The teacher's probabilities at ``temperature`` (:func:`soften`).
    temperature, weight : float
    out_activation : {"softmax", "logistic"}
    loss_name : {"log_loss", "binary_log_loss"}
    sample_weight : ndarray of shape (n_samples,) or None

    Returns
    -------
    loss : float
        The mixed loss.
    """
    scaled = logits / logits.dtype.type(temperature)
    if out_activation == "softmax":
        soft_pred = _base.softmax(scaled)
    else:
        soft_pred = _base.logistic(scaled)
    soft_loss = _base.LOSS_FUNCTIONS[loss_name](soft_targets, soft_pred, sample_weight)
    delta *= delta.dtype.type(1 - weight)
    soft_pred -= soft_targets
    soft_pred *= soft_pred.dtype.type(weight * temperature)
    delta += soft_pred
    return (1 - weight) * loss + weight * temperature**2 * soft_loss


def teacher_fit_params(teacher, sample_weight):
    """The keyword arguments that give a teacher's ``fit`` the sample weights it takes.

    With metadata routing enabled, the weights go where the teacher requests
    them (``set_fit_request(sample_weight=True)``). Without it, a ``fit`` with a
    ``sample_weight`` parameter gets them, and a :class:`~sklearn.pipeline.Pipeline`
    passes them to its last step when that step takes them. A teacher that
    takes none is fitted without them, with a warning unless all weights are 1.
    """
    if sample_weight is None:
        return {}
    if sklearn.get_config()["enable_metadata_routing"]:
        if get_routing_for_object(teacher).consumes("fit", ["sample_weight"]):
            return {"sample_weight": sample_weight}
    elif has_fit_parameter(teacher, "sample_weight"):
        return {"sample_weight": sample_weight}
    elif isinstance(teacher, Pipeline):
        name, last = teacher.steps[-1]
        if hasattr(last, "fit") and has_fit_parameter(last, "sample_weight"):
            return {f"{name}__sample_weight": sample_weight}
    if not np.all(sample_weight == 1):
        warnings.warn(
            f"{type(teacher).__name__}.fit takes no sample_weight (or does not request it "
            "under metadata routing): the teacher is fitted without the sample weights, "
            "the network with them.",
            UserWarning,
            stacklevel=4,
        )
    return {}
