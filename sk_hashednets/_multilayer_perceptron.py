"""Hashed multi-layer perceptrons: scikit-learn's MLP with hashed weight sharing.

The training loop is scikit-learn's (``sklearn/neural_network/_multilayer_perceptron.py``),
step for step and name for name. Only two things differ: a layer's weights are
read from its bucket vector through the hash (``HashedLayer.dot``), and its
weight gradient is summed back into the buckets (``HashedLayer.bucket_grad``).

The loop is written once for every device. It computes with the arrays of a
backend object (``_kernels.get_backend``): NumPy on the CPU, used in place;
CuPy on a GPU, where a fit copies the training state (buckets, intercepts,
optimizer moments) to the device when it starts and back to the host when it
ends, and the data once per fit (``_device_data``). Fitted attributes are
always NumPy arrays.

This module holds the training loop and the estimator classes. The network's
layout (layer sizes, bucket counts, hash seeds, the hashed layers) is in
``_layout``, export in ``_export``, the device orchestration in
``_device_data``, the teacher's soft targets in ``_distillation`` and the list
of fitted attributes in ``_attributes``.
"""

import copy
import math
import time
import warnings
from abc import ABC, abstractmethod
from contextlib import contextmanager, nullcontext
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
    is_classifier,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d, gen_batches, shuffle
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    validate_data,
)

from . import _export
from ._attributes import attributes_doc
from ._base import ACTIVATIONS, DERIVATIVES, LOSS_FUNCTIONS
from ._device_data import (
    DeviceMinibatches,
    device_memory_errors,
    to_device_rows,
    to_host_input,
    training_state_on,
)
from ._distillation import divergence_advice, mix_in_teacher, teacher_targets
from ._hashed_layer import DEFAULT_TILE_BYTES
from ._index_store import forget_indexes, kept_index_nbytes, kept_indexes
from ._inference import (
    DEFAULT_CACHE_BYTES,
    checked_rows,
    class_labels,
    forget_plan,
    plan_nbytes,
    prediction_plan,
    training,
)
from ._kernels import (
    HASH_SPEC_VERSION,
    HASHINGS,
    GradientFinish,
    _blas_pool,
    get_backend,
    resolve_device,
)
from ._kernels._free_cores import threads_for_free_cores
from ._layout import (
    draw_hash_seeds,
    fitted_hash_shards,
    hashed_layers,
    hidden_layer_sizes_list,
    resolve_hash_shards,
    resolve_n_buckets,
    warn_about_idle_shards,
)
from ._optimizers import AdamOptimizer, SGDOptimizer
from ._progress import check_available as check_progress_bar_available
from ._progress import lbfgs_display_options, lbfgs_progress_callback, progress_bar

_STOCHASTIC_SOLVERS = ["sgd", "adam"]


def _weighs_nothing(sample_weight):
    """Whether a minibatch's sample weights (NumPy or CuPy, or None) sum to zero."""
    return sample_weight is not None and not float(sample_weight.sum()) > 0


def _hash_seed_mismatch(model):
    """Why ``hash_seed`` cannot continue the fitted model's hash seeds, or None.

    An int must give the fitted ``hash_seeds_``; None (seeds drawn from
    ``random_state`` at the first fit, which a warm start does not redraw) keeps them.
    """
    if model.hash_seed is None:
        return None
    seeds = draw_hash_seeds(model.hash_seed, None, len(model.hash_seeds_))
    if np.array_equal(seeds, model.hash_seeds_):
        return None
    return (
        f"hash_seed is now {model.hash_seed}, which gives other hash seeds than the fitted "
        f"model's hash_seeds_ {model.hash_seeds_.tolist()}"
    )


def _training_record_mismatch(model):
    """Why a stochastic solver cannot continue the fitted model's training record, or None.

    L-BFGS keeps no loss curve nor no-improvement count, and the record of a fit
    with early stopping (validation scores, no best loss) is not the one without.
    """
    if model.solver not in _STOCHASTIC_SOLVERS:
        return None
    if not hasattr(model, "loss_curve_"):
        return (
            f"solver is now {model.solver!r}, but the model was fitted with 'lbfgs', which "
            "keeps no training record for a stochastic solver to continue"
        )
    fitted_early_stopping = model.validation_scores_ is not None
    if bool(model.early_stopping) != fitted_early_stopping:
        return (
            f"early_stopping is now {model.early_stopping}, but the model was fitted "
            f"with early_stopping={fitted_early_stopping}"
        )
    return None


#: Fitted attributes that are lists of numbers, which a call only appends to:
#: their copy is a new list of the same (immutable) items. Deep-copied, the
#: loss curve of a long stream of ``partial_fit`` calls (an item per call) cost
#: every call more: 6.5 ms at 10,000 calls.
_NUMBER_LISTS = frozenset({"loss_curve_", "validation_scores_"})


def _saved_copy(name, value):
    """A copy of one attribute that nothing the failed call did can have changed."""
    if name in _NUMBER_LISTS and isinstance(value, list):
        return list(value)
    return copy.deepcopy(value)


@contextmanager
def _unchanged_on_error(estimator):
    """Put the estimator's fitted state back as it was if the block raises.

    A failed ``fit``, ``partial_fit`` or warm start leaves a previously fitted
    model (or an unfitted one) exactly as it was. The state copied is buckets,
    intercepts and optimizer moments: small, never the virtual matrices. The
    bucket indexes kept between calls (``_index_store``) are dropped.
    """
    params = estimator.get_params(deep=False)
    saved = {
        name: _saved_copy(name, value)
        for name, value in vars(estimator).items()
        if name not in params
    }
    try:
        yield
    except Exception:
        forget_indexes(estimator)  # kept for a state that is gone
        for name in [n for n in vars(estimator) if n not in params]:
            delattr(estimator, name)
        vars(estimator).update(saved)
        raise


class _Workspace(NamedTuple):
    """The layers of one fit and the lists its steps fill in.

    ``activations`` and ``deltas`` are work lists of every layer; the
    gradients of each layer's buckets and intercepts are written into
    ``bucket_grads`` and ``intercept_grads``.
    """

    layers: list
    activations: list
    deltas: list
    bucket_grads: list
    intercept_grads: list


def _pack(bucket_weights, intercepts):
    """Pack the parameters into a single vector."""
    return np.hstack([p.ravel() for p in bucket_weights + intercepts])


def _unchanged(value):
    return value


class BaseHashedMLP(BaseEstimator, ABC):
    """Base class for hashed MLP classification and regression.

    Warning: This class should not be used directly. Use derived classes instead.
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "compression": [Interval(Real, 0, 1, closed="right")],
        "n_buckets": [None, Interval(Integral, 1, None, closed="left"), "array-like"],
        "hash_seed": [None, Interval(Integral, 0, 2**32 - 1, closed="both")],
        "sign_hash": ["boolean"],
        # Below 1 - 2**-17: the 16-bit mask's threshold round(rate * 2**16) stays < 2**16.
        "dropout": [Interval(Real, 0, 1 - 2**-17, closed="left")],
        "input_dropout": [Interval(Real, 0, 1 - 2**-17, closed="left")],
        "device": [StrOptions({"cpu", "cuda", "auto"})],
        "max_tile_bytes": [Interval(Integral, 1, None, closed="left")],
        "inference_cache_bytes": [Interval(Integral, 0, None, closed="left")],
        "hashing": [StrOptions(set(HASHINGS))],
        "hash_shards": [
            None,
            StrOptions({"auto"}),
            Interval(Integral, 1, 2**32 - 1, closed="both"),
        ],
        "keep_bucket_indexes": ["boolean"],
        "progress_bar": ["boolean"],
    }

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        max_fun,
        compression,
        n_buckets,
        hash_seed,
        sign_hash,
        dropout,
        input_dropout,
        device,
        max_tile_bytes,
        hashing,
        progress_bar,
        inference_cache_bytes,
        hash_shards,
        keep_bucket_indexes,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.compression = compression
        self.n_buckets = n_buckets
        self.hash_seed = hash_seed
        self.sign_hash = sign_hash
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.device = device
        self.max_tile_bytes = max_tile_bytes
        self.hashing = hashing
        self.hash_shards = hash_shards
        self.progress_bar = progress_bar
        self.inference_cache_bytes = inference_cache_bytes
        self.keep_bucket_indexes = keep_bucket_indexes

    def _teacher_targets(self, X, y, sample_weight, incremental):
        """Targets for training: ``y``, and a teacher's soft targets when distilling.

        Returns
        -------
        y : ndarray of shape (n_samples, n_outputs)
        soft_targets : ndarray of shape (n_samples, n_outputs) or None
            Carried, as their own array, through minibatches, shuffling and
            the validation split to :meth:`_backprop`; None without a teacher.
        """
        return y, None

    @abstractmethod
    def _loss_name(self):
        """Name of the training loss in ``LOSS_FUNCTIONS``."""

    # ------------------------------------------------------------------
    # Layers and export
    # ------------------------------------------------------------------

    def _hashed_layers(self, backend, dtype, training=False, index_store=None):
        """Views of the virtual matrices, built per call (``_layout.hashed_layers``)."""
        return hashed_layers(self, backend, dtype, training, index_store)

    def set_params(self, **params):
        """Set the parameters of this estimator; drops its prediction plan.

        Parameters
        ----------
        params : dict
            Estimator parameters, as keyword arguments.

        Returns
        -------
        self : estimator instance

        Examples
        --------
        >>> from sk_hashednets import HashedMLPClassifier
        >>> HashedMLPClassifier().set_params(inference_cache_bytes=0).inference_cache_bytes
        0
        """
        super().set_params(**params)
        forget_plan(self)
        forget_indexes(self)
        return self

    def memory_footprint(self):
        """Bytes that the fitted model holds in memory, between calls.

        Returns
        -------
        footprint : dict
            ``"parameters"``: the buckets and intercepts; ``"plan"``: what the
            prediction plan keeps (materialised virtual matrices within
            ``inference_cache_bytes``, hash tables, device copies), 0 before
            the first prediction and after ``fit``; ``"indexes"``: the bucket
            indexes that ``partial_fit`` (and ``fit`` under ``warm_start``)
            keeps for the next call (``docs/memory.md``), 0 after any other
            ``fit`` and after ``set_params``; ``"total"``: their sum. Optimizer
            state is not counted: it serves training only.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sk_hashednets import HashedMLPClassifier
        >>> X, y = load_digits(return_X_y=True)
        >>> clf = HashedMLPClassifier(hidden_layer_sizes=(256,), compression=1/8,
        ...                           max_iter=2, random_state=0).fit(X, y)
        >>> clf.memory_footprint()["plan"]
        0
        >>> _ = clf.predict(X[:1])
        >>> clf.memory_footprint()
        {'parameters': 21072, 'plan': 151552, 'indexes': 0, 'total': 172624}
        """
        check_is_fitted(self)
        parameters = sum(int(a.nbytes) for a in self.bucket_weights_ + self.intercepts_)
        plan, indexes = plan_nbytes(self), kept_index_nbytes(self)
        return {
            "parameters": parameters,
            "plan": plan,
            "indexes": indexes,
            "total": parameters + plan + indexes,
        }

    def virtual_coefs(self, max_bytes=2**30):
        """Materialise the dense virtual weight matrices.

        For inspection and export. The matrices are what the network computes
        with, but never stored: this allocates ``n_in * n_out`` floats per layer.

        Parameters
        ----------
        max_bytes : int, default=2**30
            Refuse (``ValueError``) to allocate more than this many bytes in all.

        Returns
        -------
        coefs : list of ndarray of shape (n_in, n_out)
            One virtual matrix per layer, ``coefs[i][r, c] = s * bucket_weights_[i][h]``.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sk_hashednets import HashedMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = HashedMLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0)
        >>> clf = clf.fit(X, y)
        >>> [W.shape for W in clf.virtual_coefs()]
        [(4, 8), (8, 3)]
        """
        return _export.virtual_coefs(self, max_bytes)

    def to_sklearn(self, max_bytes=2**30):
        """Export a fitted scikit-learn MLP that computes the same function.

        The dense twin is a :class:`~sklearn.neural_network.MLPClassifier` (or
        :class:`~sklearn.neural_network.MLPRegressor`) whose ``coefs_`` are the
        materialised virtual matrices (:meth:`virtual_coefs`) and whose
        intercepts, classes and training history are copies of this model's.
        It predicts what this model predicts, to float rounding, for
        deployments that expect scikit-learn's own class (or ONNX, through
        ``skl2onnx``). It is dense: it takes ``1 / compression`` times the
        memory of this model's buckets.

        Parameters
        ----------
        max_bytes : int, default=2**30
            Refuse (``ValueError``) to materialise more than this many bytes
            of virtual matrices.

        Returns
        -------
        mlp : MLPClassifier or MLPRegressor
            A fitted estimator with this model's architecture, activation and
            solver settings. The hashing parameters have no counterpart there.
            Its optimizer state is not exported: further ``partial_fit``
            calls, or a ``fit`` with ``warm_start=True``, train the dense
            matrices with a fresh optimizer.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from sk_hashednets import HashedMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = HashedMLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0)
        >>> mlp = clf.fit(X, y).to_sklearn()
        >>> type(mlp).__name__
        'MLPClassifier'
        >>> bool(np.allclose(mlp.predict_proba(X), clf.predict_proba(X)))
        True
        """
        return _export.to_sklearn(self, max_bytes)

    # ------------------------------------------------------------------
    # Forward and backward passes
    # ------------------------------------------------------------------

    def _forward_pass(self, activations, layer_inputs, dropout_masks, layers, keep_logits=False):
        """Forward pass that keeps every layer's activation, for training.

        ``activations[i]`` is layer i's output before dropout, ``layer_inputs[i]``
        what layer i multiplies (the activation after dropout), and
        ``dropout_masks[i]`` (or None) the scaled mask between the two. The
        output layer multiplies nothing: with ``keep_logits``, ``layer_inputs[-1]``
        keeps its logits (the output before the output activation), which
        distillation needs.
        """
        hidden_activation = ACTIVATIONS[self.activation]
        xp = layers[0].backend.xp
        last = self.n_layers_ - 2
        layer_inputs[0] = activations[0]
        if self.input_dropout > 0:
            mask = self._dropout_mask(activations[0].shape, self.input_dropout, layers[0].dtype)
            if sp.issparse(activations[0]):
                layer_inputs[0] = activations[0].multiply(mask).tocsr()
            else:
                layer_inputs[0] = activations[0] * layers[0].backend.to_device(mask)
        for i in range(self.n_layers_ - 1):
            activations[i + 1] = layers[i].dot(layer_inputs[i], self.bucket_weights_[i])
            activations[i + 1] += self.intercepts_[i]
            if i != last:
                hidden_activation(activations[i + 1], xp=xp)
                layer_inputs[i + 1] = activations[i + 1]
                if self.dropout > 0:
                    # Drawn on the host, by the RandomState, as on the CPU.
                    dropout_masks[i + 1] = layers[i].backend.to_device(
                        self._dropout_mask(activations[i + 1].shape, self.dropout, layers[i].dtype)
                    )
                    layer_inputs[i + 1] = activations[i + 1] * dropout_masks[i + 1]
        if keep_logits:
            layer_inputs[-1] = activations[-1].copy()
        ACTIVATIONS[self.out_activation_](activations[-1], xp=xp)
        return activations

    def _divergence_advice(self):
        """What to change after a diverged fit."""
        return (
            f"Lower learning_rate_init (now {self.learning_rate_init}), scale the input "
            "(e.g. with StandardScaler), or raise alpha."
        )

    def _dropout_mask(self, shape, rate, dtype):
        """Inverted-dropout mask, on the host: 0 with probability ``rate``, else 1 / (1 - rate).

        Drawn from 16 random bits an entry (``RandomState.bytes``: three times
        as fast as ``random_sample``, which matters once per layer and step), so
        the rate is rounded to a multiple of 2**-16; the scale uses the rounded
        rate, which keeps the mask's mean exactly 1.
        """
        threshold = round(rate * 2**16)
        bits = np.frombuffer(self._random_state.bytes(2 * math.prod(shape)), dtype="<u2")
        keep = bits.reshape(shape) >= threshold
        return keep.astype(dtype) * dtype.type(2**16 / (2**16 - threshold))

    def _forward_pass_fast(self, X, check_input=True):
        """Forward pass that keeps only the output, for prediction.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        check_input : bool, default=True
            Validate ``X``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_outputs)
            On the host, whatever the device.
        """
        if check_input:
            # The common case is checked without the generic machinery (``_inference``).
            X_checked = checked_rows(self, X)
            if X_checked is None:
                X_checked = validate_data(
                    self,
                    to_host_input(X),
                    accept_sparse=["csr", "csc"],
                    dtype=(np.float64, np.float32),
                    reset=False,
                )
            X = X_checked
        backend = get_backend(resolve_device(self.device))
        with device_memory_errors(backend, self.max_tile_bytes, self.batch_size):
            # Prepared once per fitted state and reused (``_inference``).
            return prediction_plan(self, lambda: backend).forward(X)

    def _compute_loss_grad(self, layer, sw_sum, layer_input, work):
        """Gradient of the loss with respect to one layer's buckets and intercepts."""
        layers, deltas = work.layers, work.deltas
        bucket_grads, intercept_grads = work.bucket_grads, work.intercept_grads
        # The L2 penalty's gradient and the division, written with the sums.
        finish = GradientFinish(self.bucket_weights_[layer], self.alpha, sw_sum)
        layers[layer].bucket_grad(layer_input, deltas[layer], bucket_grads[layer], finish)
        intercept_grads[layer] = deltas[layer].sum(axis=0) / sw_sum

    def _backprop(self, X, y, sample_weight, soft_targets, work):
        """Loss and its gradients with respect to every bucket and intercept.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        y : ndarray of shape (n_samples, n_outputs)
        sample_weight : ndarray of shape (n_samples,) or None
        soft_targets : ndarray of shape (n_samples, n_outputs) or None
            A teacher's softened probabilities, when distilling.
        work : _Workspace
            The layers, and the lists filled in: the gradients go into
            ``work.bucket_grads`` and ``work.intercept_grads``.

        Returns
        -------
        loss : float
        bucket_grads, intercept_grads : list of ndarray
        """
        layers, activations, deltas = work.layers, work.activations, work.deltas
        n_samples = X.shape[0]
        activations[0] = X
        layer_inputs = [None] * len(activations)
        dropout_masks = [None] * len(activations)
        activations = self._forward_pass(
            activations, layer_inputs, dropout_masks, layers, keep_logits=soft_targets is not None
        )

        loss_func_name = self._loss_name()
        if loss_func_name == "log_loss" and self.out_activation_ == "logistic":
            loss_func_name = "binary_log_loss"
        xp = layers[0].backend.xp
        loss = LOSS_FUNCTIONS[loss_func_name](y, activations[-1], sample_weight, xp=xp)
        # Canonical link: d loss / d z_out = act(z_out) - y for softmax with
        # cross-entropy, logistic with binary cross-entropy, identity with
        # squared error and exp with Poisson deviance.
        last = self.n_layers_ - 2
        deltas[last] = activations[-1] - y
        if soft_targets is not None:
            loss = self._mix_in_teacher(
                loss,
                deltas[last],
                layer_inputs[-1],
                soft_targets,
                loss_func_name,
                sample_weight,
                xp,
            )

        # L2 penalty on the stored buckets, the network's actual parameters. On a
        # device the squared norms stay there: float() would wait for it per layer.
        to_scalar = float if xp is np else _unchanged
        values = sum(to_scalar(xp.dot(w, w)) for w in self.bucket_weights_)
        sw_sum = n_samples if sample_weight is None else sample_weight.sum()
        loss += (0.5 * self.alpha) * values / sw_sum
        if sample_weight is not None:
            deltas[last] *= sample_weight.reshape(-1, 1)

        self._compute_loss_grad(last, sw_sum, layer_inputs[last], work)
        inplace_derivative = DERIVATIVES[self.activation]
        for i in range(last, 0, -1):
            deltas[i - 1] = layers[i].dot_transposed(
                deltas[i], self.bucket_weights_[i], reuse_tile=True
            )
            if dropout_masks[i] is not None:
                deltas[i - 1] *= dropout_masks[i]
            inplace_derivative(activations[i], deltas[i - 1])
            self._compute_loss_grad(i - 1, sw_sum, layer_inputs[i - 1], work)
        return loss, work.bucket_grads, work.intercept_grads

    # ------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------

    def _initialize(self, y, layer_units, dtype):
        """Set every fitted attribute and draw the initial parameters."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self._layer_units_ = list(layer_units)

        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"

        self.n_buckets_ = resolve_n_buckets(self.n_buckets, self.compression, layer_units)
        self.hash_seeds_ = draw_hash_seeds(self.hash_seed, self._random_state, self.n_layers_ - 1)
        self.sign_hash_ = bool(self.sign_hash)
        self.hashing_ = self.hashing
        self.hash_shards_ = resolve_hash_shards(self.hash_shards, layer_units, self.n_buckets_)
        self.hash_spec_version_ = HASH_SPEC_VERSION

        self.bucket_weights_ = []
        self.intercepts_ = []
        for i in range(self.n_layers_ - 1):
            w, b = self._init_buckets(layer_units[i], layer_units[i + 1], self.n_buckets_[i], dtype)
            self.bucket_weights_.append(w)
            self.intercepts_.append(b)

        n_biases = sum(layer_units[1:])
        self.n_virtual_params_ = (
            sum(a * b for a, b in zip(layer_units[:-1], layer_units[1:])) + n_biases
        )
        self.n_stored_params_ = sum(self.n_buckets_) + n_biases

        if self._keeps_best_parameters():
            self._best_bucket_weights = [w.copy() for w in self.bucket_weights_]
            self._best_intercepts = [b.copy() for b in self.intercepts_]

        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _init_buckets(self, fan_in, fan_out, n_buckets, dtype):
        """Glorot-uniform buckets: each virtual weight ``+-w[h]`` gets Glorot's law."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        init_bound = np.sqrt(factor / (fan_in + fan_out))
        buckets = self._random_state.uniform(-init_bound, init_bound, n_buckets)
        intercepts = self._random_state.uniform(-init_bound, init_bound, fan_out)
        return buckets.astype(dtype, copy=False), intercepts.astype(dtype, copy=False)

    def _check_continuation(self, layer_units):
        """A warm start or partial_fit must keep the architecture it started with."""
        if list(layer_units) != self._layer_units_:
            raise ValueError(
                f"The network's layer sizes are now {list(layer_units)}, but the fitted "
                f"model has {self._layer_units_}. Set warm_start=False (or call fit "
                "instead of partial_fit) to train a new network."
            )
        n_buckets = resolve_n_buckets(self.n_buckets, self.compression, layer_units)
        if n_buckets != self.n_buckets_:
            raise ValueError(
                f"The bucket counts are now {n_buckets}, but the fitted model has "
                f"{self.n_buckets_}. Set warm_start=False (or call fit instead of "
                "partial_fit) to train a new network."
            )
        if self.hashing != self.hashing_:
            raise ValueError(
                f"hashing is now {self.hashing!r}, but the model was fitted with "
                f"hashing={self.hashing_!r}. Set warm_start=False to train a new network."
            )
        hash_shards = resolve_hash_shards(self.hash_shards, layer_units, self.n_buckets_)
        if hash_shards != fitted_hash_shards(self):
            raise ValueError(
                f"hash_shards={self.hash_shards!r} now gives {hash_shards} shards per layer, "
                f"but the model was fitted with {fitted_hash_shards(self)}. Set warm_start=False "
                "to train a new network."
            )
        if bool(self.sign_hash) != self.sign_hash_:
            raise ValueError(
                f"sign_hash is now {self.sign_hash}, but the model was fitted with "
                f"sign_hash={self.sign_hash_}. Set warm_start=False to train a new network."
            )
        mismatch = _hash_seed_mismatch(self) or _training_record_mismatch(self)
        if mismatch:
            raise ValueError(
                f"{mismatch}. Set warm_start=False (or call fit instead of partial_fit) "
                "to train a new network."
            )

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden_layer_sizes = hidden_layer_sizes_list(self.hidden_layer_sizes)
        for name in ("dropout", "input_dropout"):
            if getattr(self, name) > 0 and self.solver == "lbfgs":
                raise ValueError(
                    f"{name} > 0 needs a stochastic solver: L-BFGS cannot minimise a "
                    f"randomly changing loss. Use solver='adam' or 'sgd', or {name}=0."
                )
        device = resolve_device(self.device)
        backend = get_backend(device)
        check_progress_bar_available(self.progress_bar)

        first_pass = not hasattr(self, "bucket_weights_") or (
            not self.warm_start and not incremental
        )
        X, y, sample_weight = map(to_host_input, (X, y, sample_weight))
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sp.issparse(X) and X.format != "csr":
            X = X.tocsr()  # row batches of CSR are cheap; CSC is for column tiles
        if not first_pass:
            # Training continues in the dtype it started in.
            X = X.astype(self.bucket_weights_[0].dtype, copy=False)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=X.dtype, ensure_non_negative=True
            )
            if not sample_weight.sum() > 0:
                raise ValueError("sample_weight must have a positive sum.")

        if y.ndim == 1:
            y = y.reshape((-1, 1))
        layer_units = [X.shape[1]] + hidden_layer_sizes + [y.shape[1]]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        else:
            self._check_continuation(layer_units)
        warn_about_idle_shards(self, X, first_pass)
        self.device_ = device
        y, soft_targets = self._teacher_targets(X, y, sample_weight, incremental)
        cpu_threads = threads_for_free_cores() if device == "cpu" else nullcontext()
        # Opt-in (SK_HASHEDNETS_BLAS_POOL=1). After cpu_threads, which may leave
        # BLAS on one thread (no sections then).
        blas_pool = (
            _blas_pool.blas_sections_on_pool(
                _blas_pool.enabled()
                and _blas_pool.worth_a_pool(self._step_rows(X.shape[0]), layer_units)
            )
            if device == "cpu"
            else nullcontext()
        )

        with (
            training(self),
            device_memory_errors(backend, self.max_tile_bytes, self.batch_size),
            training_state_on(self, backend),
            kept_indexes(
                self, keep=(incremental or self.warm_start) and self.keep_bucket_indexes
            ) as indexes,
            cpu_threads,
            blas_pool,
        ):
            work = self._new_workspace(backend, X.dtype, training=True, index_store=indexes)
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(X, y, sample_weight, soft_targets, work, incremental)
            else:
                self._fit_lbfgs(X, y, sample_weight, soft_targets, work)

        if not all(np.isfinite(p).all() for p in self.bucket_weights_ + self.intercepts_):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may "
                "contain large values and need to be preprocessed (e.g. with "
                "StandardScaler), or learning_rate_init may be too large."
            )
        return self

    def _keeps_best_parameters(self):
        """Whether the model keeps a copy of its best parameters so far.

        Only early stopping reads it, restoring it at the end of a stochastic
        fit; otherwise no copy is kept in memory, nor in a pickle.
        """
        return bool(self.early_stopping) and self.solver in _STOCHASTIC_SOLVERS

    def _step_rows(self, n_samples):
        """Rows of a training step's products: the minibatch, or every sample for L-BFGS."""
        if self.solver == "lbfgs":
            return n_samples
        if self.batch_size == "auto":
            return min(200, n_samples)
        return min(self.batch_size, n_samples)

    def _new_workspace(self, backend, dtype, training=False, index_store=None):
        """The layers of a fit on ``backend`` and its work lists (``_Workspace``)."""
        units = self._layer_units_
        return _Workspace(
            layers=self._hashed_layers(backend, dtype, training, index_store),
            activations=[None] * len(units),
            deltas=[None] * (len(units) - 1),
            bucket_grads=[backend.empty(k, dtype) for k in self.n_buckets_],
            intercept_grads=[backend.empty(n, dtype) for n in units[1:]],
        )

    def _fit_lbfgs(self, X, y, sample_weight, soft_targets, work):
        backend = work.layers[0].backend  # the layers carry the fit's backend
        if not backend.is_host:
            # L-BFGS evaluates the whole training set at every step: copy it once.
            X, y = to_device_rows(backend, X), to_device_rows(backend, y)
            if sample_weight is not None:
                sample_weight = to_device_rows(backend, sample_weight)
            if soft_targets is not None:
                soft_targets = to_device_rows(backend, soft_targets)
        self._bucket_indptr = []
        self._intercept_indptr = []
        start = 0
        for k in self.n_buckets_:
            self._bucket_indptr.append((start, start + k))
            start += k
        for n in self._layer_units_[1:]:
            self._intercept_indptr.append((start, start + n))
            start += n

        packed = _pack(
            [backend.to_host(w) for w in self.bucket_weights_],
            [backend.to_host(b) for b in self.intercepts_],
        )
        options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        options.update(lbfgs_display_options(self.verbose))
        args = (X, y, sample_weight, soft_targets, work)
        with progress_bar(self.progress_bar, self.max_iter, "L-BFGS", "iter") as bar:
            opt_res = scipy.optimize.minimize(
                self._loss_grad_lbfgs,
                packed,
                method="L-BFGS-B",
                jac=True,
                options=options,
                args=args,
                callback=None if bar is None else lbfgs_progress_callback(bar),
            )
        self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
        self.loss_ = opt_res.fun
        self._unpack(opt_res.x.astype(X.dtype, copy=False), backend)  # float32 stays float32

    def _unpack(self, packed, backend):
        """Set the parameters, on the backend's device, from the host vector ``packed``."""
        for i in range(self.n_layers_ - 1):
            start, end = self._bucket_indptr[i]
            self.bucket_weights_[i] = backend.to_device(np.ascontiguousarray(packed[start:end]))
            start, end = self._intercept_indptr[i]
            self.intercepts_[i] = backend.to_device(packed[start:end])

    def _loss_grad_lbfgs(self, packed, X, y, sample_weight, soft_targets, work):
        backend = work.layers[0].backend
        self._unpack(packed.astype(X.dtype, copy=False), backend)
        loss, bucket_grads, intercept_grads = self._backprop(
            X, y, sample_weight, soft_targets, work
        )
        grad = _pack(
            [backend.to_host(g) for g in bucket_grads],
            [backend.to_host(g) for g in intercept_grads],
        )
        return backend.to_host(loss), grad.astype(np.float64)

    def _fit_stochastic(self, X, y, sample_weight, soft_targets, work, incremental):
        params = self.bucket_weights_ + self.intercepts_
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._new_optimizer(self.solver, params, xp=work.layers[0].backend.xp)

        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            (X_train, y_train, sample_weight_train, soft_targets_train), val = (
                self._validation_split(
                    [X, y, sample_weight, soft_targets], y if should_stratify else None
                )
            )
            X_val, y_val, sample_weight_val, _ = val
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        else:
            X_train, y_train, sample_weight_train = X, y, sample_weight
            soft_targets_train = soft_targets
            X_val = y_val = sample_weight_val = None

        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is "
                    "going to be clipped",
                    stacklevel=4,
                )
            batch_size = np.clip(self.batch_size, 1, n_samples)
        train_arrays = [X_train, y_train, sample_weight_train, soft_targets_train]
        backend = work.layers[0].backend
        device_batches = None
        if not backend.is_host:
            device_batches = DeviceMinibatches(backend, train_arrays, batch_size)

        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                epoch_start = time.perf_counter()
                if self.shuffle:
                    sample_idx = shuffle(sample_idx, random_state=self._random_state)

                accumulated_loss = 0.0
                desc = "partial_fit" if incremental else f"epoch {self.n_iter_ + 1}/{self.max_iter}"
                if device_batches is None:
                    batches = self._host_minibatches(train_arrays, sample_idx, batch_size)
                else:
                    batches = device_batches.epoch(sample_idx, batch_size, self.shuffle)
                with progress_bar(self.progress_bar, n_samples, desc, "samples") as bar:
                    for batch_slice, batch_arrays in batches:
                        if _weighs_nothing(batch_arrays[2]):
                            continue  # its loss is 0 / 0: no step, as if it were not there
                        batch_loss, bucket_grads, intercept_grads = self._backprop(
                            *batch_arrays, work
                        )
                        batch_loss = backend.to_host(batch_loss)
                        if not np.isfinite(batch_loss):
                            # fit and partial_fit put the model back as it was.
                            raise ValueError(
                                f"Training diverged in epoch {self.n_iter_ + 1}: the loss "
                                f"became {batch_loss}. The model is left as it was before "
                                f"this call. {self._divergence_advice()}"
                            )
                        accumulated_loss += batch_loss * (batch_slice.stop - batch_slice.start)
                        self._optimizer.update_params(
                            params, bucket_grads + intercept_grads, backend
                        )
                        if bar is not None:
                            bar.update(batch_slice.stop - batch_slice.start)
                            bar.set_postfix(loss=accumulated_loss / bar.n, refresh=False)

                loss = accumulated_loss / X_train.shape[0]
                self.n_iter_ += 1
                self.loss_ = loss
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    elapsed = time.perf_counter() - epoch_start
                    print(
                        "Iteration %d, loss = %.8f, time = %.2fs, %.0f samples/s"
                        % (self.n_iter_, self.loss_, elapsed, n_samples / max(elapsed, 1e-12))
                    )

                self._update_no_improvement_count(early_stopping, X_val, y_val, sample_weight_val)
                self._optimizer.iteration_ends(self.t_)

                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = (
                            "Validation score did not improve more than tol=%f for %d "
                            "consecutive epochs." % (self.tol, self.n_iter_no_change)
                        )
                    else:
                        msg = (
                            "Training loss did not improve more than tol=%f for %d "
                            "consecutive epochs." % (self.tol, self.n_iter_no_change)
                        )
                    if self._optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0

                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                        "optimization hasn't converged yet." % self.max_iter,
                        ConvergenceWarning,
                        stacklevel=4,
                    )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)

        if early_stopping:
            # Restore the best parameters, in place: the optimizer holds the lists.
            self._restore_params(params, self._best_bucket_weights + self._best_intercepts)

    def _new_optimizer(self, solver, params, xp=np):
        """A fresh optimizer of ``solver`` ('sgd' or 'adam') for ``params`` (arrays of ``xp``)."""
        if solver == "sgd":
            return SGDOptimizer(
                params,
                self.learning_rate_init,
                self.learning_rate,
                self.momentum,
                self.nesterovs_momentum,
                self.power_t,
                xp=xp,
            )
        return AdamOptimizer(
            params, self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon, xp=xp
        )

    def _validation_split(self, arrays, stratify):
        """Training and validation rows of each array (None stays None), for early stopping."""
        present = [a for a in arrays if a is not None]
        parts = iter(
            train_test_split(
                *present,
                random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
        )
        train, val = [], []
        for a in arrays:
            train.append(None if a is None else next(parts))
            val.append(None if a is None else next(parts))
        return train, val

    def _host_minibatches(self, arrays, sample_idx, batch_size):
        """Minibatches of one epoch on the host, drawn as scikit-learn's MLP draws them.

        Parameters
        ----------
        arrays : list of {ndarray, sparse matrix, None}
            The training arrays (X, y, sample weights, soft targets), one row
            per sample; None entries stay None.

        Yields
        ------
        batch_slice : slice
            The minibatch's positions in ``sample_idx``.
        arrays : list
            The minibatch's rows of each array (or None).
        """
        # X is validated (an ndarray, CSR or CSC): plain indexing, not
        # _safe_indexing, whose checks for dataframes cost 0.1 ms a step.
        for batch_slice in gen_batches(arrays[0].shape[0], batch_size):
            batch_idx = sample_idx[batch_slice] if self.shuffle else batch_slice
            yield batch_slice, [None if a is None else a[batch_idx] for a in arrays]

    @staticmethod
    def _restore_params(params, saved):
        for param, value in zip(params, saved):
            param[...] = value

    def _update_no_improvement_count(self, early_stopping, X, y, sample_weight):
        if early_stopping:
            val_score = self._score(X, y, sample_weight=sample_weight)
            self.validation_scores_.append(val_score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                self._best_bucket_weights = [w.copy() for w in self.bucket_weights_]
                self._best_intercepts = [b.copy() for b in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_features)
            The input data. float32 data trains in float32 (the fast path),
            anything else in float64.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights, with a positive sum. A minibatch whose
            weights sum to zero is skipped (no step), as if it were not there.

        Returns
        -------
        self : object
            The fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sk_hashednets import HashedMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = HashedMLPClassifier(hidden_layer_sizes=(32,), compression=1/4,
        ...                           solver="lbfgs", random_state=0).fit(X, y)
        >>> clf.n_buckets_, clf.n_stored_params_, clf.n_virtual_params_
        ([32, 24], 91, 259)
        """
        with _unchanged_on_error(self):
            return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. %s is not "
                "stochastic." % self.solver
            )
        return True

    def _score_with_function(self, X, y, sample_weight, score_function):
        """Private score method without input validation."""
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_PARAMS_DOC = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.

    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation function of the hidden layers.

    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        The solver for weight optimization, as in scikit-learn's MLP.

    alpha : float, default=0.0001
        Strength of the L2 penalty, applied to the stored buckets (the
        network's parameters) and divided by the sample size (or the sum of
        sample weights) when added to the loss.

    batch_size : int, default='auto'
        Size of minibatches for stochastic optimizers: ``min(200, n_samples)``
        when 'auto'. Unused by 'lbfgs'.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning rate schedule for 'sgd', as in scikit-learn's MLP.

    learning_rate_init : float, default=0.001
        The initial learning rate of 'sgd' and 'adam'.

    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.

    max_iter : int, default=200
        Maximum number of epochs (stochastic solvers) or iterations ('lbfgs').

    shuffle : bool, default=True
        Whether to shuffle samples in each epoch (stochastic solvers).

    random_state : int, RandomState instance, default=None
        Seeds the initial buckets and intercepts, the train-validation split
        of early stopping, the minibatch order, dropout and, unless
        ``hash_seed`` is given, the layers' hash seeds.

    tol : float, default=1e-4
        Tolerance for the optimization, as in scikit-learn's MLP.

    verbose : bool, default=False
        Whether to print the loss, time and samples/s of each epoch.

    warm_start : bool, default=False
        Reuse the solution of the previous call to fit as initialization.

    momentum : float, default=0.9
        Momentum of 'sgd'.

    nesterovs_momentum : bool, default=True
        Whether 'sgd' uses Nesterov's momentum.

    early_stopping : bool, default=False
        Whether to stop when the score on a held-out ``validation_fraction``
        of the training data stops improving (stochastic solvers).

    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.

    beta_1 : float, default=0.9
        Adam's decay rate of the first moment.

    beta_2 : float, default=0.999
        Adam's decay rate of the second moment.

    epsilon : float, default=1e-8
        Adam's numerical-stability constant.

    n_iter_no_change : int, default=10
        Number of epochs without ``tol`` improvement before stopping.

    max_fun : int, default=15000
        Maximum number of loss evaluations of 'lbfgs'.

    compression : float in (0, 1], default=0.125
        Share of each layer's virtual weights that is stored: layer l keeps
        ``ceil(compression * n_in * n_out)`` buckets. Ignored when
        ``n_buckets`` is given.

    n_buckets : int or array-like of int, default=None
        Bucket counts, overriding ``compression``: one int per layer (hidden
        layers then the output layer), or a single int for every layer, capped
        at each layer's number of virtual weights. ``n_buckets_`` records the
        counts used.

    hash_seed : int in [0, 2**32 - 1], default=None
        Seed of the layers' hash functions. None draws them from
        ``random_state``; an int fixes the weight-sharing pattern whatever the
        initialization. A warm start or ``partial_fit`` keeps the fitted seeds
        and refuses an int that gives others, as it refuses a changed
        ``hashing`` or ``sign_hash``.

    sign_hash : bool, default=True
        Whether each virtual weight carries a hashed sign,
        ``W[i, j] = s(i, j) * w[h(i, j)]``, which makes the collisions in a
        bucket unbiased. False gives ``W[i, j] = w[h(i, j)]``.

    dropout : float in [0, 1 - 2**-17), default=0
        Probability of dropping each hidden unit during training (inverted
        dropout: kept units are scaled by ``1 / (1 - dropout)``; nothing is
        dropped at prediction). The masks are drawn from 16 random bits an
        entry, so the rate is rounded to a multiple of 2**-16 (hence the
        bound: a rate that rounds to 1 would drop every unit). Needs a
        stochastic solver.

    input_dropout : float in [0, 1 - 2**-17), default=0
        Probability of dropping each input feature of each training sample,
        as ``dropout`` does for hidden units (Srivastava et al., 2014, drop
        20% of MNIST's pixels). Needs a stochastic solver.

    device : {'cpu', 'cuda', 'auto'}, default='cpu'
        Where to train and predict, read when a fit or a prediction starts.
        'cuda' uses the current CUDA device through CuPy (``pip install
        "sk_hashednets[gpu]"``); ``fit`` raises an ImportError without CuPy
        and a RuntimeError when CuPy sees no GPU. 'auto' picks the GPU when
        CuPy sees one, else the CPU. Input may be NumPy, SciPy sparse or CuPy
        arrays; predictions are NumPy arrays and, after a GPU fit, every
        fitted attribute is a NumPy array again, so the model pickles and,
        with ``device='cpu'``, predicts and trains on a machine without a
        GPU. ``device_`` records the device used. See ``docs/devices.md``.

    max_tile_bytes : int, default=67108864 (64 MiB)
        Memory budget of one materialised row tile of a virtual matrix. No
        virtual matrix is held whole unless it fits; a tile holds at least one
        row or column. Training keeps up to three tile-sized buffers per layer
        (weights, gradient, bucket indices). The products run on a grid of
        panels of 32 MiB fixed by the layer's shape, so every budget of at
        least 32 MiB gives the same results bit for bit; a smaller one
        changes them by floating-point rounding (see ``docs/memory.md``).

    inference_cache_bytes : int, default=33554432 (32 MiB)
        Memory that prediction may keep between calls, layer by layer in
        order: a layer's materialised virtual matrix where it fits
        (784-1000-1000-10 takes 7.1 MB in float32), then multiplied by BLAS
        as a dense network's; else, under block hashing on the CPU, its runs'
        starts and signs where they fit (6 bytes per 16 virtual weights: 6.3
        MB for a 4096 x 4096 layer), from which batches of up to 8 rows are
        computed without hashing. The other layers compute each call's
        products from the buckets by hashing: panels of at most 2 MiB (and
        ``max_tile_bytes``) materialised and multiplied by BLAS, or, for one
        row under block hashing, straight from the buckets. With 0 (lean
        mode) every layer does so, and the plan holds only hash states. See
        :meth:`memory_footprint` and ``docs/performance.md``.

    hashing : {'element', 'block'}, default='element'
        'element' hashes every virtual weight (the paper's scheme). 'block'
        maps each run of 16 consecutive virtual weights of a row to 16
        consecutive buckets from a hashed start, each with its own hashed
        sign: far fewer hash evaluations and contiguous memory access (the
        idea of ROBE). See ``docs/hashing.md``.

    hash_shards : {None, 'auto'} or int, default=None
        Split the rows of each layer's virtual matrix into S shards (row
        ``i`` in shard ``i % S``), each hashing only into its own range of
        buckets, so that the bucket gradient of a shard is summed by one CPU
        thread (on a GPU, by one thread block per chunk of its buckets) with
        no reduction pass (``docs/hashing.md``, "Sharded hashing"). None: one
        shard, the paper's hash. 'auto': per layer, at least 16 shards (more
        where a shard would exceed 32768 buckets), none of fewer than 512
        buckets, so a layer of fewer than 1024 buckets keeps one. An int:
        that many shards in every layer, capped by each layer's rows and
        buckets. The resolved counts are ``hash_shards_``; they depend on the
        layer shapes and bucket counts only. A shard's buckets train only
        through its input features: ``fit`` warns where a first-layer shard's
        features carry almost none of the data's energy (features whose
        activity repeats with a period close to a multiple or a fraction of
        S, such as image rows of 32 pixels with empty borders and S = 32);
        another S avoids it.

    keep_bucket_indexes : bool, default=True
        Whether ``partial_fit``, and ``fit`` under ``warm_start``, keep for
        their next call the bucket index of each layer whose virtual matrix
        fits in one tile (on the CPU: a uint32 per virtual weight, that is c
        times the layer's float32 buckets at compression 1/c; 128 MiB at
        4096-4096-4096-10 and 1/8). The next call then does not hash those
        matrices again (about 20 ms per 4096 x 4096 layer on two cores). With
        False each call frees them when it ends: a model trained by
        ``partial_fit`` holds only its parameters. ``memory_footprint()``
        reports them ("indexes"); ``set_params()`` drops them. See
        ``docs/memory.md``.

    progress_bar : bool, default=False
        Show a progress bar (tqdm) during training: per epoch over its
        samples, with the running loss and samples/s, for 'sgd' and 'adam';
        over the iterations, with the loss, for 'lbfgs'. Needs tqdm
        (``pip install "sk_hashednets[progress]"``). Independent of
        ``verbose``, whose per-iteration lines it leaves as they are.
"""


class HashedMLPClassifier(ClassifierMixin, BaseHashedMLP):
    """Multi-layer perceptron classifier with hashed weights (HashedNets).

    A drop-in for scikit-learn's :class:`~sklearn.neural_network.MLPClassifier`
    whose layers store only a short vector of bucket weights: entry (i, j) of
    layer l's virtual weight matrix is ``s_l(i, j) * w_l[h_l(i, j)]``, with
    ``h_l`` and ``s_l`` hash functions of the layer's seed (Chen et al., 2015).
    Training optimizes the log-loss of the buckets and intercepts with L-BFGS,
    SGD or Adam.

    Parameters
    ----------
    {params}
    teacher : classifier, default=None
        Knowledge distillation: a classifier with ``predict_proba`` whose
        probabilities, softened by ``distill_temperature``, the network learns
        besides the labels. An unfitted teacher is cloned and fitted on the
        training data inside each ``fit`` (so in a cross-validation each fold's
        teacher sees only that fold's training data); a fitted one is used as
        it is, and ``partial_fit`` needs a fitted one. Its classes must be the
        network's. ``sample_weight`` reaches an unfitted teacher where it takes
        them (its ``fit``, a Pipeline's last step, or as metadata routing
        requests); one that takes none is fitted without them, with a warning.
        None trains on the labels alone.

    distill_temperature : float, default=4.0
        The temperature ``T`` that softens the teacher's and the network's
        probabilities in the distillation term: ``softmax(logits / T)``.
        Higher values show more of how the teacher ranks the wrong classes.
        Unused without a teacher.

    distill_weight : float, default=0.5
        The teacher's share ``a`` of the loss,
        ``(1 - a) * CE(y, p) + a * T**2 * CE(q_T, p_T)``; 1 trains on the
        teacher alone. Unused without a teacher.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray of shape (n_classes,)
        Class labels for each output.
    {attributes}
    See Also
    --------
    HashedMLPRegressor : Hashed multi-layer perceptron regressor.
    sklearn.neural_network.MLPClassifier : The dense network it stands for.

    Notes
    -----
    Biases are dense: a layer with ``n_out`` units stores ``n_out`` of them.
    No virtual matrix is stored: each is materialised from its buckets, in row
    tiles of at most ``max_tile_bytes``, when it is used. Use :meth:`virtual_coefs` to see
    them.

    References
    ----------
    W. Chen, J. Wilson, S. Tyree, K. Weinberger and Y. Chen, "Compressing
    Neural Networks with the Hashing Trick", ICML 2015.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from sk_hashednets import HashedMLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0)
    >>> clf = HashedMLPClassifier(hidden_layer_sizes=(64,), compression=1/8,
    ...                           max_iter=300, random_state=0).fit(X_train, y_train)
    >>> clf.n_stored_params_ < clf.n_virtual_params_ / 4
    True
    >>> clf.score(X_test, y_test) > 0.9
    True
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        compression=0.125,
        n_buckets=None,
        hash_seed=None,
        sign_hash=True,
        dropout=0.0,
        input_dropout=0.0,
        device="cpu",
        max_tile_bytes=DEFAULT_TILE_BYTES,
        hashing="element",
        progress_bar=False,
        inference_cache_bytes=DEFAULT_CACHE_BYTES,
        hash_shards=None,
        keep_bucket_indexes=True,
        teacher=None,
        distill_temperature=4.0,
        distill_weight=0.5,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            compression=compression,
            n_buckets=n_buckets,
            hash_seed=hash_seed,
            sign_hash=sign_hash,
            dropout=dropout,
            input_dropout=input_dropout,
            device=device,
            max_tile_bytes=max_tile_bytes,
            hashing=hashing,
            progress_bar=progress_bar,
            inference_cache_bytes=inference_cache_bytes,
            hash_shards=hash_shards,
            keep_bucket_indexes=keep_bucket_indexes,
        )
        self.teacher = teacher
        self.distill_temperature = distill_temperature
        self.distill_weight = distill_weight

    _parameter_constraints: dict = {
        **BaseHashedMLP._parameter_constraints,
        "teacher": [None, HasMethods(["fit", "predict_proba"])],
        "distill_temperature": [Interval(Real, 0, None, closed="neither")],
        "distill_weight": [Interval(Real, 0, 1, closed="both")],
    }

    def _loss_name(self):
        return "log_loss"

    def _teacher_targets(self, X, y, sample_weight, incremental):
        if self.teacher is None:
            return y, None
        return teacher_targets(self, X, y, sample_weight, incremental)

    def _mix_in_teacher(self, loss, delta, logits, soft_targets, loss_name, sample_weight, xp):
        return mix_in_teacher(
            loss,
            delta,
            logits,
            soft_targets,
            self.distill_temperature,
            self.distill_weight,
            self.out_activation_,
            loss_name,
            sample_weight,
            xp=xp,
        )

    def _divergence_advice(self):
        advice = super()._divergence_advice()
        if self.teacher is None:
            return advice
        return advice + divergence_advice(self.distill_temperature, self.distill_weight)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)

        # As in MLPClassifier: define classes_ on a new fit, else check the
        # labels against the classes seen before.
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as "
                        f"in the previous call to fit. Previously got {self.classes_}, "
                        f"`y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        # bool, not int, so that float32 deltas stay float32.
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    def predict(self, X):
        """Predict using the hashed multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray, shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sk_hashednets import HashedMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = HashedMLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs",
        ...                           random_state=0).fit(X, y)
        >>> clf.predict(X[:3])
        array([0, 0, 0])
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return class_labels(self._label_binarizer, y_pred)

    def _score(self, X, y, sample_weight=None):
        return super()._score_with_function(
            X, y, sample_weight=sample_weight, score_function=accuracy_score
        )

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit, required on the first
            call (for example ``np.unique(y_all)``). ``y`` need not contain all
            of them.

        Returns
        -------
        self : object
            The updated estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from sk_hashednets import HashedMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = HashedMLPClassifier(hidden_layer_sizes=(16,), random_state=0)
        >>> for X_block, y_block in zip(np.array_split(X, 3), np.array_split(y, 3)):
        ...     clf = clf.partial_fit(X_block, y_block, classes=[0, 1, 2])
        >>> clf.n_iter_, clf.t_
        (1, 150)
        """
        with _unchanged_on_error(self):
            y = to_host_input(y)
            # NaN among object labels must fail here, clearly, not in type_of_target.
            check_array(
                y, ensure_2d=False, ensure_min_samples=0, dtype=None, estimator=self, input_name="y"
            )
            if _check_partial_fit_first_call(self, classes):
                self._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)
            return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_log_proba(self, X):
        """Return the log of probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from sk_hashednets import HashedMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = HashedMLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs",
        ...                           random_state=0).fit(X, y)
        >>> bool(np.allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X)))
        True
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The probability of each class, in the order of ``classes_``.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from sk_hashednets import HashedMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = HashedMLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs",
        ...                           random_state=0).fit(X, y)
        >>> proba = clf.predict_proba(X[:2])
        >>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1))
        ((2, 3), True)
        """
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class HashedMLPRegressor(RegressorMixin, BaseHashedMLP):
    """Multi-layer perceptron regressor with hashed weights (HashedNets).

    A drop-in for scikit-learn's :class:`~sklearn.neural_network.MLPRegressor`
    whose layers store only a short vector of bucket weights: entry (i, j) of
    layer l's virtual weight matrix is ``s_l(i, j) * w_l[h_l(i, j)]``.

    Parameters
    ----------
    loss : {{'squared_error', 'poisson'}}, default='squared_error'
        The loss to minimize: half the squared error, or half the Poisson
        deviance (with an exponential output activation), as in
        :class:`~sklearn.neural_network.MLPRegressor`.
    {params}
    Attributes
    ----------
    {attributes}
    See Also
    --------
    HashedMLPClassifier : Hashed multi-layer perceptron classifier.
    sklearn.neural_network.MLPRegressor : The dense network it stands for.

    Notes
    -----
    Biases are dense. No virtual matrix is stored: each is materialised from
    its buckets, in tiles of at most ``max_tile_bytes``, when it is used.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sk_hashednets import HashedMLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=10, noise=1, random_state=0)
    >>> reg = HashedMLPRegressor(hidden_layer_sizes=(64,), solver="lbfgs",
    ...                          random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints: dict = {
        **BaseHashedMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        compression=0.125,
        n_buckets=None,
        hash_seed=None,
        sign_hash=True,
        dropout=0.0,
        input_dropout=0.0,
        device="cpu",
        max_tile_bytes=DEFAULT_TILE_BYTES,
        hashing="element",
        progress_bar=False,
        inference_cache_bytes=DEFAULT_CACHE_BYTES,
        hash_shards=None,
        keep_bucket_indexes=True,
    ):
        self.loss = loss
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            compression=compression,
            n_buckets=n_buckets,
            hash_seed=hash_seed,
            sign_hash=sign_hash,
            dropout=dropout,
            input_dropout=input_dropout,
            device=device,
            max_tile_bytes=max_tile_bytes,
            hashing=hashing,
            progress_bar=progress_bar,
            inference_cache_bytes=inference_cache_bytes,
            hash_shards=hash_shards,
            keep_bucket_indexes=keep_bucket_indexes,
        )

    def _loss_name(self):
        return self.loss

    def predict(self, X):
        """Predict using the hashed multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sk_hashednets import HashedMLPRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> reg = HashedMLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=500,
        ...                          random_state=0).fit(X, y / 100)
        >>> reg.predict(X[:4]).shape
        (4,)
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return super()._score_with_function(
            X, y, sample_weight=sample_weight, score_function=r2_score
        )

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' needs non-negative targets y.")
        if not reset and (1 if y.ndim == 1 else y.shape[1]) != self.n_outputs_:
            raise ValueError(
                f"y has {1 if y.ndim == 1 else y.shape[1]} outputs, but the model was "
                f"fitted with {self.n_outputs_}."
            )
        return X, y.astype(X.dtype, copy=False)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : object
            The updated estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sk_hashednets import HashedMLPRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> reg = HashedMLPRegressor(hidden_layer_sizes=(16,), random_state=0)
        >>> reg = reg.partial_fit(X[:200], y[:200] / 100).partial_fit(X[200:], y[200:] / 100)
        >>> reg.t_
        442
        """
        with _unchanged_on_error(self):
            return self._fit(X, y, sample_weight=sample_weight, incremental=True)


for _estimator in (HashedMLPClassifier, HashedMLPRegressor):
    if _estimator.__doc__:  # None under python -OO
        _estimator.__doc__ = _estimator.__doc__.format(
            params=_PARAMS_DOC, attributes=attributes_doc()
        )
