"""Pilot runs that chose the MNIST study's settings: one 784-1000-10 hashed network per setting.

Usage::

    python studies/mnist_pilot.py '{"compression": 0.125, "dropout": 0.5, ...}' ...
        [--teacher teacher.joblib] [--results studies/results/mnist_pilot.jsonl]

Each argument is a JSON object of ``HashedMLPClassifier`` parameters, laid over
``hidden_layer_sizes=(1000,)``, ``batch_size=128``, early stopping on a held-out
twelfth and ``random_state=0``. Every run appends one line to the results file:
the parameters, the best validation score (the one that early stopping and the
choice of settings may use), the test accuracy, the accuracy on the first
10,000 training images (how far the network fits its data), the epochs and the
fit time. ``--teacher`` distils every run from a fitted classifier saved with
joblib (the study caches its teachers in ``studies/results/``).

The runs behind ``mnist_compression.py``'s ``COMMON``, ``DROPOUT``, ``DISTILL``,
``DISTILLED_DROPOUT`` and ``TEACHER_SHIFTS`` are in
``studies/results/mnist_pilot.jsonl``; they ran two or three at a time with
``NUMBA_NUM_THREADS=1``, so their fit times are not comparable with the study's.
"""

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import joblib
from sklearn.exceptions import ConvergenceWarning

from sk_hashednets import HashedMLPClassifier
from sk_hashednets.datasets import DATA_DIR_ENV, load_idx

ROOT = Path(__file__).resolve().parents[1]
BASE = {
    "hidden_layer_sizes": (1000,),
    "batch_size": 128,
    "early_stopping": True,
    "validation_fraction": 1 / 12,
    "random_state": 0,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="+", type=json.loads, help="JSON objects of parameters")
    mnist = os.environ.get(DATA_DIR_ENV, ROOT.parent / "shared" / "data" / "mnist")
    parser.add_argument("--mnist", type=Path, default=Path(mnist))
    parser.add_argument("--teacher", type=Path, default=None)
    parser.add_argument(
        "--results", type=Path, default=ROOT / "studies" / "results" / "mnist_pilot.jsonl"
    )
    args = parser.parse_args()
    mnist = load_idx(args.mnist.resolve())
    extra = {"teacher": joblib.load(args.teacher)} if args.teacher else {}
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    for settings in args.settings:
        model = HashedMLPClassifier(**{**BASE, **extra, **settings})
        start = time.perf_counter()
        model.fit(mnist.X_train, mnist.y_train)
        seconds = time.perf_counter() - start
        record = {
            "cfg": {**settings, **({"teacher": args.teacher.name} if args.teacher else {})},
            "val": float(model.best_validation_score_),
            "test": 100 * model.score(mnist.X_test, mnist.y_test),
            "train": 100 * model.score(mnist.X_train[:10000], mnist.y_train[:10000]),
            "epochs": model.n_iter_,
            "sec": round(seconds),
        }
        print(json.dumps(record), flush=True)
        with open(args.results, "a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
