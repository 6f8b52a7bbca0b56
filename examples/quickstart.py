"""
Quick start: compress a neural network with the hashing trick
==============================================================

Trains :class:`~sk_hashednets.HashedMLPClassifier` on scikit-learn's digits at
several compression ratios, next to scikit-learn's dense ``MLPClassifier`` of
the same (virtual) architecture, and prints a table of test accuracy, stored
parameters and fit time.

Run it with ``python examples/quickstart.py``.
"""

# %%
# Not run in the gallery: its thumbnail is the figure of the same study, plotted.
# sphinx_gallery_thumbnail_path = "auto_examples/images/sphx_glr_plot_compression_001.png"
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from sk_hashednets import HashedMLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")  # float32 is the fast path
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

# %%
# One hidden layer of 256 units: 64 * 256 + 256 * 10 = 18,944 virtual weights.
# At compression c each layer stores ceil(c * n_in * n_out) buckets; biases
# stay dense.


def run(name, model):
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    stored = getattr(model, "n_stored_params_", None)
    if stored is None:  # the dense MLP stores every weight
        stored = sum(c.size for c in model.coefs_) + sum(b.size for b in model.intercepts_)
    accuracy = model.score(X_test, y_test)
    print(f"{name:<22} {stored:>14,} {accuracy:>14.4f} {seconds:>10.2f}")


print(f"{'model':<22} {'stored params':>14} {'test accuracy':>14} {'fit (s)':>10}")
run("MLPClassifier (dense)", MLPClassifier(hidden_layer_sizes=(256,), random_state=0))
for compression in (1, 1 / 4, 1 / 8, 1 / 16, 1 / 64):
    model = HashedMLPClassifier(hidden_layer_sizes=(256,), compression=compression, random_state=0)
    run(f"hashed, 1/{round(1 / compression)}", model)
