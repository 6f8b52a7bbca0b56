"""
MNIST: accuracy against compression
===================================

The experiment of the HashedNets paper (Chen et al., 2015) on the real MNIST:
a 784-1000-10 ReLU network hashed at compression 1, 1/2, ..., 1/64, against a
dense :class:`~sklearn.neural_network.MLPClassifier` whose hidden width gives it
the same number of stored parameters, plotted as test accuracy against stored
parameters.

It needs the four MNIST IDX files (``train-images-idx3-ubyte.gz`` and so on) in
a directory, named by ``--mnist`` or by the ``SK_HASHEDNETS_MNIST_DIR``
environment variable; nothing is downloaded. At full scale (all 60,000 training
images, the study's settings) it trains 14 networks, about an hour on two CPU
cores::

    python examples/plot_mnist_compression.py --mnist path/to/mnist

and ``--n-train 5000 --max-iter 5`` gives a rough picture in a minute. The
study behind the figures of :doc:`/results` (three seeds, distillation, the
table) is ``studies/mnist_compression.py``, with the same settings.

This example is shown here, not run at each documentation build: it needs the
MNIST files and more time than a build should take.
"""

# %%
# Settings
# --------
# Those of the study (``studies/mnist_compression.py``; a test keeps the two
# in step): SGD with Nesterov momentum, the learning rate divided by 5 whenever
# the validation score stalls for 3 epochs, early stopping on a held-out
# twelfth of the training images, and dropout on the hidden layer of the hashed
# networks, more of it where more buckets are stored. ``MLPClassifier`` has no
# dropout: the dense networks train with the same settings less ``dropout``.

# Not run in the gallery: its thumbnail is the study's figure, from docs/results.md.
# sphinx_gallery_thumbnail_path = "mnist_compression.png"
import argparse
import time
import warnings

import matplotlib.pyplot as plt
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from sk_hashednets import HashedMLPClassifier
from sk_hashednets.datasets import load_idx

COMMON = {
    "solver": "sgd",
    "learning_rate_init": 0.05,
    "learning_rate": "adaptive",
    "momentum": 0.9,
    "batch_size": 128,
    "max_iter": 120,
    "early_stopping": True,
    "validation_fraction": 1 / 12,
    "n_iter_no_change": 3,
}
HASHED = {**COMMON, "hidden_layer_sizes": (1000,)}
# Dropout by inverse compression.
DROPOUT = {1: 0.5, 2: 0.5, 4: 0.5, 8: 0.5, 16: 0.2, 32: 0.2, 64: 0.2}
COMPRESSIONS = [1, 1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64]


def equivalent_width(n_stored, n_features=784, n_classes=10):
    """Hidden width of the dense network with ``n_stored`` weights and biases."""
    return max(1, round((n_stored - n_classes) / (n_features + 1 + n_classes)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="MNIST: accuracy against compression.")
    parser.add_argument("--mnist", default=None, help="directory of the MNIST IDX files")
    parser.add_argument("--n-train", type=int, default=None, help="use the first N images")
    parser.add_argument("--max-iter", type=int, default=HASHED["max_iter"])
    parser.add_argument("--compressions", type=int, nargs="+", default=None,
                        choices=sorted(DROPOUT),
                        help="inverse ratios, e.g. 8 64 (default: 1 2 4 ... 64)")
    parser.add_argument("--output", default="mnist_compression.png", help="the figure's file")
    return parser.parse_args(argv)


# %%
# Fit and score
# -------------
# For every compression, the hashed network reports its stored parameters
# (``n_stored_params_``: buckets plus dense biases) and the dense twin gets the
# hidden width with as many.


def run(args):
    mnist = load_idx(args.mnist)
    X_train, y_train = mnist.X_train[: args.n_train], mnist.y_train[: args.n_train]
    compressions = [1 / c for c in args.compressions] if args.compressions else COMPRESSIONS
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    rows = []
    for compression in compressions:
        start = time.perf_counter()
        hashed = HashedMLPClassifier(
            **{**HASHED, "max_iter": args.max_iter}, dropout=DROPOUT[round(1 / compression)],
            compression=compression, random_state=0,
        ).fit(X_train, y_train)
        seconds = time.perf_counter() - start
        width = equivalent_width(hashed.n_stored_params_)
        dense = MLPClassifier(
            **{**COMMON, "max_iter": args.max_iter}, hidden_layer_sizes=(width,), random_state=0
        ).fit(X_train, y_train)
        n_dense = sum(W.size for W in dense.coefs_) + sum(b.size for b in dense.intercepts_)
        rows.append(
            (compression, hashed.n_stored_params_, 100 * hashed.score(mnist.X_test, mnist.y_test),
             width, n_dense, 100 * dense.score(mnist.X_test, mnist.y_test), seconds)
        )
        print(f"1/{round(1 / compression):<3} hashed: {rows[-1][1]:>7,} stored, "
              f"{rows[-1][2]:.2f}% ({seconds:.0f} s) | dense 784-{width}-10: "
              f"{n_dense:>7,} stored, {rows[-1][5]:.2f}%", flush=True)
    return rows


# %%
# Plot
# ----


def plot(rows, output):
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r[1] for r in rows], [r[2] for r in rows], "o-", label="hashed 784-1000-10")
    ax.plot([r[4] for r in rows], [r[5] for r in rows], "s--", label="dense, same stored")
    for r in rows:
        ax.annotate(f"1/{round(1 / r[0])}", (r[1], r[2]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("stored parameters")
    ax.set_ylabel("MNIST test accuracy (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    print(f"figure: {output}")
    return fig


if __name__ == "__main__":
    arguments = parse_args()
    plot(run(arguments), arguments.output)
