"""A safe file format for fitted models: arrays and JSON, no pickle.

A joblib or pickle file runs code when it is loaded. :func:`save` writes a
NumPy ``.npz`` archive that holds only numeric and string arrays plus one JSON
document (``__meta__``); :func:`load` reads it with ``allow_pickle=False`` and
checks everything it reads before it builds the estimator.
"""

import hashlib
import json
import os
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.validation import check_is_fitted

from ._attributes import META_ATTRIBUTES
from ._kernels._hashing import READABLE_HASH_SPEC_VERSIONS
from ._multilayer_perceptron import HashedMLPClassifier, HashedMLPRegressor
from ._optimizers import AdamOptimizer, SGDOptimizer
from ._version import __version__

FORMAT_NAME = "sk_hashednets"
#: Version of the file layout written by :func:`save`.
FORMAT_VERSION = 1

_ESTIMATORS = {cls.__name__: cls for cls in (HashedMLPClassifier, HashedMLPRegressor)}
#: The optimizers a file may hold, by the name it records.
_OPTIMIZERS = {cls.kind: cls for cls in (AdamOptimizer, SGDOptimizer)}


class ModelFileError(ValueError):
    """A model file that :func:`load` refuses: corrupted, tampered or incompatible.

    A subclass of ``ValueError``; its message says what is wrong with the file.

    Examples
    --------
    >>> import io
    >>> from sk_hashednets import ModelFileError, load
    >>> try:
    ...     load(io.BytesIO(b"not a model"))
    ... except ModelFileError as error:
    ...     print(isinstance(error, ValueError), str(error).startswith("Cannot read"))
    True True
    """


def save(model, path):
    """Save a fitted hashed MLP to a file that is safe to load.

    The file is a NumPy ``.npz`` archive of the model's arrays (buckets,
    intercepts, hash seeds, classes, optimizer state) and a JSON document of
    its parameters, scalars, the package version and the hash specification's
    version. It contains no pickle: loading it cannot run code.

    Parameters
    ----------
    model : HashedMLPClassifier or HashedMLPRegressor
        A fitted model.
    path : str, path-like or binary file object
        Where to write: the file is written at exactly this path, whatever
        its suffix (``"model.skh"`` stays ``"model.skh"``), so the same path
        reads it back with :func:`load`. An open file object must be binary
        and writable.

    See Also
    --------
    load : Read the file back.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> from sk_hashednets import HashedMLPClassifier, save, load
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = HashedMLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0)
    >>> clf = clf.fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(clf, path)
    >>> (load(path).predict(X) == clf.predict(X)).all()
    np.True_
    """
    if type(model).__name__ not in _ESTIMATORS or not isinstance(
        model, tuple(_ESTIMATORS.values())
    ):
        raise TypeError(
            f"save() takes a HashedMLPClassifier or HashedMLPRegressor, got "
            f"{type(model).__name__}. Use joblib for other objects (and load only "
            "joblib files you trust)."
        )
    check_is_fitted(model)
    (arrays, object_arrays), meta = _model_arrays(model), _model_meta(model)
    meta["object_arrays"] = object_arrays
    meta["arrays"] = {
        name: {"dtype": a.dtype.str, "shape": list(a.shape)} for name, a in arrays.items()
    }
    meta["sha256"] = _digest(arrays)
    entries = dict(__meta__=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    if isinstance(path, (str, os.PathLike)):
        # np.savez appends ".npz" to a path without it; a file object it leaves alone.
        with open(path, "wb") as file:
            np.savez(file, **entries)
    else:
        np.savez(path, **entries)


def load(path):
    """Load a model written by :func:`save`, checking it before building it.

    The file is read with ``allow_pickle=False``. Loading refuses, with a
    :class:`ModelFileError` (a ``ValueError``) that says why: a truncated or
    corrupted file, an entry the format does not have or a missing one, arrays
    whose shapes, dtypes or checksum disagree with what the file declares or
    with each other, and a file from another hash specification or a newer
    file format (which would compute a different network).

    Parameters
    ----------
    path : str, path-like or binary file object
        The file written by :func:`save` (an open file object must be binary
        and readable).

    Returns
    -------
    model : HashedMLPClassifier or HashedMLPRegressor
        The fitted model, ready to predict or to continue training.

    Raises
    ------
    FileNotFoundError
        If no file exists at ``path``.
    ModelFileError
        If the file is not a valid model file (see above).

    See Also
    --------
    save : Write the file.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sk_hashednets import HashedMLPClassifier, save, load
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = HashedMLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0)
    >>> buffer = io.BytesIO()
    >>> save(clf.fit(X, y), buffer)
    >>> _ = buffer.seek(0)
    >>> model = load(buffer)
    >>> bool(np.array_equal(model.predict_proba(X), clf.predict_proba(X)))
    True
    """
    if isinstance(path, (str, os.PathLike)) and not os.path.exists(path):
        raise FileNotFoundError(f"No model file at {os.fspath(path)!r}.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            if "__meta__" not in names:
                raise ModelFileError(
                    f"{path!r} is not an sk_hashednets model file: it has no __meta__ entry."
                )
            meta = _parse_meta(archive["__meta__"], path)
            # Names first: an entry the format does not have is never read.
            _check_names(meta, names - {"__meta__"}, path)
            arrays = {name: archive[name] for name in sorted(names - {"__meta__"})}
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to parse untrusted bytes is a bad file
        raise ModelFileError(
            f"Cannot read {path!r} as an sk_hashednets model file (truncated, corrupted "
            f"or not a file written by sk_hashednets.save): {exc}"
        ) from exc
    _check_arrays(meta, arrays, path)
    return _build_model(meta, arrays, path)


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------


def _model_arrays(model):
    """The model's arrays, and the names of those that were object arrays."""
    object_arrays = []
    arrays = {"hash_seeds_": np.asarray(model.hash_seeds_, dtype=np.uint32)}
    for i, (w, b) in enumerate(zip(model.bucket_weights_, model.intercepts_)):
        arrays[f"bucket_weights_{i}"] = np.ascontiguousarray(w)
        arrays[f"intercepts_{i}"] = np.ascontiguousarray(b)
    for name in ("classes_", "feature_names_in_"):
        if hasattr(model, name):
            arrays[name], was_object = _plain_array(getattr(model, name), name)
            if was_object:
                object_arrays.append(name)
    optimizer = getattr(model, "_optimizer", None)
    state = {} if optimizer is None else optimizer.state()[1]
    for kind, values in state.items():
        for k, value in enumerate(values):
            arrays[f"optimizer_{kind}_{k}"] = np.ascontiguousarray(value)
    return arrays, object_arrays


def _plain_array(values, name):
    """Labels or names as a numeric or unicode array: never an object array.

    Returns the array and whether it was an object array (restored on load).
    """
    values = np.asarray(values)
    if values.dtype.kind != "O":
        return values, False
    if all(isinstance(v, str) for v in values):
        return values.astype(str), True
    if all(isinstance(v, Integral) and not isinstance(v, bool) for v in values):
        return values.astype(np.int64), True
    if all(isinstance(v, Real) and not isinstance(v, bool) for v in values):
        return values.astype(np.float64), True
    raise TypeError(
        f"{name} holds objects of types {sorted({type(v).__name__ for v in values})}, "
        "which the safe format cannot store without pickle. Use labels that are all "
        "numbers or all strings, or persist this model with joblib."
    )


def _json_value(value, name):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_value(v, name) for v in value]
    raise TypeError(f"Cannot store {name}={value!r} in the safe format.")


def _model_meta(model):
    params = model.get_params(deep=False)
    if params.get("teacher") is not None:
        warnings.warn(
            "teacher is an estimator, which the safe format cannot store: the file records "
            "teacher=None. The fitted model is saved exactly; the teacher only served in "
            "training. Pass a teacher again (set_params) to distil further.",
            UserWarning,
            stacklevel=3,
        )
        params["teacher"] = None
    if params["random_state"] is not None and not isinstance(params["random_state"], Integral):
        warnings.warn(
            "random_state is a random generator, which the safe format cannot store: "
            "the file records random_state=None. The fitted model is saved exactly.",
            UserWarning,
            stacklevel=3,
        )
        params["random_state"] = None
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "hash_spec_version": int(model.hash_spec_version_),
        "estimator": type(model).__name__,
        "params": {k: _json_value(v, k) for k, v in params.items()},
        "fitted": {
            name: _json_value(getattr(model, name), name)
            for name in META_ATTRIBUTES
            if hasattr(model, name)
        },
    }
    if hasattr(model, "_label_binarizer"):
        meta["fitted"]["y_type"] = model._label_binarizer.y_type_
    optimizer = getattr(model, "_optimizer", None)
    if optimizer is not None:
        # "t", the step count, is 0 for an optimizer that keeps none (SGD).
        meta["optimizer"] = {"kind": optimizer.kind, "t": 0, **optimizer.state()[0]}
    meta["fitted"]["_no_improvement_count"] = int(getattr(model, "_no_improvement_count", 0))
    return meta


def _digest(arrays):
    sha = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        sha.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        sha.update(np.ascontiguousarray(a).tobytes())
    return sha.hexdigest()


# ----------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------


def _parse_meta(entry, path):
    if entry.dtype.kind != "U" or entry.shape != ():
        raise ModelFileError(f"{path!r}: __meta__ is not a JSON string.")
    try:
        meta = json.loads(str(entry))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path!r}: __meta__ is not valid JSON ({exc}).") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path!r} is not an sk_hashednets model file.")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ModelFileError(
            f"{path!r} has file format version {version!r}; this sk_hashednets reads "
            f"version {FORMAT_VERSION}. Upgrade sk_hashednets to load it."
        )
    spec = meta.get("hash_spec_version")
    if spec not in READABLE_HASH_SPEC_VERSIONS:
        raise ModelFileError(
            f"{path!r} was written under hash specification version {spec!r}, but this "
            f"sk_hashednets implements versions {READABLE_HASH_SPEC_VERSIONS}: its buckets would "
            "compute a different network. Load it with the sk_hashednets release that "
            f"wrote it (package version {meta.get('package_version')!r})."
        )
    if meta.get("estimator") not in _ESTIMATORS:
        raise ModelFileError(f"{path!r}: unknown estimator {meta.get('estimator')!r}.")
    for key in ("params", "fitted", "arrays"):
        if not isinstance(meta.get(key), dict):
            raise ModelFileError(f"{path!r}: __meta__ has no {key!r} section.")
    return meta


def _expected_arrays(meta, path):
    """Names and shapes that the declared architecture implies."""
    fitted = meta["fitted"]
    try:
        units = [int(u) for u in fitted["_layer_units_"]]
        n_buckets = [int(k) for k in fitted["n_buckets_"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path!r}: the architecture is missing or malformed.") from exc
    n_layers = len(units) - 1
    if n_layers < 1 or len(n_buckets) != n_layers or fitted.get("n_layers_") != len(units):
        raise ModelFileError(f"{path!r}: layer sizes and bucket counts disagree.")
    expected = {"hash_seeds_": (n_layers,)}
    for i in range(n_layers):
        expected[f"bucket_weights_{i}"] = (n_buckets[i],)
        expected[f"intercepts_{i}"] = (units[i + 1],)
    optimizer = meta.get("optimizer")
    if optimizer is not None:
        optimizer_class = _OPTIMIZERS.get(optimizer.get("kind"))
        if optimizer_class is None:
            raise ModelFileError(f"{path!r}: unknown optimizer {optimizer.get('kind')!r}.")
        for kind in optimizer_class.state_arrays:
            for i in range(n_layers):
                expected[f"optimizer_{kind}_{i}"] = (n_buckets[i],)
            for i in range(n_layers):
                expected[f"optimizer_{kind}_{n_layers + i}"] = (units[i + 1],)
    return expected


def _check_names(meta, names, path):
    expected = _expected_arrays(meta, path)
    unexpected = set(names) - set(expected) - {"classes_", "feature_names_in_"}
    if unexpected:
        raise ModelFileError(
            f"{path!r} holds entries that a model file does not have: {sorted(unexpected)}."
        )
    missing = set(expected) - set(names)
    if missing:
        raise ModelFileError(f"{path!r} lacks the entries {sorted(missing)}.")
    if set(names) != set(meta["arrays"]):
        raise ModelFileError(f"{path!r}: the entries disagree with the declared ones.")


def _check_arrays(meta, arrays, path):
    expected = _expected_arrays(meta, path)
    for name, a in arrays.items():
        declared = meta["arrays"][name]
        if a.dtype.str != declared.get("dtype") or list(a.shape) != declared.get("shape"):
            raise ModelFileError(
                f"{path!r}: entry {name} has dtype {a.dtype.str} and shape {list(a.shape)}, "
                f"but the file declares {declared.get('dtype')} and {declared.get('shape')}."
            )
        if name in expected and a.shape != expected[name]:
            raise ModelFileError(
                f"{path!r}: entry {name} has shape {a.shape}, but the architecture "
                f"implies {expected[name]}."
            )
    dtypes = {arrays[n].dtype for n in expected if n != "hash_seeds_"}
    if len(dtypes) != 1 or dtypes.pop() not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ModelFileError(f"{path!r}: parameters must all be float32 or all float64.")
    if arrays["hash_seeds_"].dtype != np.uint32:
        raise ModelFileError(f"{path!r}: hash_seeds_ must be uint32.")
    if meta.get("sha256") != _digest(arrays):
        raise ModelFileError(
            f"{path!r}: the arrays' checksum does not match the one recorded: the file "
            "was modified or corrupted after it was written."
        )
    if not all(np.isfinite(arrays[n]).all() for n in expected if n != "hash_seeds_"):
        raise ModelFileError(f"{path!r}: the parameters hold NaN or infinity.")


def _build_model(meta, arrays, path):
    cls = _ESTIMATORS[meta["estimator"]]
    params = dict(meta["params"])
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    try:
        model = cls(**params)
        model._validate_params()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path!r}: invalid estimator parameters: {exc}") from exc

    fitted = meta["fitted"]
    n_layers = len(fitted["_layer_units_"]) - 1
    for name in META_ATTRIBUTES:
        if name in fitted:
            setattr(model, name, fitted[name])
    model._no_improvement_count = fitted.get("_no_improvement_count", 0)
    _check_hash_shards(model, n_layers, path)
    model.hash_seeds_ = arrays["hash_seeds_"]
    model.bucket_weights_ = [arrays[f"bucket_weights_{i}"] for i in range(n_layers)]
    model.intercepts_ = [arrays[f"intercepts_{i}"] for i in range(n_layers)]
    if model._keeps_best_parameters():  # what a warm start with early stopping restores
        model._best_bucket_weights = [w.copy() for w in model.bucket_weights_]
        model._best_intercepts = [b.copy() for b in model.intercepts_]
    object_arrays = meta.get("object_arrays", [])
    if not isinstance(object_arrays, list):
        raise ModelFileError(f"{path!r}: object_arrays must be a list.")
    for name in ("classes_", "feature_names_in_"):
        if name in arrays and name in object_arrays:
            arrays[name] = arrays[name].astype(object)
    if "feature_names_in_" in arrays:
        model.feature_names_in_ = arrays["feature_names_in_"]

    if cls is HashedMLPClassifier:
        if "classes_" not in arrays or "y_type" not in fitted:
            raise ModelFileError(f"{path!r}: a classifier file needs classes_ and y_type.")
        model._label_binarizer = _label_binarizer(arrays["classes_"], fitted["y_type"], path)
        model.classes_ = model._label_binarizer.classes_
        multilabel = fitted["y_type"] == "multilabel-indicator"
        n_expected = len(model.classes_) if multilabel or len(model.classes_) > 2 else 1
        if model.n_outputs_ != n_expected:
            raise ModelFileError(f"{path!r}: classes_ and n_outputs_ disagree.")

    optimizer = meta.get("optimizer")
    if optimizer is not None:
        params_list = model.bucket_weights_ + model.intercepts_
        opt = model._new_optimizer(optimizer["kind"], params_list)
        state_arrays = {
            kind: [arrays[f"optimizer_{kind}_{k}"] for k in range(len(params_list))]
            for kind in opt.state_arrays
        }
        opt.set_state(optimizer, state_arrays)
        model._optimizer = opt
    return model


def _check_hash_shards(model, n_layers, path):
    """A file of hash version 2 or later has one shard count per layer (version 1: none)."""
    if model.hash_spec_version_ == 1:
        return
    shards = getattr(model, "hash_shards_", None)
    if not (
        isinstance(shards, list)
        and len(shards) == n_layers
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shards)
    ):
        raise ModelFileError(f"{path!r}: hash_shards_ must hold one int >= 1 per layer.")


def _label_binarizer(classes, y_type, path):
    if y_type == "multilabel-indicator":
        binarizer = LabelBinarizer().fit(np.eye(len(classes), dtype=int))
    elif y_type in ("binary", "multiclass"):
        binarizer = LabelBinarizer().fit(classes)
    else:
        raise ModelFileError(f"{path!r}: unknown target type {y_type!r}.")
    if binarizer.y_type_ != y_type or not np.array_equal(binarizer.classes_, classes):
        raise ModelFileError(f"{path!r}: classes_ do not match the target type {y_type!r}.")
    return binarizer
