"""Test accuracy on scikit-learn's digits at compressions 1/8 and 1/64, default settings.

The study the test suite used to run (200 epochs of adam at the default learning
rate, 30 to 80 s); ``tests/test_estimators.py::test_digits_accuracy`` now checks
the same thresholds with 20 epochs at learning rate 0.01. Prints the command,
each accuracy against its threshold, and exits 1 if one falls short.

    python studies/digits_accuracy.py
"""

import os
import sys
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sk_hashednets import HashedMLPClassifier

THRESHOLDS = {1 / 8: 0.96, 1 / 64: 0.90}


def main():
    print("$ python " + " ".join(sys.argv), f"(load average {os.getloadavg()[0]:.2f})")
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    short = False
    for compression, threshold in THRESHOLDS.items():
        clf = HashedMLPClassifier(
            hidden_layer_sizes=(256,), compression=compression, random_state=0
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        accuracy = clf.score(X_test, y_test)
        short |= accuracy < threshold
        print(
            f"compression 1/{round(1 / compression)}: accuracy {accuracy:.4f} "
            f"(threshold {threshold}), {clf.n_iter_} epochs, {seconds:.1f} s"
        )
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main())
