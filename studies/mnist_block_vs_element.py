"""Block against element hashing on MNIST (784-1000-10), compression 1/8 and 1/64.

Usage::

    python studies/mnist_block_vs_element.py [--mnist ../shared/data/mnist] [--max-iter 30]

Trains ``HashedMLPClassifier`` with each hashing at each compression on the
60,000 training images (early stopping on a held-out twelfth) and prints test
accuracy on the 10,000 test images, with fit time, as a markdown table.
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning

from sk_hashednets import HashedMLPClassifier
from sk_hashednets.datasets import DATA_DIR_ENV, load_idx


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    default = Path(os.environ.get(DATA_DIR_ENV, default))
    parser.add_argument("--mnist", type=Path, default=default.resolve())
    parser.add_argument("--max-iter", type=int, default=30)
    parser.add_argument("--compression", type=float, nargs="+", default=[1 / 8, 1 / 64])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        mnist = load_idx(args.mnist)
    except (OSError, ValueError) as error:
        sys.exit(f"MNIST not found or unreadable in {args.mnist} ({error}); pass --mnist DIR.")
    X_train, y_train, X_test, y_test = mnist.X_train, mnist.y_train, mnist.X_test, mnist.y_test
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    print(f"command: python {' '.join(sys.argv)}")
    print("| compression | hashing | test accuracy (%) | epochs | fit time (s) |")
    print("|---:|---|---:|---:|---:|")
    for compression in args.compression:
        accuracy = {}
        for hashing in ("element", "block"):
            clf = HashedMLPClassifier(
                hidden_layer_sizes=(1000,),
                compression=compression,
                hashing=hashing,
                batch_size=128,
                max_iter=args.max_iter,
                early_stopping=True,
                validation_fraction=1 / 12,
                n_iter_no_change=5,
                random_state=args.seed,
            )
            start = time.perf_counter()
            clf.fit(X_train, y_train)
            seconds = time.perf_counter() - start
            accuracy[hashing] = 100 * clf.score(X_test, y_test)
            print(
                f"| 1/{round(1 / compression)} | {hashing} | {accuracy[hashing]:.2f} | "
                f"{clf.n_iter_} | {seconds:.0f} |",
                flush=True,
            )
        print(
            f"| 1/{round(1 / compression)} | block - element | "
            f"{accuracy['block'] - accuracy['element']:+.2f} | | |",
            flush=True,
        )


if __name__ == "__main__":
    main()
