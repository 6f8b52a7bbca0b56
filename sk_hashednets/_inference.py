"""The prediction plan: what ``predict`` needs, prepared once per fitted state.

A fitted model's first ``predict`` (``predict_proba``, ``predict_log_proba``,
``score``) builds a plan, and later calls reuse it until the model changes:

- per layer, either its virtual matrix materialised once and kept (while the
  matrices kept fit in ``inference_cache_bytes``), multiplied by BLAS, or the
  layer's hash states, from which each call computes its products: panel by
  panel, each of at most ``PREDICT_PANEL_BYTES`` (and ``max_tile_bytes``)
  materialised and multiplied by BLAS, or, for batches of at most
  ``DIRECT_MAX_BATCH[kernel]`` rows on the CPU, straight from the buckets
  (``_kernels/_numba_predict.py``). Such a call holds no whole virtual matrix;
- on the CPU, for a block-hashed layer not kept, each run's first bucket and
  sign bits (6 bytes per 16 virtual weights), where they fit in what the kept
  matrices leave of ``inference_cache_bytes`` (layer by layer, in order): the
  direct kernel then reads them instead of hashing ("block tables"). Lean
  mode, ``inference_cache_bytes=0``, keeps neither matrices nor tables: the
  plan holds the hash states (bytes per row and column) and every call hashes;
- on a GPU, device copies of the buckets and intercepts (and the kept
  matrices): a call moves only its input and its output.

The plan lives in a registry keyed weakly by the estimator, not in the
estimator: it is never pickled, copied or saved, and a model that is only
trained has none.

It follows the model. ``fit``, ``partial_fit`` and ``set_params`` drop it
(:func:`forget_plan`); a call whose model has other parameters, another
``bucket_weights_`` or ``intercepts_`` array (or list) than the plan was
built from, rebuilds it. In-place changes are refused: building a plan makes
the fitted arrays read-only (NumPy then raises "assignment destination is
read-only"), until the plan is dropped. That check costs a few identity and
flag tests per call, where a checksum of the buckets would cost a pass over
them on every call (``benchmarks/bench_predict.py`` measures both). A user
who makes an array writeable again is seen too: the plan is rebuilt.

Calls from several threads share the plan; it is built under a lock and
holds nothing that a call writes to, so each call gives the bits of a serial
call.
"""

import threading
import weakref
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
from sklearn import get_config

from ._base import ACTIVATIONS
from ._device_data import rows_per_chunk, to_device_rows
from ._hashed_layer import _matmul, _matmul_into, _ranges, _whole_units
from ._kernels import BLOCK_SIZE
from ._layout import layer_hash

#: Default of ``inference_cache_bytes``: materialised virtual matrices and
#: block tables a plan may keep. 784-1000-1000-10 takes 7.1 MB in float32 (14.2
#: in float64): kept; a 4096 x 4096 layer (67 MB) is not, and is computed from
#: its buckets, through its tables (6.3 MB) under block hashing.
DEFAULT_CACHE_BYTES = 32 * 2**20
#: Largest batch that a layer not kept computes straight from its buckets on
#: the CPU, per kernel ("element", "block": hashing at each call; "block
#: tables": from the plan's tables); larger batches materialise panels and
#: call BLAS. Measured with one thread (``docs/performance.md``, "The rule, and
#: its figures"): hashing, the block kernel ties with panels at batch 1 and
#: loses beyond, the element kernel loses at every batch (1.4 to 5.2 times
#: slower); from the tables, 4096-4096-4096-10 at 1/64 takes 1.8 to 1.9 times
#: less than panels at batch 8, and 1.4 to 1.5 times more at batch 32.
DIRECT_MAX_BATCH = {"element": 0, "block": 1, "block tables": 8}
#: Memory of one column panel materialised by a call, at most (and at most
#: ``max_tile_bytes``): about a core's L2 cache, so that BLAS reads it hot.
PREDICT_PANEL_BYTES = 2 * 2**20

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_PLANS = weakref.WeakKeyDictionary()
_TRAINING = weakref.WeakSet()
_LOCK = threading.Lock()


def prediction_plan(model, get_backend):
    """The model's current plan, built (under the lock) if it has none or a stale one.

    Parameters
    ----------
    model : BaseHashedMLP
        A fitted model.
    get_backend : callable
        Returns the backend to compute on; called only to build a plan.

    Returns
    -------
    plan : PredictionPlan
    """
    if model in _TRAINING:
        # Validation scores within a fit: its buckets change every epoch and
        # are trained in place, so a plan of the moment, neither kept nor freezing.
        return PredictionPlan(model, get_backend(), freeze=False)
    plan = _PLANS.get(model)
    if plan is not None and plan.is_current(model):
        return plan
    with _LOCK:
        plan = _PLANS.get(model)
        if plan is None or not plan.is_current(model):
            plan = PredictionPlan(model, get_backend())
            _PLANS[model] = plan
    return plan


def checked_rows(model, X):
    """``X`` itself where ``validate_data`` would return it unchanged, else None.

    A call's own checks for the common case, a NumPy float array with the
    fitted number of columns and no feature names to compare: the generic
    validation (dataframe detection, array API namespaces, tags) costs about
    0.2 ms, a quarter of a batch-1 prediction of 784-1000-1000-10
    (``benchmarks/bench_predict.py --check-cost``). The checks
    are those of ``validate_data(model, X, accept_sparse=["csr", "csc"],
    dtype=(np.float64, np.float32), reset=False)`` for such an array: 2-D, at
    least one row, the fitted columns, finite values (one sum, unless
    scikit-learn's ``assume_finite`` is set). Anything else (other types or
    dtypes, a model fitted with feature names, a sum that is not finite)
    returns None: the caller then validates the generic way, which converts,
    warns or raises as scikit-learn does.

    Parameters
    ----------
    model : BaseHashedMLP
        A fitted model.
    X : object
        The input of a prediction.

    Returns
    -------
    X : ndarray or None
    """
    if not (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype in _FLOAT_DTYPES
        and X.shape[0] > 0
        and X.shape[1] == model.n_features_in_
        and not hasattr(model, "feature_names_in_")
    ):
        return None
    if get_config()["assume_finite"] or np.isfinite(X.sum()):
        return X
    return None


def class_labels(binarizer, y_pred):
    """``binarizer.inverse_transform(y_pred)``, for a fitted ``LabelBinarizer``.

    Multiclass output takes its labels straight from the argmax of each row,
    as scikit-learn does (the first of tied maxima), without the array API
    dispatch around it (0.1 ms a call); other targets go through
    ``inverse_transform``.
    """
    if binarizer.y_type_ == "multiclass" and not binarizer.sparse_input_:
        return binarizer.classes_.take(y_pred.argmax(axis=1))
    return binarizer.inverse_transform(y_pred)


def forget_plan(model):
    """Drop the model's plan and make its fitted arrays writeable again (before training)."""
    with _LOCK:
        _PLANS.pop(model, None)
        for name in ("bucket_weights_", "intercepts_"):
            arrays = getattr(model, name, None)
            if isinstance(arrays, list):
                arrays[:] = [_writeable(a) for a in arrays]


@contextmanager
def training(model):
    """The block in which ``fit`` or ``partial_fit`` trains: the plan is dropped first."""
    forget_plan(model)
    _TRAINING.add(model)
    try:
        yield
    finally:
        _TRAINING.discard(model)


def plan_nbytes(model):
    """Bytes held by the model's plan (0 when it has none)."""
    plan = _PLANS.get(model)
    return 0 if plan is None else plan.nbytes


def _plan_key(model):
    """The parameters a plan depends on, besides the fitted arrays."""
    return (
        model.device,
        model.max_tile_bytes,
        model.inference_cache_bytes,
        model.activation,
        model.out_activation_,
        id(model.hash_seeds_),
        model.hash_spec_version_,
    )


def _writeable(a):
    """``a`` made writeable, or a writeable copy where its memory is not its own."""
    if isinstance(a, np.ndarray) and not a.flags.writeable:
        try:
            a.setflags(write=True)
        except ValueError:
            return np.array(a)
    return a


def _frozen(a):
    """``a`` made read-only; a read-only C-contiguous copy if a write could reach it otherwise."""
    if not (a.flags.owndata and a.flags.c_contiguous):
        a = np.array(a, order="C")  # a view: its base could still be written
    a.setflags(write=False)
    return a


class PredictionPlan:
    """Layers, kept matrices and device arrays for predicting with one fitted state.

    Parameters
    ----------
    model : BaseHashedMLP
        A fitted model. Its ``bucket_weights_`` and ``intercepts_`` are made
        read-only (views are replaced by copies first).
    backend : object
        The backend to compute on.
    freeze : bool, default=True
        Make the fitted arrays read-only (see the module docstring).
    """

    def __init__(self, model, backend, freeze=True):
        model._hashed_layers(backend, model.bucket_weights_[0].dtype)  # checks the hash spec
        self.key = _plan_key(model)
        for name in ("bucket_weights_", "intercepts_"):
            if freeze:
                arrays = [_frozen(a) for a in getattr(model, name)]
                getattr(model, name)[:] = arrays
        # What the fitted attributes were, to see a change (by identity).
        self.bucket_weights = model.bucket_weights_
        self.intercepts = model.intercepts_
        self.host_arrays = tuple(self.bucket_weights) + tuple(self.intercepts)
        self.backend = backend
        self.hidden_activation = ACTIVATIONS[model.activation]
        self.out_activation = ACTIVATIONS[model.out_activation_]
        units = model._layer_units_
        self.max_width = max(units)
        # Kept matrices and the direct kernel's tables share the budget, layer by layer.
        budget = model.inference_cache_bytes
        self.layers = []
        for i, (w, b) in enumerate(zip(self.bucket_weights, self.intercepts)):
            matrix_bytes = units[i] * units[i + 1] * w.dtype.itemsize
            keep = matrix_bytes <= budget
            budget -= matrix_bytes if keep else 0
            layer = _PlanLayer(
                backend,
                backend.to_device(w),
                backend.to_device(b),
                units[i],
                units[i + 1],
                layer_hash(model, i),
                keep,
                model.max_tile_bytes,
                table_budget=0 if keep else budget,
            )
            budget -= layer.table_nbytes
            self.layers.append(layer)

    def is_current(self, model):
        """Whether the model still has the parameters and arrays this plan was built from."""
        return (
            self.key == _plan_key(model)
            and model.bucket_weights_ is self.bucket_weights
            and model.intercepts_ is self.intercepts
            and len(self.host_arrays) == len(self.bucket_weights) + len(self.intercepts)
            and all(a is b for a, b in zip(self.host_arrays, self.bucket_weights + self.intercepts))
            and not any(a.flags.writeable for a in self.host_arrays)
        )

    @property
    def nbytes(self):
        """Bytes held by the plan: kept matrices, hash tables, device copies."""
        return sum(layer.nbytes for layer in self.layers)

    def forward(self, X):
        """The network's output for ``X``, on the host.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Validated host input.

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_outputs)
        """
        backend = self.backend
        if backend.is_host:
            return self._forward(X)
        # A chunk of rows, its input and the two widest activations, at a time.
        itemsize = max(X.dtype.itemsize, self.bucket_weights[0].dtype.itemsize)
        row_bytes = itemsize * (X.shape[1] + 2 * self.max_width)
        step = rows_per_chunk(backend, X.shape[0], row_bytes)
        parts = [
            backend.to_host(self._forward(to_device_rows(backend, X, slice(start, start + step))))
            for start in range(0, X.shape[0], step)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _forward(self, activation):
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            activation = layer.dot(activation)
            activation += layer.intercept
            if i != last:
                self.hidden_activation(activation, xp=self.backend.xp)
        self.out_activation(activation, xp=self.backend.xp)
        return activation


class _PlanLayer:
    """One layer of a plan: its buckets (on the device), and a kept matrix or hash tables."""

    def __init__(
        self, backend, w, intercept, n_in, n_out, layer_hash, keep, max_tile_bytes, table_budget=0
    ):
        self.backend = backend
        self.w = w
        self.intercept = intercept
        self.n_in, self.n_out = n_in, n_out
        self.layer_hash = layer_hash
        self.matrix = None
        self.direct = None
        self.direct_kernel = layer_hash.hashing
        if keep:
            self.matrix = self._materialize(0, n_out)
        elif backend.multiplies_from_buckets:
            # Backends that multiply straight from the buckets (the CPU's) have
            # the DirectProducts capability; the others use panels.
            self.direct = backend.direct_tables(
                self.layer_hash, n_in, n_out, max_bytes=table_budget
            )
            self.direct_kernel = self.direct.kernel
        # Column panels of at most PREDICT_PANEL_BYTES and max_tile_bytes,
        # whole hashing blocks where they can be.
        panel_bytes = min(PREDICT_PANEL_BYTES, max_tile_bytes)
        cols = panel_bytes // (n_in * w.dtype.itemsize)
        self.cols_per_panel = _whole_units(n_out, cols, BLOCK_SIZE if cols >= BLOCK_SIZE else 1)

    @property
    def table_nbytes(self):
        """Bytes of the direct kernel's tables that count against the plan's budget."""
        return 0 if self.direct is None else self.direct.table_nbytes

    @property
    def nbytes(self):
        arrays = [self.matrix, *(self.direct or ())]
        if not self.backend.is_host:
            arrays += [self.w, self.intercept]
        return _nbytes(arrays)

    def _materialize(self, start, stop):
        panel = self.backend.empty((self.n_in, stop - start), self.w.dtype)
        self.backend.materialize_tile(self.layer_hash, self.w, panel, col_start=start)
        return panel

    def dot(self, A):
        """``A @ W``: the kept matrix, the direct kernel or panels (module docstring)."""
        if self.matrix is not None:
            return _matmul(A, self.matrix)
        if self.direct is not None and A.shape[0] <= DIRECT_MAX_BATCH[self.direct_kernel]:
            return self._direct_dot(A)
        return self._panel_dot(A)

    def _direct_dot(self, A):
        dense = A.toarray() if sp.issparse(A) else A
        out = np.empty((A.shape[0], self.n_out), np.result_type(dense.dtype, self.w.dtype))
        self.backend.direct_matmul(
            self.layer_hash, np.ascontiguousarray(dense.T), self.w, self.direct, out
        )
        return out

    def _panel_dot(self, A):
        xp = self.backend.xp
        dtype = np.result_type(A.dtype, self.w.dtype)
        Z = self.backend.empty((A.shape[0], self.n_out), dtype)
        for start, stop in _ranges(self.n_out, self.cols_per_panel):
            _matmul_into(xp, A, self._materialize(start, stop), Z[:, start:stop])
        return Z


def _nbytes(arrays):
    """Bytes of the arrays among ``arrays`` (None skipped)."""
    return sum(int(a.nbytes) for a in (arrays or ()) if a is not None)
