"""
A virtual weight matrix and its buckets
=======================================

A hashed layer stores a short vector ``w`` of ``K`` bucket weights and reads its
``n_in x n_out`` weight matrix from it: ``W[i, j] = s(i, j) * w[h(i, j)]``,
where the bucket ``h(i, j)`` and the sign ``s(i, j)`` are hash functions of the
layer's seed (see :doc:`/hashing`). This example fits a tiny
:class:`~sk_hashednets.HashedMLPClassifier` and draws its first layer: the
buckets, which bucket each virtual weight reads, and the virtual matrix that the
network computes with, for element hashing and for block hashing.

Run it with ``python examples/plot_virtual_matrix.py``.
"""

# %%
# A tiny model
# ------------
# Six features and 20 hidden units: the first layer is a 6 x 20 virtual matrix,
# 120 weights, stored at compression 1/8 in ``ceil(120 / 8) = 15`` buckets. One
# ``partial_fit`` pass is enough here: the buckets keep (almost) their random
# initial values, and the picture is about where they go, not what they learn.
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from sklearn.datasets import make_classification

from sk_hashednets import HashedMLPClassifier
from sk_hashednets._kernels._hashing import hash_pairs
from sk_hashednets.plotting import plot_bucket_usage

X, y = make_classification(n_samples=100, n_features=6, n_informative=4, random_state=0)
X = X.astype(np.float32)  # float32 is the fast path


def fit_once(hashing, hidden=20, compression=1 / 8, data=(X, y)):
    model = HashedMLPClassifier(
        hidden_layer_sizes=(hidden,), compression=compression, hashing=hashing, random_state=0
    )
    return model.partial_fit(*data, classes=np.unique(data[1]))


clf = fit_once("element")
print("buckets per layer:", clf.n_buckets_, " hash seeds:", clf.hash_seeds_)
print("stored parameters:", clf.n_stored_params_, " virtual parameters:", clf.n_virtual_params_)

# %%
# Buckets, bucket map and virtual matrix
# --------------------------------------
# ``virtual_coefs()`` materialises the virtual matrices (for inspection: the
# estimator itself never holds them whole). ``hash_pairs`` evaluates the hash
# specification: for every entry (i, j), its bucket and its sign. Together with
# the stored buckets they give back the virtual matrix exactly.


def layer_parts(model, layer=0):
    W = model.virtual_coefs()[layer]
    w = model.bucket_weights_[layer]
    rows, cols = np.indices(W.shape)
    bucket, sign = hash_pairs(
        int(model.hash_seeds_[layer]), rows, cols, int(model.n_buckets_[layer]), model.hashing_
    )
    if not model.sign_hash_:
        sign = np.ones_like(sign)
    np.testing.assert_array_equal(W, sign * w[bucket])  # W[i, j] = s(i, j) * w[h(i, j)]
    return w, bucket, sign, W


def draw_layer(model, title):
    w, bucket, sign, W = layer_parts(model)
    K = w.size
    colors = ListedColormap(plt.get_cmap("tab20")(np.arange(K) % 20))
    limit = np.abs(W).max()
    fig = plt.figure(figsize=(11, 4.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 3])
    ax_w = top.subplots()
    ax_h, ax_W = bottom.subplots(1, 2)

    ax_w.imshow(np.arange(K)[None, :], cmap=colors, vmin=-0.5, vmax=K - 0.5, aspect="auto")
    for b, value in enumerate(w):
        ax_w.text(b, 0, f"{b}\n{value:+.2f}", ha="center", va="center", fontsize=8)
    ax_w.set_yticks([])
    ax_w.set_xticks([])
    ax_w.set_title(f"stored: the {K} bucket weights w (index and value)")

    ax_h.imshow(bucket, cmap=colors, vmin=-0.5, vmax=K - 0.5)
    for (i, j), b in np.ndenumerate(bucket):
        mark = "-" if sign[i, j] < 0 else ""
        ax_h.text(j, i, f"{mark}{b}", ha="center", va="center", fontsize=7)
    ax_h.set_title("bucket h(i, j), '-' where s(i, j) = -1")

    image = ax_W.imshow(W, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax_W.set_title("virtual matrix W[i, j] = s(i, j) w[h(i, j)]")
    bottom.colorbar(image, ax=ax_W, shrink=0.8)
    for ax in (ax_h, ax_W):
        ax.set_xticks(range(0, W.shape[1], 2))
        ax.set_yticks(range(W.shape[0]))
        ax.set_xlabel("output unit j")
        ax.set_ylabel("input unit i")
    fig.suptitle(title)
    return fig


draw_layer(clf, "Element hashing: each of the 120 virtual weights is hashed on its own")
plt.show()

# %%
# Every colour of the bucket map is one stored weight: its entries share one
# magnitude in the virtual matrix, and the sign hash flips about half of them,
# so that the collisions in a bucket cancel on average instead of adding up.
#
# Block hashing
# -------------
# With ``hashing="block"``, runs of 16 consecutive weights of a row read 16
# consecutive buckets (modulo ``K``) from one hashed start, each with its own
# hashed sign: two hashes per block of 16 instead of two per weight. Here a row
# of 20 is a block of 16 and a partial block of 4. The buckets are the same as
# above (same ``random_state``); only the map from entries to buckets changes.

block = fit_once("block")
draw_layer(block, "Block hashing: runs of 16 weights of a row read consecutive buckets")
plt.show()

# %%
# How evenly are the buckets used?
# --------------------------------
# :func:`~sk_hashednets.plotting.plot_bucket_usage` counts the virtual weights
# that share each bucket and draws the binomial distribution that independent,
# uniform hashing would give. On a layer big enough for a histogram, 64 x 256
# at compression 1/64 (16,384 virtual weights in 256 buckets, 64 per bucket on
# average), both schemes stay close to it.

wide_data = make_classification(n_samples=200, n_features=64, n_informative=10,
                                  n_classes=4, random_state=0)
wide_data = (wide_data[0].astype(np.float32), wide_data[1])
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained", sharey=True)
for ax, hashing in zip(axes, ["element", "block"]):
    wide = fit_once(hashing, hidden=256, compression=1 / 64, data=wide_data)
    plot_bucket_usage(wide, layer=0, ax=ax)
    ax.set_title(f"{hashing} hashing: 64 x 256 layer, 256 buckets")
plt.show()
