"""The network's layout: layer sizes, bucket counts, hash seeds and the hashed layers.

What a fit resolves from the constructor's ``hidden_layer_sizes``,
``compression``, ``n_buckets`` and ``hash_seed``, and the views of the virtual
matrices (:class:`~sk_hashednets._hashed_layer.HashedLayer`) that a fitted
model computes with.
"""

import math
import warnings
from numbers import Integral

import numpy as np
import scipy.sparse as sp

from ._hashed_layer import HashedLayer
from ._kernels import LayerHash
from ._kernels._hashing import (
    READABLE_HASH_SPEC_VERSIONS,
    SHARD_LAYOUTS,
    auto_shards,
    row_shards,
)

#: Largest bucket count the 32-bit hash can address.
MAX_BUCKETS = 2**32 - 1


def hidden_layer_sizes_list(hidden_layer_sizes):
    """The hidden layer sizes as a list of int, checked.

    Parameters
    ----------
    hidden_layer_sizes : int or iterable of int

    Returns
    -------
    sizes : list of int
    """
    sizes = hidden_layer_sizes
    if not hasattr(sizes, "__iter__"):
        sizes = [sizes]
    sizes = list(sizes)
    if not all(isinstance(s, Integral) and not isinstance(s, bool) for s in sizes):
        raise ValueError(f"hidden_layer_sizes must hold integers, got {hidden_layer_sizes!r}.")
    if any(s <= 0 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    return [int(s) for s in sizes]


def resolve_n_buckets(n_buckets, compression, layer_units):
    """Bucket count of each layer, from ``n_buckets`` or ``compression``.

    Parameters
    ----------
    n_buckets : None, int or sequence of int
        The estimator's ``n_buckets``.
    compression : float
        The estimator's ``compression``, used when ``n_buckets`` is None.
    layer_units : list of int
        Units of every layer, input and output included.

    Returns
    -------
    counts : list of int
        One count per layer of weights.
    """
    shapes = list(zip(layer_units[:-1], layer_units[1:]))
    n_virtual = [n_in * n_out for n_in, n_out in shapes]
    if isinstance(n_buckets, (bool, np.bool_)):
        raise ValueError(f"n_buckets must be an int or one int per layer, got {n_buckets!r}.")
    if n_buckets is None:
        counts = [math.ceil(compression * v) for v in n_virtual]
    elif isinstance(n_buckets, Integral):
        # One int for all layers: capped by each layer's size (documented).
        counts = [min(int(n_buckets), v) for v in n_virtual]
    else:
        counts = list(n_buckets)
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


def resolve_hash_shards(hash_shards, layer_units, n_buckets):
    """Shards of each layer's hash, from the estimator's ``hash_shards``.

    Parameters
    ----------
    hash_shards : {None, "auto"} or int
        None: one shard per layer (the unsharded hash). "auto": per layer
        ``auto_shards(n_in, K)``. An int: that many, capped by each layer's
        rows and buckets (every shard needs one of each), as documented.
    layer_units : list of int
    n_buckets : list of int
        The layers' resolved bucket counts.

    Returns
    -------
    n_shards : list of int
        One per layer; a function of the shapes and bucket counts only.
    """
    rows = layer_units[:-1]
    if hash_shards is None:
        return [1] * len(rows)
    if hash_shards == "auto":
        return [auto_shards(n_in, k) for n_in, k in zip(rows, n_buckets)]
    return [min(int(hash_shards), n_in, k) for n_in, k in zip(rows, n_buckets)]


def fitted_hash_shards(model):
    """The shards of each layer of a fitted model: one per layer under hash version 1.

    Parameters
    ----------
    model : BaseHashedMLP
        A model whose layout is fitted.

    Returns
    -------
    n_shards : list of int
    """
    if model.hash_spec_version_ == 1:  # before shards: models fitted then have no hash_shards_
        return [1] * (len(model._layer_units_) - 1)
    return [int(s) for s in model.hash_shards_]


def fitted_shard_layout(model):
    """How the shards of a fitted model take the rows: its hash version's layout.

    Parameters
    ----------
    model : BaseHashedMLP
        A model whose layout is fitted.

    Returns
    -------
    layout : {"cyclic", "contiguous"}
        ``_hashing.SHARD_LAYOUTS[model.hash_spec_version_]``: "cyclic" from
        version 3 on, "contiguous" in version 2 (and in version 1, which has
        one shard).

    Raises
    ------
    ValueError
        If this package does not implement the model's hash version.
    """
    if model.hash_spec_version_ not in READABLE_HASH_SPEC_VERSIONS:
        # Another specification maps the same buckets to other virtual
        # weights: computing with it would silently give another network.
        raise ValueError(
            f"This model was trained with hash specification version "
            f"{model.hash_spec_version_}, but this sk_hashednets implements versions "
            f"{READABLE_HASH_SPEC_VERSIONS}. Use the sk_hashednets release that trained it."
        )
    return SHARD_LAYOUTS[model.hash_spec_version_]


#: A first-layer shard whose inputs carry less than this fraction of an even
#: share of the training data's energy is idle: its buckets barely train.
IDLE_SHARD_SHARE = 0.1
#: Samples below which the shards' shares are not judged (a first
#: ``partial_fit`` batch of a few sparse rows says little about the data): the
#: features' energy is summed over the calls that follow until there are as many.
IDLE_SHARD_MIN_SAMPLES = 64


def first_layer_shard_shares(X, n_shards, shard_layout):
    """Each first-layer shard's share of the energy of ``X``, 1 being an even share.

    A shard's buckets are trained only through the input features of its rows
    (``docs/hashing.md``, "Sharded hashing"): its share of the features' energy,
    the sum of their squared values, says how much of a training signal they get.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    n_shards : int
    shard_layout : {"cyclic", "contiguous"}

    Returns
    -------
    shares : ndarray of shape (n_shards,), or None
        None where ``X`` is all zeros, or its energy overflows float64.
    """
    return shard_energy_shares(feature_energy(X), n_shards, shard_layout)


def feature_energy(X):
    """Each input feature's energy in ``X``: the sum of its squared values, in float64.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)

    Returns
    -------
    energy : ndarray of shape (n_features,)
    """
    if sp.issparse(X):
        X = X.tocsr()  # no copy when it is CSR already; its data indexed by feature
        data = X.data.astype(np.float64)
        return np.bincount(X.indices, weights=data * data, minlength=X.shape[1])
    return np.einsum("ij,ij->j", X, X, dtype=np.float64)


def shard_energy_shares(energy, n_shards, shard_layout):
    """Each shard's share of the rows' ``energy``, 1 being an even share.

    Parameters
    ----------
    energy : ndarray of shape (n_rows,)
        Per row of the virtual matrix (input feature), its sum of squared values.
    n_shards : int
    shard_layout : {"cyclic", "contiguous"}

    Returns
    -------
    shares : ndarray of shape (n_shards,), or None
        None where the energy is all zero, or not finite.
    """
    total = energy.sum()
    if not (np.isfinite(total) and total > 0):
        return None
    shard = row_shards(len(energy), n_shards, shard_layout)
    return np.bincount(shard, weights=energy, minlength=n_shards) / total * n_shards


def warn_about_idle_shards(model, X, first_pass):
    """Warn where a first-layer shard's inputs are all but silent in the training data.

    Such a shard's buckets barely train: the network has fewer weights than
    it stores, and nothing else would say so. Under the cyclic layout this
    happens to inputs whose activity repeats with a period close to a
    multiple or a fraction of the shard count: image rows of 32 pixels with
    dark borders and 16, 31, 32, 33 or 64 shards (17 are fine).

    A model's shards are judged once, on the data of its first fit or
    ``partial_fit`` call, or, where that has fewer than
    ``IDLE_SHARD_MIN_SAMPLES`` samples (a first ``partial_fit`` batch), on
    the data of the calls that follow until they have as many: their
    features' energy is kept summed meanwhile (``_idle_shard_energy``, a
    float per feature, dropped once judged; pickled, but not kept by
    ``sk_hashednets.save``, so a model loaded from such a file is not judged).

    Parameters
    ----------
    model : BaseHashedMLP
        A model whose layout is fitted.
    X : {ndarray, sparse matrix}
        The call's training data.
    first_pass : bool
        Whether the call fitted the layout anew.
    """
    if first_pass:  # a new count
        model.__dict__.pop("_idle_shard_energy", None)
        pending = (0.0, 0)
    else:
        pending = getattr(model, "_idle_shard_energy", None)
        if pending is None:  # judged already
            return
    n_shards = fitted_hash_shards(model)[0]
    if n_shards == 1:
        return
    energy, n_samples = feature_energy(X) + pending[0], X.shape[0] + pending[1]
    if n_samples < IDLE_SHARD_MIN_SAMPLES:
        model._idle_shard_energy = (energy, n_samples)
        return
    model.__dict__.pop("_idle_shard_energy", None)
    shares = shard_energy_shares(energy, n_shards, fitted_shard_layout(model))
    if shares is None:
        return
    idle = np.flatnonzero(shares < IDLE_SHARD_SHARE)
    if idle.size:
        listed = ", ".join(map(str, idle[:8])) + (", ..." if idle.size > 8 else "")
        warnings.warn(
            f"{idle.size} of the first layer's {n_shards} hash shards ({listed}) read input "
            f"features that carry less than {IDLE_SHARD_SHARE:.0%} of an even share of the "
            f"training data's energy (sum of squared values): their buckets will barely "
            f"train. Shard s takes features s, s + {n_shards}, s + {2 * n_shards}, ...: "
            f"features whose activity repeats with a period close to a multiple or a "
            f"fraction of {n_shards} (image rows with empty borders: 32-pixel rows and "
            f"16, 31, 32, 33 or 64 shards) do this, and so do features on very different "
            f"scales (standardise them). Set hash_shards to another int (this check runs "
            f"on every fit), or hash_shards=None.",
            UserWarning,
            stacklevel=5,  # the caller of fit (through scikit-learn's fit wrapper)
        )


def layer_hash(model, layer):
    """The :class:`LayerHash` of a fitted model's layer: its seed, scheme, buckets and shards.

    Parameters
    ----------
    model : BaseHashedMLP
        A model whose layout is fitted.
    layer : int

    Returns
    -------
    layer_hash : LayerHash
    """
    return LayerHash.for_layer(
        int(model.hash_seeds_[layer]),
        sign_hash=model.sign_hash_,
        hashing=model.hashing_,
        n_buckets=int(model.n_buckets_[layer]),
        n_shards=fitted_hash_shards(model)[layer],
        n_rows=int(model._layer_units_[layer]),
        shard_layout=fitted_shard_layout(model),
    )


def draw_hash_seeds(hash_seed, random_state, n_layers):
    """One distinct 32-bit seed per layer.

    Parameters
    ----------
    hash_seed : int or None
        The estimator's ``hash_seed``; None draws from ``random_state``.
    random_state : RandomState
        The fit's random state.
    n_layers : int
        Layers of weights.

    Returns
    -------
    seeds : ndarray of shape (n_layers,), dtype uint32
    """
    if hash_seed is None:
        rng = random_state
    else:
        rng = np.random.RandomState(hash_seed)
    seeds = []
    while len(seeds) < n_layers:
        seed = int(rng.randint(0, 2**32, dtype=np.uint64))
        if seed not in seeds:
            seeds.append(seed)
    return np.asarray(seeds, dtype=np.uint32)


def hashed_layers(model, backend, dtype, training=False, index_store=None):
    """Views of a fitted model's virtual matrices, built per call (never pickled).

    Layers built for training keep their bucket index tiles when they fit
    in one tile (``HashedLayer``'s ``keep_index``): a fit hashes each such
    matrix once, not twice per step, and with an ``index_store`` once over
    all the ``partial_fit`` calls that use it (``_index_store``).

    Parameters
    ----------
    model : BaseHashedMLP
        A model whose layout is fitted (``_initialize`` has run).
    backend : object
        The device backend the layers compute on.
    dtype : dtype
    training : bool, default=False
    index_store : IndexStore, default=None
        Where training layers take their bucket indexes from.

    Returns
    -------
    layers : list of HashedLayer
    """
    shard_layout = fitted_shard_layout(model)
    units = model._layer_units_
    return [
        HashedLayer(
            backend,
            units[i],
            units[i + 1],
            int(model.hash_seeds_[i]),
            model.sign_hash_,
            dtype,
            model.max_tile_bytes,
            model.hashing_,
            n_buckets=model.n_buckets_[i],
            keep_index=training,
            index_store=index_store,
            n_shards=fitted_hash_shards(model)[i],
            shard_layout=shard_layout,
        )
        for i in range(model.n_layers_ - 1)
    ]
