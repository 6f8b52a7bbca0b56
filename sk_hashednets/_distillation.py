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

The classifier's ``teacher``, ``distill_temperature`` and ``distill_weight``
are read here and in the classifier only: a fit gets the teacher's soft
targets from :func:`teacher_targets` and passes them, as their own array, with
the labels through minibatches, shuffling and the validation split.
"""

import warnings

import numpy as np
import sklearn
from scipy.special import expit, softmax
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.metadata_routing import get_routing_for_object
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from . import _base


def teacher_targets(model, X, y, sample_weight, incremental):
    """The labels and the teacher's soft targets that a classifier trains on.

    Parameters
    ----------
    model : HashedMLPClassifier
        The student, with a ``teacher``, its classes and outputs set.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    y : ndarray of shape (n_samples, n_outputs)
        The binarised labels.
    sample_weight : ndarray of shape (n_samples,) or None
    incremental : bool
        Whether this is a ``partial_fit`` (which needs a fitted teacher).

    Returns
    -------
    y : ndarray of shape (n_samples, n_outputs)
        The labels, in the dtype of ``X``.
    soft_targets : ndarray of shape (n_samples, n_outputs)
        The teacher's probabilities softened by ``distill_temperature``
        (:func:`soften`), in the dtype of ``X``.
    """
    if isinstance(model.teacher, type):
        raise ValueError(
            f"teacher must be a classifier instance, got the class "
            f"{model.teacher.__name__}: pass {model.teacher.__name__}(...) instead."
        )
    teacher = _fitted_teacher(model, X, y, sample_weight, incremental)
    proba = _teacher_proba(model, teacher, X)
    soft = soften(proba, model.distill_temperature, model.out_activation_)
    return y.astype(X.dtype), soft.astype(X.dtype)


def _fitted_teacher(model, X, y, sample_weight, incremental):
    """The teacher as given if fitted, else a clone fitted on (X, y)."""
    try:
        check_is_fitted(model.teacher)
        return model.teacher
    except NotFittedError:
        if incremental:
            raise ValueError(
                "partial_fit needs a fitted teacher: it sees one block at a time, too "
                "little to fit one. Fit the teacher first and pass it fitted."
            ) from None
    labels = model._label_binarizer.inverse_transform(y)
    teacher = clone(model.teacher)
    return teacher.fit(X, labels, **teacher_fit_params(teacher, sample_weight))


def _teacher_proba(model, teacher, X):
    """The teacher's probabilities, one column per output of the network."""
    proba = teacher.predict_proba(X)
    if isinstance(proba, list):  # one (n, 2) array per label (multilabel)
        proba = np.column_stack([p[:, -1] for p in proba])
    proba = np.asarray(proba, dtype=np.float64)
    teacher_classes = getattr(teacher, "classes_", None)
    if (
        model._label_binarizer.y_type_ != "multilabel-indicator"
        and teacher_classes is not None
        and not np.array_equal(np.asarray(teacher_classes), model.classes_)
    ):
        raise ValueError(
            f"The teacher's classes {teacher_classes} differ from the training data's "
            f"{model.classes_}: fit the teacher on the same labels, or pass it unfitted."
        )
    if model.out_activation_ == "logistic" and model.n_outputs_ == 1:
        proba = proba[:, -1:]  # binary: the probability of the positive class
    if proba.shape != (X.shape[0], model.n_outputs_):
        raise ValueError(
            f"teacher.predict_proba returned shape {proba.shape}; distillation needs "
            f"{(X.shape[0], model.n_outputs_)}, one probability per class."
        )
    return proba


def divergence_advice(temperature, weight):
    """What to add, with a teacher, to the advice after a diverged fit."""
    # The teacher's term of the output gradient is up to weight * T per logit.
    return (
        " With a teacher, the output gradient reaches distill_weight * "
        f"distill_temperature (now {weight} * {temperature}) "
        "per logit: lower learning_rate_init in proportion, or lower either."
    )


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
    loss,
    delta,
    logits,
    soft_targets,
    temperature,
    weight,
    out_activation,
    loss_name,
    sample_weight,
    *,
    xp,
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
    xp : module
        The training backend's array module (NumPy or CuPy).

    Returns
    -------
    loss : float
        The mixed loss.
    """
    scaled = logits / logits.dtype.type(temperature)
    if out_activation == "softmax":
        soft_pred = _base.softmax(scaled, xp=xp)
    else:
        soft_pred = _base.logistic(scaled, xp=xp)
    soft_loss = _base.LOSS_FUNCTIONS[loss_name](soft_targets, soft_pred, sample_weight, xp=xp)
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
