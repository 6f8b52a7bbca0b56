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
"""

import copy
import math
import time
import warnings
from abc import ABC, abstractmethod
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
    clone,
    is_classifier,
)
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
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

from ._base import ACTIVATIONS, DERIVATIVES, LOSS_FUNCTIONS, array_module
from ._device_data import DeviceMinibatches, to_device_rows
from ._distillation import mix_in_teacher, soften
from ._hashed_layer import DEFAULT_TILE_BYTES, HashedLayer
from ._inference import (
    DEFAULT_CACHE_BYTES,
    forget_plan,
    plan_nbytes,
    prediction_plan,
    training,
)
from ._kernels import HASH_SPEC_VERSION, HASHINGS, get_backend, resolve_device
from ._optimizers import AdamOptimizer, SGDOptimizer
from ._progress import check_available as check_progress_bar_available
from ._progress import lbfgs_progress_callback, progress_bar

_STOCHASTIC_SOLVERS = ["sgd", "adam"]

#: Fitted attributes that a dense scikit-learn MLP shares with ours (:meth:`to_sklearn`).
_EXPORTED_ATTRIBUTES = (
    "intercepts_",
    "n_features_in_",
    "feature_names_in_",
    "n_layers_",
    "n_outputs_",
    "out_activation_",
    "classes_",
    "_label_binarizer",
    "loss_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "n_iter_",
    "t_",
)

#: Largest bucket count the 32-bit hash can address.
MAX_BUCKETS = 2**32 - 1


@contextmanager
def _unchanged_on_error(estimator):
    """Put the estimator's fitted state back as it was if the block raises.

    A failed ``fit``, ``partial_fit`` or warm start leaves a previously fitted
    model (or an unfitted one) exactly as it was. The state copied is buckets,
    intercepts and optimizer moments: small, never the virtual matrices.
    """
    params = estimator.get_params(deep=False)
    saved = {
        name: copy.deepcopy(value) for name, value in vars(estimator).items() if name not in params
    }
    try:
        yield
    except Exception:
        for name in [n for n in vars(estimator) if n not in params]:
            delattr(estimator, name)
        vars(estimator).update(saved)
        raise


def _pack(bucket_weights, intercepts):
    """Pack the parameters into a single vector."""
    return np.hstack([p.ravel() for p in bucket_weights + intercepts])


def _unchanged(value):
    return value


def _to_host_input(data):
    """A CuPy array or sparse matrix as its NumPy or SciPy copy; anything else as it is.

    Input is validated on the host, whatever the device: CuPy input is copied
    there first (and a GPU fit copies it back to the device once).
    """
    if data is not None and type(data).__module__.split(".")[0] in ("cupy", "cupyx"):
        return data.get()
    return data


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
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "input_dropout": [Interval(Real, 0, 1, closed="left")],
        "device": [StrOptions({"cpu", "cuda", "auto"})],
        "max_tile_bytes": [Interval(Integral, 1, None, closed="left")],
        "inference_cache_bytes": [Interval(Integral, 0, None, closed="left")],
        "hashing": [StrOptions(set(HASHINGS))],
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
        self.progress_bar = progress_bar
        self.inference_cache_bytes = inference_cache_bytes

    def _with_teacher_targets(self, X, y, sample_weight, incremental):
        """Targets for training: ``y``, plus a teacher's soft targets when distilling.

        With distillation, the columns of the teacher's softened probabilities
        are appended to those of ``y``, so that minibatches, shuffling and the
        validation split carry them along; :meth:`_backprop` splits them off.
        """
        return y

    @abstractmethod
    def _loss_name(self):
        """Name of the training loss in ``LOSS_FUNCTIONS``."""

    # ------------------------------------------------------------------
    # Architecture and hashing
    # ------------------------------------------------------------------

    def _hidden_layer_sizes_list(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if not all(isinstance(s, Integral) and not isinstance(s, bool) for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must hold integers, got {self.hidden_layer_sizes!r}."
            )
        if any(s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _resolve_n_buckets(self, layer_units):
        """Bucket count of each layer, from ``n_buckets`` or ``compression``."""
        shapes = list(zip(layer_units[:-1], layer_units[1:]))
        n_virtual = [n_in * n_out for n_in, n_out in shapes]
        if isinstance(self.n_buckets, (bool, np.bool_)):
            raise ValueError(
                f"n_buckets must be an int or one int per layer, got {self.n_buckets!r}."
            )
        if self.n_buckets is None:
            counts = [math.ceil(self.compression * v) for v in n_virtual]
        elif isinstance(self.n_buckets, Integral):
            # One int for all layers: capped by each layer's size (documented).
            counts = [min(int(self.n_buckets), v) for v in n_virtual]
        else:
            counts = list(self.n_buckets)
            if len(counts) != len(shapes):
                raise ValueError(
                    f"n_buckets has {len(counts)} entries but the network has "
                    f"{len(shapes)} layers ({len(shapes) - 1} hidden plus the output "
                    "layer): give one count per layer, or a single int."
                )
            for layer, (k, v, (n_in, n_out)) in enumerate(zip(counts, n_virtual, shapes)):
                if not isinstance(k, Integral) or isinstance(k, (bool, np.bool_)) or k < 1:
                    raise ValueError(f"n_buckets[{layer}] must be an integer >= 1, got {k!r}.")
                if k > v:
                    raise ValueError(
                        f"n_buckets[{layer}]={k} exceeds the {v} virtual weights of "
                        f"layer {layer} ({n_in} x {n_out}); use at most one bucket per "
                        "virtual weight."
                    )
            counts = [int(k) for k in counts]
        for layer, k in enumerate(counts):
            if k > MAX_BUCKETS:
                raise ValueError(
                    f"Layer {layer} would need {k} buckets, more than the {MAX_BUCKETS} "
                    "that the 32-bit hash addresses; lower compression or n_buckets."
                )
        return counts

    def _draw_hash_seeds(self, n_layers):
        """One distinct 32-bit seed per layer."""
        if self.hash_seed is None:
            rng = self._random_state
        else:
            rng = np.random.RandomState(self.hash_seed)
        seeds = []
        while len(seeds) < n_layers:
            seed = int(rng.randint(0, 2**32, dtype=np.uint64))
            if seed not in seeds:
                seeds.append(seed)
        return np.asarray(seeds, dtype=np.uint32)

    def _hashed_layers(self, backend, dtype, training=False):
        """Views of the virtual matrices, built per call (never pickled).

        Layers built for training keep their bucket index tiles when they fit
        in one tile (``HashedLayer``'s ``keep_index``): a fit hashes each such
        matrix once, not twice per step.
        """
        if self.hash_spec_version_ != HASH_SPEC_VERSION:
            # Another specification maps the same buckets to other virtual
            # weights: computing with it would silently give another network.
            raise ValueError(
                f"This model was trained with hash specification version "
                f"{self.hash_spec_version_}, but this sk_hashednets implements version "
                f"{HASH_SPEC_VERSION}. Use the sk_hashednets release that trained it."
            )
        units = self._layer_units_
        return [
            HashedLayer(
                backend,
                units[i],
                units[i + 1],
                int(self.hash_seeds_[i]),
                self.sign_hash_,
                dtype,
                self.max_tile_bytes,
                self.hashing_,
                n_buckets=self.n_buckets_[i],
                keep_index=training,
            )
            for i in range(self.n_layers_ - 1)
        ]

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
        return self

    def memory_footprint(self):
        """Bytes that the fitted model holds in memory, for prediction.

        Returns
        -------
        footprint : dict
            ``"parameters"``: the buckets and intercepts; ``"plan"``: what the
            prediction plan keeps (materialised virtual matrices within
            ``inference_cache_bytes``, hash tables, device copies), 0 before
            the first prediction and after ``fit``; ``"total"``: their sum.
            Optimizer state is not counted: it serves training only.

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
        {'parameters': 21072, 'plan': 151552, 'total': 172624}
        """
        check_is_fitted(self)
        parameters = sum(int(a.nbytes) for a in self.bucket_weights_ + self.intercepts_)
        plan = plan_nbytes(self)
        return {"parameters": parameters, "plan": plan, "total": parameters + plan}

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
        check_is_fitted(self)
        dtype = self.bucket_weights_[0].dtype
        units = self._layer_units_
        n_bytes = sum(a * b for a, b in zip(units[:-1], units[1:])) * dtype.itemsize
        if n_bytes > max_bytes:
            raise ValueError(
                f"The virtual matrices take {n_bytes} bytes, more than max_bytes="
                f"{max_bytes}. Raise max_bytes if you really want them in memory."
            )
        backend = get_backend("cpu")
        coefs = []
        for layer, w in zip(self._hashed_layers(backend, dtype), self.bucket_weights_):
            W = np.empty((layer.n_in, layer.n_out), dtype=dtype)
            backend.materialize_tile(
                w, layer.seed, layer.sign_seed, layer.sign_hash, 0, W, hashing=layer.hashing
            )
            coefs.append(W)
        return coefs

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
            calls train the dense matrices with a fresh optimizer.

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
        check_is_fitted(self)
        dense_class = MLPClassifier if is_classifier(self) else MLPRegressor
        params = self.get_params(deep=False)
        mlp = dense_class(
            **{name: copy.deepcopy(params[name]) for name in dense_class().get_params()}
        )
        mlp.coefs_ = self.virtual_coefs(max_bytes=max_bytes)
        for name in _EXPORTED_ATTRIBUTES:
            if hasattr(self, name):
                setattr(mlp, name, copy.deepcopy(getattr(self, name)))
        return mlp

    # ------------------------------------------------------------------
    # Forward and backward passes
    # ------------------------------------------------------------------

    def _forward_pass(self, activations, layer_inputs, dropout_masks, layers):
        """Forward pass that keeps every layer's activation, for training.

        ``activations[i]`` is layer i's output before dropout, ``layer_inputs[i]``
        what layer i multiplies (the activation after dropout), and
        ``dropout_masks[i]`` (or None) the scaled mask between the two. The
        output layer multiplies nothing: ``layer_inputs[-1]`` keeps its logits
        (the output before the output activation), which distillation needs.
        """
        hidden_activation = ACTIVATIONS[self.activation]
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
                hidden_activation(activations[i + 1])
                layer_inputs[i + 1] = activations[i + 1]
                if self.dropout > 0:
                    # Drawn on the host, by the RandomState, as on the CPU.
                    dropout_masks[i + 1] = layers[i].backend.to_device(
                        self._dropout_mask(activations[i + 1].shape, self.dropout, layers[i].dtype)
                    )
                    layer_inputs[i + 1] = activations[i + 1] * dropout_masks[i + 1]
        if self._distilling():
            layer_inputs[-1] = activations[-1].copy()
        ACTIVATIONS[self.out_activation_](activations[-1])
        return activations

    def _divergence_advice(self):
        """What to change after a diverged fit."""
        advice = (
            f"Lower learning_rate_init (now {self.learning_rate_init}), scale the input "
            "(e.g. with StandardScaler), or raise alpha."
        )
        if not self._distilling():
            return advice
        # The teacher's term of the output gradient is up to weight * T per logit.
        return advice + (
            " With a teacher, the output gradient reaches distill_weight * "
            f"distill_temperature (now {self.distill_weight} * {self.distill_temperature}) "
            "per logit: lower learning_rate_init in proportion, or lower either."
        )

    def _distilling(self):
        return getattr(self, "teacher", None) is not None

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
            X = validate_data(
                self,
                _to_host_input(X),
                accept_sparse=["csr", "csc"],
                dtype=(np.float64, np.float32),
                reset=False,
            )
        backend = get_backend(resolve_device(self.device))
        with self._device_memory_errors(backend):
            # Prepared once per fitted state and reused (``_inference``).
            return prediction_plan(self, lambda: backend).forward(X)

    @contextmanager
    def _device_memory_errors(self, backend):
        """Re-raise the device's out-of-memory error as a MemoryError that says what to lower."""
        try:
            yield
        except backend.out_of_memory_errors as error:
            raise MemoryError(
                f"The {backend.name} device ran out of memory ({error}). Lower "
                f"max_tile_bytes (now {self.max_tile_bytes}: the size of one materialised "
                "tile of a virtual matrix, of which each layer keeps up to two on the "
                f"device) or batch_size (now {self.batch_size!r}), or use device='cpu'."
            ) from error

    @contextmanager
    def _training_state_on(self, backend):
        """Keep the training state on the backend's device during a fit, on the host after.

        The state is the buckets, the intercepts, the optimizer's moments and,
        with early stopping, the best buckets and intercepts so far. After an
        error nothing is copied back: ``_unchanged_on_error`` puts back the host
        state from before the call.
        """
        if backend.is_host:
            yield
            return
        self._convert_training_state(backend.to_device)
        yield
        self._convert_training_state(backend.to_host)

    def _convert_training_state(self, convert):
        names = ["bucket_weights_", "intercepts_"]
        if self.early_stopping:
            names += ["_best_bucket_weights", "_best_intercepts"]
        for name in names:
            setattr(self, name, [convert(a) for a in getattr(self, name)])
        if getattr(self, "_optimizer", None) is not None:
            self._optimizer.convert_state(convert)

    def _compute_loss_grad(
        self, layer, sw_sum, layer_input, deltas, bucket_grads, intercept_grads, layers
    ):
        """Gradient of the loss with respect to one layer's buckets and intercepts."""
        layers[layer].bucket_grad(layer_input, deltas[layer], out=bucket_grads[layer])
        bucket_grads[layer] += self.alpha * self.bucket_weights_[layer]
        bucket_grads[layer] /= sw_sum
        intercept_grads[layer] = deltas[layer].sum(axis=0) / sw_sum

    def _backprop(
        self, X, y, sample_weight, activations, deltas, bucket_grads, intercept_grads, layers
    ):
        """Loss and its gradients with respect to every bucket and intercept.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        y : ndarray of shape (n_samples, n_outputs)
        sample_weight : ndarray of shape (n_samples,) or None
        activations, deltas : list
            Work lists, filled in.
        bucket_grads, intercept_grads : list of ndarray
            Filled in with the gradients.
        layers : list of HashedLayer

        Returns
        -------
        loss : float
        bucket_grads, intercept_grads : list of ndarray
        """
        n_samples = X.shape[0]
        activations[0] = X
        layer_inputs = [None] * len(activations)
        dropout_masks = [None] * len(activations)
        activations = self._forward_pass(activations, layer_inputs, dropout_masks, layers)

        soft_targets = None
        if y.shape[1] != self.n_outputs_:  # distillation: labels, then the teacher's targets
            y, soft_targets = y[:, : self.n_outputs_], y[:, self.n_outputs_ :]

        loss_func_name = self._loss_name()
        if loss_func_name == "log_loss" and self.out_activation_ == "logistic":
            loss_func_name = "binary_log_loss"
        loss = LOSS_FUNCTIONS[loss_func_name](y, activations[-1], sample_weight)
        # Canonical link: d loss / d z_out = act(z_out) - y for softmax with
        # cross-entropy, logistic with binary cross-entropy, identity with
        # squared error and exp with Poisson deviance.
        last = self.n_layers_ - 2
        deltas[last] = activations[-1] - y
        if soft_targets is not None:
            loss = self._mix_in_teacher(
                loss, deltas[last], layer_inputs[-1], soft_targets, loss_func_name, sample_weight
            )

        # L2 penalty on the stored buckets, the network's actual parameters. On a
        # device the squared norms stay there: float() would wait for it per layer.
        xp = array_module(self.bucket_weights_[0])
        to_scalar = float if xp is np else _unchanged
        values = sum(to_scalar(xp.dot(w, w)) for w in self.bucket_weights_)
        sw_sum = n_samples if sample_weight is None else sample_weight.sum()
        loss += (0.5 * self.alpha) * values / sw_sum
        if sample_weight is not None:
            deltas[last] *= sample_weight.reshape(-1, 1)

        self._compute_loss_grad(
            last,
            sw_sum,
            layer_inputs[last],
            deltas,
            bucket_grads,
            intercept_grads,
            layers,
        )
        inplace_derivative = DERIVATIVES[self.activation]
        for i in range(last, 0, -1):
            deltas[i - 1] = layers[i].dot_transposed(
                deltas[i], self.bucket_weights_[i], reuse_tile=True
            )
            if dropout_masks[i] is not None:
                deltas[i - 1] *= dropout_masks[i]
            inplace_derivative(activations[i], deltas[i - 1])
            self._compute_loss_grad(
                i - 1,
                sw_sum,
                layer_inputs[i - 1],
                deltas,
                bucket_grads,
                intercept_grads,
                layers,
            )
        return loss, bucket_grads, intercept_grads

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

        self.n_buckets_ = self._resolve_n_buckets(layer_units)
        self.hash_seeds_ = self._draw_hash_seeds(self.n_layers_ - 1)
        self.sign_hash_ = bool(self.sign_hash)
        self.hashing_ = self.hashing
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
        n_buckets = self._resolve_n_buckets(layer_units)
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
        if bool(self.sign_hash) != self.sign_hash_:
            raise ValueError(
                f"sign_hash is now {self.sign_hash}, but the model was fitted with "
                f"sign_hash={self.sign_hash_}. Set warm_start=False to train a new network."
            )

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden_layer_sizes = self._hidden_layer_sizes_list()
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
        X, y, sample_weight = map(_to_host_input, (X, y, sample_weight))
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
        self.device_ = device
        y = self._with_teacher_targets(X, y, sample_weight, incremental)

        with (
            training(self),
            self._device_memory_errors(backend),
            self._training_state_on(backend),
        ):
            layers = self._hashed_layers(backend, X.dtype, training=True)
            activations = [X] + [None] * (len(layer_units) - 1)
            deltas = [None] * (len(activations) - 1)
            bucket_grads = [backend.empty(k, X.dtype) for k in self.n_buckets_]
            intercept_grads = [backend.empty(n, X.dtype) for n in layer_units[1:]]

            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(
                    X,
                    y,
                    sample_weight,
                    activations,
                    deltas,
                    bucket_grads,
                    intercept_grads,
                    layers,
                    incremental,
                )
            else:
                self._fit_lbfgs(
                    X,
                    y,
                    sample_weight,
                    activations,
                    deltas,
                    bucket_grads,
                    intercept_grads,
                    layers,
                )

        if not all(np.isfinite(p).all() for p in self.bucket_weights_ + self.intercepts_):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may "
                "contain large values and need to be preprocessed (e.g. with "
                "StandardScaler), or learning_rate_init may be too large."
            )
        return self

    def _fit_lbfgs(
        self, X, y, sample_weight, activations, deltas, bucket_grads, intercept_grads, layers
    ):
        backend = layers[0].backend  # the layers carry the fit's backend
        if not backend.is_host:
            # L-BFGS evaluates the whole training set at every step: copy it once.
            X, y = to_device_rows(backend, X), to_device_rows(backend, y)
            if sample_weight is not None:
                sample_weight = to_device_rows(backend, sample_weight)
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
        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        if iprint > 0:
            options["disp"] = True
        args = (X, y, sample_weight, activations, deltas, bucket_grads, intercept_grads, layers)
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

    def _loss_grad_lbfgs(
        self,
        packed,
        X,
        y,
        sample_weight,
        activations,
        deltas,
        bucket_grads,
        intercept_grads,
        layers,
    ):
        backend = layers[0].backend
        self._unpack(packed.astype(X.dtype, copy=False), backend)
        loss, bucket_grads, intercept_grads = self._backprop(
            X, y, sample_weight, activations, deltas, bucket_grads, intercept_grads, layers
        )
        grad = _pack(
            [backend.to_host(g) for g in bucket_grads],
            [backend.to_host(g) for g in intercept_grads],
        )
        return backend.to_host(loss), grad.astype(np.float64)

    def _fit_stochastic(
        self,
        X,
        y,
        sample_weight,
        activations,
        deltas,
        bucket_grads,
        intercept_grads,
        layers,
        incremental,
    ):
        params = self.bucket_weights_ + self.intercepts_
        if not incremental or not hasattr(self, "_optimizer"):
            if self.solver == "sgd":
                self._optimizer = SGDOptimizer(
                    params,
                    self.learning_rate_init,
                    self.learning_rate,
                    self.momentum,
                    self.nesterovs_momentum,
                    self.power_t,
                )
            else:
                self._optimizer = AdamOptimizer(
                    params, self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon
                )

        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            stratify = y[:, : self.n_outputs_] if should_stratify else None
            if sample_weight is None:
                X_train, X_val, y_train, y_val = train_test_split(
                    X,
                    y,
                    random_state=self._random_state,
                    test_size=self.validation_fraction,
                    stratify=stratify,
                )
                sample_weight_train = sample_weight_val = None
            else:
                X_train, X_val, y_train, y_val, sample_weight_train, sample_weight_val = (
                    train_test_split(
                        X,
                        y,
                        sample_weight,
                        random_state=self._random_state,
                        test_size=self.validation_fraction,
                        stratify=stratify,
                    )
                )
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val[:, : self.n_outputs_])
        else:
            X_train, y_train, sample_weight_train = X, y, sample_weight
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
        backend = layers[0].backend
        device_batches = None
        if not backend.is_host:
            device_batches = DeviceMinibatches(
                backend, [X_train, y_train, sample_weight_train], batch_size
            )

        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                epoch_start = time.perf_counter()
                if self.shuffle:
                    sample_idx = shuffle(sample_idx, random_state=self._random_state)

                accumulated_loss = 0.0
                desc = "partial_fit" if incremental else f"epoch {self.n_iter_ + 1}/{self.max_iter}"
                if device_batches is None:
                    batches = self._host_minibatches(
                        X_train, y_train, sample_weight_train, sample_idx, batch_size
                    )
                else:
                    batches = device_batches.epoch(sample_idx, batch_size, self.shuffle)
                with progress_bar(self.progress_bar, n_samples, desc, "samples") as bar:
                    for batch_slice, (X_batch, y_batch, sample_weight_batch) in batches:
                        batch_loss, bucket_grads, intercept_grads = self._backprop(
                            X_batch,
                            y_batch,
                            sample_weight_batch,
                            activations,
                            deltas,
                            bucket_grads,
                            intercept_grads,
                            layers,
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
                        self._optimizer.update_params(params, bucket_grads + intercept_grads)
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

    def _host_minibatches(self, X, y, sample_weight, sample_idx, batch_size):
        """Minibatches of one epoch on the host, drawn as scikit-learn's MLP draws them.

        Yields
        ------
        batch_slice : slice
            The minibatch's positions in ``sample_idx``.
        arrays : list
            The minibatch's rows of ``X``, ``y`` and ``sample_weight`` (or None).
        """
        # X is validated (an ndarray, CSR or CSC): plain indexing, not
        # _safe_indexing, whose checks for dataframes cost 0.1 ms a step.
        for batch_slice in gen_batches(X.shape[0], batch_size):
            batch_idx = sample_idx[batch_slice] if self.shuffle else batch_slice
            X_batch = X[batch_idx]
            y_batch = y[batch_idx]
            sample_weight_batch = None if sample_weight is None else sample_weight[batch_idx]
            yield batch_slice, [X_batch, y_batch, sample_weight_batch]

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
            Non-negative sample weights.

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
        initialization.

    sign_hash : bool, default=True
        Whether each virtual weight carries a hashed sign,
        ``W[i, j] = s(i, j) * w[h(i, j)]``, which makes the collisions in a
        bucket unbiased. False gives ``W[i, j] = w[h(i, j)]``.

    dropout : float in [0, 1), default=0
        Probability of dropping each hidden unit during training (inverted
        dropout: kept units are scaled by ``1 / (1 - dropout)``; nothing is
        dropped at prediction). The masks are drawn from 16 random bits an
        entry, so the rate is rounded to a multiple of 2**-16. Needs a
        stochastic solver.

    input_dropout : float in [0, 1), default=0
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
        Memory that prediction may keep for materialised virtual matrices,
        between calls: layers are kept in order while their matrices fit
        (784-1000-1000-10 takes 7.1 MB in float32), and are then multiplied
        by BLAS as a dense network's. The others, and all with 0 (lean mode),
        compute each call's products from the buckets: panels of at most 2
        MiB (and ``max_tile_bytes``) materialised and multiplied by BLAS, or,
        for one row under block hashing, straight from the buckets. See
        :meth:`memory_footprint` and ``docs/performance.md``.

    hashing : {'element', 'block'}, default='element'
        'element' hashes every virtual weight (the paper's scheme). 'block'
        maps each run of 16 consecutive virtual weights of a row to 16
        consecutive buckets from a hashed start, each with its own hashed
        sign: far fewer hash evaluations and contiguous memory access (the
        idea of ROBE). See ``docs/hashing.md``.

    progress_bar : bool, default=False
        Show a progress bar (tqdm) during training: per epoch over its
        samples, with the running loss and samples/s, for 'sgd' and 'adam';
        over the iterations, with the loss, for 'lbfgs'. Needs tqdm
        (``pip install "sk_hashednets[progress]"``). Independent of
        ``verbose``, whose per-iteration lines it leaves as they are.
"""

_ATTRIBUTES_DOC = """
    loss_ : float
        The current loss computed with the loss function.

    best_loss_ : float or None
        The minimum loss reached by the solver throughout fitting. None when
        ``early_stopping=True``; only set by the stochastic solvers.

    loss_curve_ : list of shape (`n_iter_`,)
        The loss at the end of each epoch (stochastic solvers).

    validation_scores_ : list of shape (`n_iter_`,) or None
        The score on the validation set at each epoch when
        ``early_stopping=True``, else None.

    best_validation_score_ : float or None
        The best validation score when ``early_stopping=True``, else None.

    t_ : int
        The number of training samples seen by the solver.

    bucket_weights_ : list of ndarray of shape (n_buckets_[i],)
        The stored (and trained) weights of each layer.

    intercepts_ : list of ndarray of shape (n_units[i + 1],)
        The biases of each layer, stored dense.

    n_buckets_ : list of int
        The number of buckets of each layer.

    hash_seeds_ : ndarray of shape (`n_layers_` - 1,), dtype uint32
        The seed of each layer's hash functions.

    sign_hash_ : bool
        Whether the fitted virtual weights carry a hashed sign.

    hashing_ : str
        The hashing scheme the model was fitted with.

    hash_spec_version_ : int
        Version of the hash specification the model was trained with.

    n_virtual_params_ : int
        Virtual weights plus biases: the parameter count of the dense network
        this one stands for.

    n_stored_params_ : int
        Buckets plus biases: the parameters actually stored and trained.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string feature names.

    n_iter_ : int
        The number of iterations the solver has run.

    n_layers_ : int
        Number of layers, input and output included.

    n_outputs_ : int
        Number of outputs.

    out_activation_ : str
        Name of the output activation function.

    device_ : {'cpu', 'cuda'}
        The device the model was last trained on.
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
        network's. None trains on the labels alone.

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

    def _with_teacher_targets(self, X, y, sample_weight, incremental):
        if self.teacher is None:
            return y
        if isinstance(self.teacher, type):
            raise ValueError(
                f"teacher must be a classifier instance, got the class "
                f"{self.teacher.__name__}: pass {self.teacher.__name__}(...) instead."
            )
        teacher = self._fitted_teacher(X, y, sample_weight, incremental)
        proba = self._teacher_proba(teacher, X)
        soft = soften(proba, self.distill_temperature, self.out_activation_)
        return np.hstack([y.astype(X.dtype), soft.astype(X.dtype)])

    def _fitted_teacher(self, X, y, sample_weight, incremental):
        """The teacher as given if fitted, else a clone fitted on (X, y)."""
        try:
            check_is_fitted(self.teacher)
            return self.teacher
        except NotFittedError:
            if incremental:
                raise ValueError(
                    "partial_fit needs a fitted teacher: it sees one block at a time, too "
                    "little to fit one. Fit the teacher first and pass it fitted."
                ) from None
        labels = self._label_binarizer.inverse_transform(y)
        fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
        return clone(self.teacher).fit(X, labels, **fit_params)

    def _teacher_proba(self, teacher, X):
        """The teacher's probabilities, one column per output of the network."""
        proba = teacher.predict_proba(X)
        if isinstance(proba, list):  # one (n, 2) array per label (multilabel)
            proba = np.column_stack([p[:, -1] for p in proba])
        proba = np.asarray(proba, dtype=np.float64)
        teacher_classes = getattr(teacher, "classes_", None)
        if (
            self._label_binarizer.y_type_ != "multilabel-indicator"
            and teacher_classes is not None
            and not np.array_equal(np.asarray(teacher_classes), self.classes_)
        ):
            raise ValueError(
                f"The teacher's classes {teacher_classes} differ from the training data's "
                f"{self.classes_}: fit the teacher on the same labels, or pass it unfitted."
            )
        if self.out_activation_ == "logistic" and self.n_outputs_ == 1:
            proba = proba[:, -1:]  # binary: the probability of the positive class
        if proba.shape != (X.shape[0], self.n_outputs_):
            raise ValueError(
                f"teacher.predict_proba returned shape {proba.shape}; distillation needs "
                f"{(X.shape[0], self.n_outputs_)}, one probability per class."
            )
        return proba

    def _mix_in_teacher(self, loss, delta, logits, soft_targets, loss_name, sample_weight):
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
        )

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
        return self._label_binarizer.inverse_transform(y_pred)

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
            y = _to_host_input(y)
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
            params=_PARAMS_DOC, attributes=_ATTRIBUTES_DOC
        )
