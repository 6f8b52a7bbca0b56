"""File sizes of a hashed model, its dense scikit-learn twin and the twin's ONNX export.

Usage::

    python benchmarks/export_sizes.py [--shape 784-1000-1000-10] [--compression 0.125 0.015625]

For each compression, trains a ``HashedMLPClassifier`` briefly on random
float32 data (accuracy is irrelevant here: one ``partial_fit`` pass with Adam,
so the model carries Adam's state, as a trained model does) and writes:

- the hashed model with ``joblib.dump``;
- the hashed model with ``sk_hashednets.save`` (the pickle-free format);
- its dense twin, ``to_sklearn()``, with ``joblib.dump``;
- the twin converted to ONNX by skl2onnx (``pip install "sk_hashednets[onnx]"``).

It prints the sizes as a markdown table, with ratios to the ONNX file, and
checks the ONNX model's predictions with onnxruntime against the hashed model's
``predict_proba`` (largest absolute difference) and ``predict``.
"""

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
from sklearn.exceptions import ConvergenceWarning

import sk_hashednets
from sk_hashednets import HashedMLPClassifier


def mib(n_bytes):
    return n_bytes / 2**20


def measure(shape, compression, n_samples, seed, directory):
    rng = np.random.RandomState(seed)
    n_features, hidden, n_classes = shape[0], tuple(shape[1:-1]), shape[-1]
    X = rng.standard_normal((n_samples, n_features)).astype(np.float32)
    y = rng.randint(n_classes, size=n_samples)
    clf = HashedMLPClassifier(
        hidden_layer_sizes=hidden, compression=compression, random_state=seed
    )
    clf.partial_fit(X, y, classes=np.arange(n_classes))

    paths = {
        "hashed, joblib.dump": directory / "hashed.joblib",
        "hashed, sk_hashednets.save": directory / "hashed.npz",
        "dense twin (to_sklearn), joblib.dump": directory / "twin.joblib",
        "dense twin, ONNX (skl2onnx)": directory / "twin.onnx",
    }
    joblib.dump(clf, paths["hashed, joblib.dump"])
    sk_hashednets.save(clf, paths["hashed, sk_hashednets.save"])
    twin = clf.to_sklearn()
    joblib.dump(twin, paths["dense twin (to_sklearn), joblib.dump"])

    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        twin,
        initial_types=[("X", FloatTensorType([None, n_features]))],
        options={"zipmap": False},
    )
    paths["dense twin, ONNX (skl2onnx)"].write_bytes(onx.SerializeToString())

    import onnxruntime

    session = onnxruntime.InferenceSession(
        str(paths["dense twin, ONNX (skl2onnx)"]), providers=["CPUExecutionProvider"]
    )
    labels, proba = session.run(None, {"X": X})
    check = {
        "max_abs_diff_proba": float(np.max(np.abs(proba - clf.predict_proba(X)))),
        "same_labels": bool(np.array_equal(labels, clf.predict(X))),
        "twin_max_abs_diff_proba": float(
            np.max(np.abs(twin.predict_proba(X) - clf.predict_proba(X)))
        ),
    }
    sizes = {name: path.stat().st_size for name, path in paths.items()}
    counts = {
        "stored": clf.n_stored_params_,
        "virtual": clf.n_virtual_params_,
    }
    return sizes, counts, check


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="784-1000-1000-10",
                        help="layer sizes, input features to classes, joined by '-'")
    parser.add_argument("--compression", type=float, nargs="+", default=[1 / 8, 1 / 64])
    parser.add_argument("--samples", type=int, default=512,
                        help="random float32 samples for the one partial_fit pass")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    shape = [int(s) for s in args.shape.split("-")]
    if len(shape) < 2:
        parser.error("--shape needs at least the input and output sizes, e.g. 784-10.")
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    print(f"command: python {' '.join(sys.argv)}")
    print(f"sk_hashednets {sk_hashednets.__version__}, joblib {joblib.__version__}, "
          f"numpy {np.__version__}")
    rows, checks = [], []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for compression in args.compression:
            sizes, counts, check = measure(shape, compression, args.samples, args.seed, Path(tmp))
            onnx_size = sizes["dense twin, ONNX (skl2onnx)"]
            label = f"1/{round(1 / compression)}" if compression < 1 else f"{compression:g}"
            for name, size in sizes.items():
                rows.append((label, name, size, size / onnx_size))
            checks.append((label, counts, check))

    print()
    print(f"{args.shape}, float32, Adam state from one partial_fit pass")
    print()
    print("| compression | file | size (MiB) | size / ONNX |")
    print("|---|---|---:|---:|")
    for label, name, size, ratio in rows:
        print(f"| {label} | {name} | {mib(size):.2f} | {ratio:.3f} |")
    print()
    print("| compression | stored params | virtual params | ONNX vs hashed predict_proba, "
          "max abs diff | same predict | twin vs hashed predict_proba, max abs diff |")
    print("|---|---:|---:|---:|---|---:|")
    for label, counts, check in checks:
        print(f"| {label} | {counts['stored']:,} | {counts['virtual']:,} | "
              f"{check['max_abs_diff_proba']:.2e} | {check['same_labels']} | "
              f"{check['twin_max_abs_diff_proba']:.2e} |")
    print()
    print(f"total time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
