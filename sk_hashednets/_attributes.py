"""The fitted attributes of the hashed MLPs, listed once.

One entry per fitted attribute: its name, its numpydoc type and description
(the estimators' ``Attributes`` section is built from them), whether
:meth:`~BaseHashedMLP.to_sklearn` copies it to the dense twin, and how
:func:`sk_hashednets.save` stores it ("meta": a JSON value of the file's
``__meta__``; "array": one or more ``.npz`` arrays, written by the file format
itself; None: rebuilt on load or not stored).
"""

from typing import NamedTuple


class FittedAttribute(NamedTuple):
    """One fitted attribute of the estimators."""

    name: str
    type: str | None
    doc: str | None
    exported: bool
    saved: str | None


#: Every fitted attribute; those with a ``doc`` in the order of the docstrings.
FITTED_ATTRIBUTES = (
    FittedAttribute(
        "loss_",
        "float",
        "The current loss computed with the loss function.",
        True,
        "meta",
    ),
    FittedAttribute(
        "best_loss_",
        "float or None",
        "The minimum loss reached by the solver throughout fitting. None when\n"
        "``early_stopping=True``; only set by the stochastic solvers.",
        True,
        "meta",
    ),
    FittedAttribute(
        "loss_curve_",
        "list of shape (`n_iter_`,)",
        "The loss at the end of each epoch (stochastic solvers).",
        True,
        "meta",
    ),
    FittedAttribute(
        "validation_scores_",
        "list of shape (`n_iter_`,) or None",
        "The score on the validation set at each epoch when\n``early_stopping=True``, else None.",
        True,
        "meta",
    ),
    FittedAttribute(
        "best_validation_score_",
        "float or None",
        "The best validation score when ``early_stopping=True``, else None.",
        True,
        "meta",
    ),
    FittedAttribute(
        "t_",
        "int",
        "The number of training samples seen by the solver.",
        True,
        "meta",
    ),
    FittedAttribute(
        "bucket_weights_",
        "list of ndarray of shape (n_buckets_[i],)",
        "The stored (and trained) weights of each layer.",
        False,
        "array",
    ),
    FittedAttribute(
        "intercepts_",
        "list of ndarray of shape (n_units[i + 1],)",
        "The biases of each layer, stored dense.",
        True,
        "array",
    ),
    FittedAttribute(
        "n_buckets_",
        "list of int",
        "The number of buckets of each layer.",
        False,
        "meta",
    ),
    FittedAttribute(
        "hash_seeds_",
        "ndarray of shape (`n_layers_` - 1,), dtype uint32",
        "The seed of each layer's hash functions.",
        False,
        "array",
    ),
    FittedAttribute(
        "sign_hash_",
        "bool",
        "Whether the fitted virtual weights carry a hashed sign.",
        False,
        "meta",
    ),
    FittedAttribute(
        "hashing_",
        "str",
        "The hashing scheme the model was fitted with.",
        False,
        "meta",
    ),
    FittedAttribute(
        "hash_shards_",
        "list of int",
        "Shards of each layer's hash (``hash_shards`` resolved; 1: unsharded).",
        False,
        "meta",
    ),
    FittedAttribute(
        "hash_spec_version_",
        "int",
        "Version of the hash specification the model was trained with.",
        False,
        "meta",
    ),
    FittedAttribute(
        "n_virtual_params_",
        "int",
        "Virtual weights plus biases: the parameter count of the dense network\n"
        "this one stands for.",
        False,
        "meta",
    ),
    FittedAttribute(
        "n_stored_params_",
        "int",
        "Buckets plus biases: the parameters actually stored and trained.",
        False,
        "meta",
    ),
    FittedAttribute(
        "n_features_in_",
        "int",
        "Number of features seen during fit.",
        True,
        "meta",
    ),
    FittedAttribute(
        "feature_names_in_",
        "ndarray of shape (`n_features_in_`,)",
        "Names of features seen during fit, when X has string feature names.",
        True,
        "array",
    ),
    FittedAttribute(
        "n_iter_",
        "int",
        "The number of iterations the solver has run.",
        True,
        "meta",
    ),
    FittedAttribute(
        "n_layers_",
        "int",
        "Number of layers, input and output included.",
        True,
        "meta",
    ),
    FittedAttribute(
        "n_outputs_",
        "int",
        "Number of outputs.",
        True,
        "meta",
    ),
    FittedAttribute(
        "out_activation_",
        "str",
        "Name of the output activation function.",
        True,
        "meta",
    ),
    FittedAttribute(
        "device_",
        "{'cpu', 'cuda'}",
        "The device the model was last trained on.",
        False,
        "meta",
    ),
    # Documented by the classifier alone; saved as an array with its target type.
    FittedAttribute("classes_", None, None, True, "array"),
    FittedAttribute("_label_binarizer", None, None, True, None),
    # Read by scikit-learn's MLP when a dense twin trains on; saved by the file
    # format itself (an int beside the fitted values).
    FittedAttribute("_no_improvement_count", None, None, True, None),
    FittedAttribute("_layer_units_", None, None, False, "meta"),
)

#: Attributes that a dense scikit-learn MLP shares with ours (``to_sklearn``).
EXPORTED_ATTRIBUTES = tuple(a.name for a in FITTED_ATTRIBUTES if a.exported)

#: Attributes that a model file keeps as JSON values in its ``__meta__``.
META_ATTRIBUTES = tuple(a.name for a in FITTED_ATTRIBUTES if a.saved == "meta")


def attributes_doc():
    """The shared part of the estimators' numpydoc ``Attributes`` section."""
    entries = [
        f"    {a.name} : {a.type}\n" + "".join(f"        {line}\n" for line in a.doc.split("\n"))
        for a in FITTED_ATTRIBUTES
        if a.doc is not None
    ]
    return "\n" + "\n".join(entries)
