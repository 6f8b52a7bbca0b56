"""
Accuracy against compression
============================

Trains :class:`~sk_hashednets.HashedMLPClassifier` on scikit-learn's digits at
compression 1, 1/2, ..., 1/64, and next to each a dense
:class:`~sklearn.neural_network.MLPClassifier` with about as many stored
parameters, and plots test accuracy against stored parameters.

The hashed networks keep their virtual architecture, 64-128-10, and store fewer
and fewer buckets; a dense network can only shrink by dropping hidden units.
This is a small data set and short fits (60 epochs each, nothing tuned): it
shows the shape of the trade-off, not the accuracy you will get on your data.
To measure that, see :doc:`/compression`.

Run it with ``python examples/plot_compression.py``.
"""

# %%
# Data and models
# ---------------
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from sk_hashednets import HashedMLPClassifier
from sk_hashednets.plotting import plot_loss_curve

# 60 epochs, a fixed budget for every model: some stop short of convergence.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)  # float32 is the fast path
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, random_state=0, stratify=y
)

HIDDEN = 128
TRAINING = dict(max_iter=60, batch_size=256, learning_rate_init=0.005, random_state=0)
n_features, n_classes = X.shape[1], len(np.unique(y))


def fraction(compression):
    return "1" if compression == 1 else f"1/{round(1 / compression)}"


def dense_params(hidden):
    """Weights and biases of a dense 64-hidden-10 network."""
    return n_features * hidden + hidden + hidden * n_classes + n_classes


# %%
# Fit and score
# -------------
# For each compression, the hashed network stores ``n_stored_params_``
# parameters (buckets plus dense biases); the dense network gets the hidden
# layer that gives it about as many.

start = time.perf_counter()
compressions = [1, 1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64]
hashed, dense = [], []
print(f"{'compression':>11} | {'hashed: stored':>14} {'accuracy':>8} | "
      f"{'dense: hidden':>13} {'stored':>6} {'accuracy':>8}")
for compression in compressions:
    model = HashedMLPClassifier(
        hidden_layer_sizes=(HIDDEN,), compression=compression, **TRAINING
    ).fit(X_train, y_train)
    hashed.append((model.n_stored_params_, model.score(X_test, y_test), model))

    hidden = max(1, round((model.n_stored_params_ - n_classes) / (n_features + 1 + n_classes)))
    twin = MLPClassifier(hidden_layer_sizes=(hidden,), **TRAINING).fit(X_train, y_train)
    dense.append((dense_params(hidden), twin.score(X_test, y_test)))
    print(f"{fraction(compression):>11} | {hashed[-1][0]:>14,} {hashed[-1][1]:>8.4f} | "
          f"{hidden:>13} {dense[-1][0]:>6,} {dense[-1][1]:>8.4f}")
print(f"{len(compressions) * 2} fits in {time.perf_counter() - start:.1f} s")

# %%
# Accuracy against stored parameters
# -----------------------------------

fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
ax.plot([s for s, _, _ in hashed], [a for _, a, _ in hashed], "o-",
        label=f"hashed 64-{HIDDEN}-10, compression 1 to 1/64")
ax.plot([s for s, _ in dense], [a for _, a in dense], "s--",
        label="dense MLPClassifier, narrower hidden layer")
for compression, (stored, accuracy, _) in zip(compressions, hashed):
    ax.annotate(fraction(compression), (stored, accuracy), textcoords="offset points",
                xytext=(0, -14), ha="center", fontsize=8)
ax.set_xscale("log")
ax.set_xlabel("stored parameters (log scale)")
ax.set_ylabel("test accuracy")
ax.set_title("Digits: accuracy against stored parameters")
ax.grid(True, which="both", alpha=0.3)
ax.legend(loc="lower right")
plt.show()

# %%
# At the weakest compressions both kinds of network have parameters to spare.
# At the strongest, the hashed network keeps its 128 virtual hidden units while
# the dense network of the same size is down to a handful.
#
# Training curves
# ---------------
# :func:`~sk_hashednets.plotting.plot_loss_curve` draws a model's
# ``loss_curve_``: here at compression 1/8 and 1/64.

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained", sharey=True)
for ax, index in zip(axes, [compressions.index(1 / 8), compressions.index(1 / 64)]):
    plot_loss_curve(hashed[index][2], ax=ax)
    ax.set_title(f"hashed, compression {fraction(compressions[index])}")
plt.show()
