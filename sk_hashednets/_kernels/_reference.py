"""Plain-NumPy reference: materialise the virtual matrices, then do it by the book.

Slow and memory-hungry on purpose: this is what the fast kernels are tested
against, written so that each line can be checked by eye.
"""

import numpy as np
from scipy.special import expit, xlogy

from ._hashing import hash_pairs


def materialize(
    bucket_weights,
    seed,
    n_in,
    n_out,
    sign_hash=True,
    row_start=0,
    row_stop=None,
    hashing="element",
    n_shards=1,
    shard_layout="cyclic",
):
    """Rows ``row_start:row_stop`` of the virtual matrix ``W[i, j] = s * w[h]``.

    Parameters
    ----------
    bucket_weights : ndarray of shape (n_buckets,)
    seed : int
    n_in, n_out : int
        Shape of the whole virtual matrix.
    sign_hash : bool, default=True
    row_start, row_stop : int
        Rows to materialise; ``row_stop=None`` means ``n_in``.
    hashing : {"element", "block"}, default="element"
    n_shards : int, default=1
        Shards of the hash, splitting the ``n_in`` rows.
    shard_layout : {"cyclic", "contiguous"}, default="cyclic"
        How the shards take the rows (``_hashing.hash_pairs``).

    Returns
    -------
    W : ndarray of shape (row_stop - row_start, n_out)
    """
    row_stop = n_in if row_stop is None else row_stop
    rows = np.arange(row_start, row_stop, dtype=np.uint64)[:, None]
    cols = np.arange(n_out, dtype=np.uint64)[None, :]
    bucket, sign = hash_pairs(
        seed, rows, cols, len(bucket_weights), hashing, n_shards, n_in, shard_layout
    )
    W = bucket_weights[bucket]
    if sign_hash:
        W = W * sign.astype(W.dtype)
    return W


def bucket_grad(
    virtual_grad,
    seed,
    n_buckets,
    sign_hash=True,
    row_start=0,
    hashing="element",
    n_shards=1,
    n_rows=None,
    shard_layout="cyclic",
):
    """Signed sum of virtual-weight gradients per bucket, in float64.

    Parameters
    ----------
    virtual_grad : ndarray of shape (n_rows, n_out)
        Gradient with respect to rows ``row_start:row_start + n_rows``.
    seed, n_buckets : int
    sign_hash : bool, default=True
    row_start : int, default=0
    hashing : {"element", "block"}, default="element"
    n_shards : int, default=1
    n_rows : int, default=None
        Rows of the whole virtual matrix; needed when ``n_shards > 1``.
    shard_layout : {"cyclic", "contiguous"}, default="cyclic"

    Returns
    -------
    grad : ndarray of shape (n_buckets,), float64
    """
    bucket, weights = _signed_entries(
        virtual_grad.astype(np.float64),
        seed,
        n_buckets,
        sign_hash,
        row_start,
        hashing,
        n_shards,
        n_rows,
        shard_layout,
    )
    return np.bincount(bucket, weights=weights, minlength=n_buckets)


def bucket_grad_in_row_order(
    virtual_grad,
    seed,
    bucket_grad,
    sign_hash,
    row_start,
    hashing,
    n_shards,
    n_rows,
    shard_layout="cyclic",
):
    """``bucket_grad[h] += s * g`` one entry after the other, in row-major order, in place.

    The order of additions of the sharded scatter (each bucket receives its
    entries row by row, column by column), in the dtype of ``bucket_grad``:
    the kernels' result bit for bit.

    Parameters
    ----------
    virtual_grad : ndarray of shape (n_tile_rows, n_out)
        Gradient with respect to rows ``row_start:row_start + n_tile_rows``.
    seed : int
    bucket_grad : ndarray of shape (n_buckets,)
        Accumulated into.
    sign_hash : bool
    row_start : int
    hashing : {"element", "block"}
    n_shards, n_rows : int
    shard_layout : {"cyclic", "contiguous"}, default="cyclic"
    """
    bucket, weights = _signed_entries(
        virtual_grad,
        seed,
        len(bucket_grad),
        sign_hash,
        row_start,
        hashing,
        n_shards,
        n_rows,
        shard_layout,
    )
    np.add.at(bucket_grad, bucket, weights.astype(bucket_grad.dtype))


def _signed_entries(
    virtual_grad, seed, n_buckets, sign_hash, row_start, hashing, n_shards, n_rows, shard_layout
):
    """Bucket and signed value of every entry of a gradient tile, in row-major order."""
    n_tile_rows, n_out = virtual_grad.shape
    rows = np.arange(row_start, row_start + n_tile_rows, dtype=np.uint64)[:, None]
    cols = np.arange(n_out, dtype=np.uint64)[None, :]
    bucket, sign = hash_pairs(seed, rows, cols, n_buckets, hashing, n_shards, n_rows, shard_layout)
    weights = virtual_grad * sign if sign_hash else virtual_grad
    return bucket.ravel(), weights.ravel()


def _activate(name, Z):
    if name == "identity":
        return Z
    if name == "relu":
        return np.maximum(Z, 0)
    if name == "tanh":
        return np.tanh(Z)
    if name == "logistic":
        return expit(Z)
    if name == "exp":
        return np.exp(Z)
    if name == "softmax":
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)
    raise ValueError(name)


def _activation_derivative(name, A):
    """d act / d z, written in terms of the activation's output A."""
    return {
        "identity": np.ones_like(A),
        "relu": (A > 0).astype(A.dtype),
        "tanh": 1 - A**2,
        "logistic": A * (1 - A),
    }[name]


def _loss(name, Y, P, sample_weight):
    """Mean loss per sample, the formulas of scikit-learn's MLP."""
    sw = np.ones(len(Y)) if sample_weight is None else sample_weight
    if name == "squared_error":
        per_sample = 0.5 * ((Y - P) ** 2).mean(axis=1)
    elif name == "poisson":
        per_sample = (xlogy(Y, Y / P) - Y + P).sum(axis=1)
    elif name == "log_loss":
        eps = np.finfo(P.dtype).eps
        P = np.clip(P, eps, 1 - eps)
        if P.shape[1] == 1:
            P, Y = np.hstack([1 - P, P]), np.hstack([1 - Y, Y])
        per_sample = -xlogy(Y, P).sum(axis=1)
    elif name == "binary_log_loss":
        eps = np.finfo(P.dtype).eps
        P = np.clip(P, eps, 1 - eps)
        per_sample = -(xlogy(Y, P) + xlogy(1 - Y, 1 - P)).sum(axis=1)
    else:
        raise ValueError(name)
    return np.average(per_sample, weights=sw)


def loss_and_grads(
    X,
    Y,
    bucket_weights,
    intercepts,
    seeds,
    sign_hash,
    activation,
    out_activation,
    loss,
    alpha,
    sample_weight=None,
    hashing="element",
    n_shards=None,
    shard_layout="cyclic",
):
    """Regularised loss and its gradients for a hashed MLP, by the textbook.

    Materialises every virtual matrix, runs the forward pass, backpropagates
    ``d loss / d W`` through dense matrices, then sums it into the buckets.
    The loss and regularisation follow scikit-learn's ``MLPClassifier`` with
    the L2 penalty on the buckets: ``0.5 * alpha * sum(w**2) / sum(sample_weight)``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_outputs)
        Targets (one-hot / indicator for classification).
    bucket_weights, intercepts : list of ndarray
    seeds : sequence of int
        One hash seed per layer.
    sign_hash : bool
    activation, out_activation : str
    loss : str
        "squared_error", "poisson", "log_loss" or "binary_log_loss".
    alpha : float
    sample_weight : ndarray of shape (n_samples,), default=None
    hashing : {"element", "block"}, default="element"
    n_shards : sequence of int, default=None
        Shards of each layer's hash; None: one per layer.
    shard_layout : {"cyclic", "contiguous"}, default="cyclic"
        How the shards take the rows (hash versions 3 and 2).

    Returns
    -------
    loss : float
    bucket_grads, intercept_grads : list of ndarray (float64)
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    n_layers = len(bucket_weights)
    sizes = [X.shape[1]] + [len(b) for b in intercepts]
    n_shards = [1] * n_layers if n_shards is None else list(n_shards)
    Ws = [
        materialize(
            np.asarray(w, np.float64),
            s,
            sizes[k],
            sizes[k + 1],
            sign_hash,
            hashing=hashing,
            n_shards=n_shards[k],
            shard_layout=shard_layout,
        )
        for k, (w, s) in enumerate(zip(bucket_weights, seeds))
    ]
    activations = [X]
    for k in range(n_layers):
        Z = activations[-1] @ Ws[k] + intercepts[k]
        name = out_activation if k == n_layers - 1 else activation
        activations.append(_activate(name, Z))

    sw = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    sw_sum = sw.sum()
    penalty = sum(float(np.dot(w, w)) for w in bucket_weights)
    value = _loss(loss, Y, activations[-1], sample_weight) + 0.5 * alpha * penalty / sw_sum

    # Canonical link: d loss / d z_out = (P - Y) * sw / sw_sum. As in
    # scikit-learn, squared error's loss averages over outputs but its gradient
    # does not: the two agree for a single output.
    delta = (activations[-1] - Y) * sw[:, None]
    bucket_grads = [None] * n_layers
    intercept_grads = [None] * n_layers
    for k in range(n_layers - 1, -1, -1):
        dW = activations[k].T @ delta
        raw = bucket_grad(
            dW,
            seeds[k],
            len(bucket_weights[k]),
            sign_hash,
            0,
            hashing,
            n_shards[k],
            sizes[k],
            shard_layout,
        )
        bucket_grads[k] = (raw + alpha * bucket_weights[k]) / sw_sum
        intercept_grads[k] = delta.sum(axis=0) / sw_sum
        if k > 0:
            delta = (delta @ Ws[k].T) * _activation_derivative(activation, activations[k])
    return value, bucket_grads, intercept_grads
