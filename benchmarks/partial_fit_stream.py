"""One-minibatch partial_fit calls late in a long stream, hashed against MLPClassifier.

Usage::

    python benchmarks/partial_fit_stream.py [--calls 0 10000 100000] [--repeats 30]

A stream of ``partial_fit`` calls (online learning, Dask's ``Incremental``
with small blocks) grows one fitted attribute per call: the loss curve, an
item a call. A classifier of 784-256-10 (batch 128, compression 1/8, float32
random data) is fitted with one call, given a loss curve of ``--calls`` items
(the state that many calls leave; nothing else of the state grows), and then
timed over ``--repeats`` more calls of one minibatch each, beside
``MLPClassifier`` in the same state, the two timed in turn. Prints the median
milliseconds per call of both and their ratio, for each length of the curve.
"""

import argparse
import platform
import statistics
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from sk_hashednets import HashedMLPClassifier


def timed_call(model, X, y):
    start = time.perf_counter()
    model.partial_fit(X, y)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[0, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    if args.repeats < 1 or min(args.calls) < 0:
        parser.error("--repeats must be >= 1 and --calls >= 0")
    warnings.simplefilter("ignore", ConvergenceWarning)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((128, 784), dtype=np.float32)
    y = rng.integers(0, 10, 128)
    models = {
        "hashed": HashedMLPClassifier(
            hidden_layer_sizes=(256,), compression=1 / 8, batch_size=128, random_state=0
        ),
        "MLPClassifier": MLPClassifier(hidden_layer_sizes=(256,), batch_size=128, random_state=0),
    }
    for model in models.values():
        model.partial_fit(X, y, classes=np.arange(10))
    print("command: python " + " ".join(["benchmarks/partial_fit_stream.py", *sys.argv[1:]]))
    print(f"machine: {platform.processor() or platform.machine()}")
    print()
    print("| loss curve (calls) | hashed call (ms) | MLPClassifier call (ms) | hashed / MLP |")
    print("|---:|---:|---:|---:|")
    for n_calls in args.calls:
        times = {name: [] for name in models}
        for model in models.values():
            model.loss_curve_ = list(np.linspace(2.0, 1.0, n_calls)) + model.loss_curve_[-1:]
            timed_call(model, X, y)  # warm-up at this length
        for _ in range(args.repeats):
            for name, model in models.items():
                times[name].append(timed_call(model, X, y))
        hashed, mlp = (1e3 * statistics.median(times[name]) for name in models)
        print(f"| {n_calls} | {hashed:.2f} | {mlp:.2f} | {hashed / mlp:.2f} |", flush=True)


if __name__ == "__main__":
    main()
