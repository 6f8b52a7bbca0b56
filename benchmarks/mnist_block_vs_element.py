"""Block against element hashing on MNIST (784-1000-10), compression 1/8 and 1/64.

Usage::

    python benchmarks/mnist_block_vs_element.py [--mnist ../shared/data/mnist] [--max-iter 30]

Trains ``HashedMLPClassifier`` with each hashing at each compression on the
60,000 training images (early stopping on a held-out twelfth) and prints test
accuracy on the 10,000 test images, with fit time, as a markdown table.
"""

import argparse
import gzip
import struct
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sk_hashednets import HashedMLPClassifier


def read_idx(path):
    """Read one gzipped IDX file (images: magic 2051, labels: magic 2049)."""
    with gzip.open(path, "rb") as f:
        magic, count = struct.unpack(">II", f.read(8))
        if magic == 2051:
            rows, cols = struct.unpack(">II", f.read(8))
            data = np.frombuffer(f.read(), dtype=np.uint8).reshape(count, rows * cols)
        elif magic == 2049:
            data = np.frombuffer(f.read(), dtype=np.uint8)
        else:
            raise ValueError(f"{path}: unknown IDX magic number {magic}.")
    if len(data) != count:
        raise ValueError(f"{path}: header says {count} items, file holds {len(data)}.")
    return data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"
    parser.add_argument("--mnist", type=Path, default=default.resolve())
    parser.add_argument("--max-iter", type=int, default=30)
    parser.add_argument("--compression", type=float, nargs="+", default=[1 / 8, 1 / 64])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.mnist / "train-images-idx3-ubyte.gz").exists():
        sys.exit(f"MNIST not found in {args.mnist}; pass --mnist DIR.")

    X_train = read_idx(args.mnist / "train-images-idx3-ubyte.gz").astype(np.float32) / 255
    y_train = read_idx(args.mnist / "train-labels-idx1-ubyte.gz")
    X_test = read_idx(args.mnist / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255
    y_test = read_idx(args.mnist / "t10k-labels-idx1-ubyte.gz")
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
