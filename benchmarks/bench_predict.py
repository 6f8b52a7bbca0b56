"""Prediction latency and memory: hashed networks against their dense peers, side by side.

For each shape, hashed classifiers (element and block hashing, each
compression) are set up by one ``partial_fit`` on random float32 data; their
dense peers all compute the virtual network of the first of them (its
``to_sklearn()`` twin): ``MLPClassifier`` (float32), PyTorch dense
(``nn.Sequential``, CPU, ``torch.inference_mode``) and ONNX Runtime (the twin
through skl2onnx). Every model runs ``predict`` (class labels from the
probabilities) on the same rows, with the same number of threads. A missing
peer is skipped with the reason printed.

Printed per shape: median latency (ms) per batch, the ratios of the hashed
models to ``MLPClassifier`` and to PyTorch, and the peak extra memory of one
call seen by ``tracemalloc`` (NumPy's allocations: not those of PyTorch or ONNX
Runtime). ``--shards`` adds each hashed model under ``hash_shards="auto"``
(``docs/hashing.md``), whose direct kernels read each row's shard of
buckets. ``--paths`` also times each hashed model whose plan keeps not every
matrix with its other products forced through the direct kernel, or through
panels: the figures behind the rule of ``sk_hashednets._inference``;
``--check-cost`` times the plan's validity check against a checksum of the
buckets, and the checks of a call's input and the decoding of its labels,
scikit-learn's generic ones against the plan module's.

Quick run (a couple of minutes)::

    python benchmarks/bench_predict.py --shapes 784-1000-1000-10 --batch 1 32 1024

PyTorch outside the environment: ``PYTHONPATH=/tmp/torchsite python ...``.
"""

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import print_table  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="*", default=["784-1000-1000-10", "4096-4096-4096-10"])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8, 32, 256, 1024])
    parser.add_argument("--hashing", nargs="+", default=["element", "block"])
    parser.add_argument("--compression", nargs="+", type=float, default=[1 / 8, 1 / 64])
    parser.add_argument(
        "--lean", action="store_true", help="also the hashed models with inference_cache_bytes=0"
    )
    parser.add_argument(
        "--shards", action="store_true", help='also the hashed models with hash_shards="auto"'
    )
    parser.add_argument("--peers", nargs="+", default=["mlp", "torch", "onnx"])
    parser.add_argument("--repeats", type=int, default=21, help="rounds per batch, at most")
    parser.add_argument(
        "--seconds", type=float, default=20, help="time of a batch's rounds, at most"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paths", action="store_true", help="time each product path too")
    parser.add_argument("--check-cost", action="store_true")
    parser.add_argument(
        "--table-kernel",
        action="store_true",
        help="time the block-table kernel alone on one 4096 x 4096 layer, buckets in L1 or not",
    )
    parser.add_argument("--markdown", action="store_true")
    return parser.parse_args()


def interleaved_ms(predictors, X, repeats, seconds):
    """Median wall time (ms) of each predictor on ``X``, timed in turns.

    Every round calls each predictor once, in turn, so that all see the same
    load of a shared machine; after one untimed round, rounds run until
    ``repeats`` or ``seconds`` (at least three).
    """
    for predict in predictors.values():
        predict(X)
    times = {name: [] for name in predictors}
    start = time.perf_counter()
    for round_ in range(repeats):
        if round_ >= 3 and time.perf_counter() - start > seconds:
            break
        for name, predict in predictors.items():
            t0 = time.perf_counter()
            predict(X)
            times[name].append(time.perf_counter() - t0)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def peak_kib(predict, X):
    """Peak memory traced by ``tracemalloc`` during ``predict(X)`` (after one call), KiB."""
    predict(X)
    tracemalloc.start()
    predict(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1024


def hashed_model(units, hashing, compression, X, y, **params):
    from sk_hashednets import HashedMLPClassifier

    model = HashedMLPClassifier(
        hidden_layer_sizes=tuple(units[1:-1]),
        hashing=hashing,
        compression=compression,
        batch_size=len(X),
        random_state=0,
        **params,
    )
    return model.partial_fit(X, y, classes=np.arange(units[-1]))


def torch_peer(twin, threads):
    """``predict`` of PyTorch's ``nn.Sequential`` with the twin's weights, or why not."""
    try:
        import torch
    except ImportError as error:
        return None, f"PyTorch not importable ({error})"
    torch.set_num_threads(threads)
    layers = []
    for i, (W, b) in enumerate(zip(twin.coefs_, twin.intercepts_)):
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T, dtype=np.float32)))
            linear.bias.copy_(torch.from_numpy(b.astype(np.float32)))
        layers.append(linear)
        if i < len(twin.coefs_) - 1:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers).eval()

    def predict(X):
        with torch.inference_mode():
            proba = torch.softmax(net(torch.from_numpy(X)), dim=1)
            return twin.classes_[proba.argmax(dim=1).numpy()]

    return predict, f"torch {torch.__version__}"


def onnx_peer(twin, threads):
    """``predict`` of ONNX Runtime on the twin (through skl2onnx), or the reason why not."""
    try:
        import onnxruntime
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as error:
        return None, f"ONNX Runtime or skl2onnx not importable ({error})"
    onx = convert_sklearn(
        twin,
        initial_types=[("X", FloatTensorType([None, twin.coefs_[0].shape[0]]))],
        options={id(twin): {"zipmap": False}},
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        onx.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )

    def predict(X):
        return session.run(None, {"X": X})[0]

    return predict, f"onnxruntime {onnxruntime.__version__}"


def forced_path(model, path):
    """``predict`` with every layer's product forced to one path of the plan."""
    from sk_hashednets import _inference

    def predict(X):
        saved = _inference.DIRECT_MAX_BATCH
        limit = 2**62 if path == "direct" else 0
        _inference.DIRECT_MAX_BATCH = {hashing: limit for hashing in saved}
        try:
            return model.predict(X)
        finally:
            _inference.DIRECT_MAX_BATCH = saved

    return predict


def all_kept(model, X):
    """Whether the model's plan keeps every layer's matrix (then no other path is taken)."""
    from sk_hashednets._inference import _PLANS

    model.predict(X)
    return all(layer.matrix is not None for layer in _PLANS[model].layers)


def check_cost(model, repeats):
    """Per-call cost (us) of the plan's validity check and of a checksum of the buckets."""
    from sk_hashednets._inference import _PLANS

    plan = _PLANS[model]
    arrays = model.bucket_weights_ + model.intercepts_

    def checksum():
        crc = 0
        for a in arrays:
            crc = zlib.crc32(a, crc)
        return crc

    check = min(_time_us(lambda: plan.is_current(model)) for _ in range(repeats))
    crc = min(_time_us(checksum) for _ in range(repeats))
    return check, crc, sum(a.nbytes for a in arrays)


def input_and_label_cost(model, X, repeats):
    """Per-call cost (us) of checking one batch and decoding its labels: generic, and ours.

    Generic: scikit-learn's ``validate_data`` and ``LabelBinarizer.inverse_transform``
    (what ``MLPClassifier.predict`` calls); ours: ``checked_rows`` and ``class_labels``.
    """
    from sklearn.utils.validation import validate_data

    from sk_hashednets._inference import checked_rows, class_labels

    output = model.predict_proba(X)
    binarizer = model._label_binarizer

    def generic():
        validate_data(
            model, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False
        )
        binarizer.inverse_transform(output)

    def ours():
        checked_rows(model, X)
        class_labels(binarizer, output)

    return tuple(min(_time_us(f) for _ in range(repeats)) for f in (generic, ours))


def table_kernel_ms(repeats):
    """One 4096 x 4096 layer, one row: the block-table kernel by bucket count, and a dense GEMV.

    With 4,096 buckets (16 KiB, in L1) the kernel's time is its instructions;
    with 262,144 (1/64, 1 MiB) it also waits for the buckets' cache lines.
    """
    from sk_hashednets._kernels import _numba_predict as kernels

    rng = np.random.RandomState(0)
    n = 4096
    x = rng.rand(1, n).astype(np.float32)
    x_t = np.ascontiguousarray(x.T)
    out = np.empty((1, n), np.float32)
    dense = rng.randn(n, n).astype(np.float32)
    keys = kernels.column_keys(n, "block")
    states, sign_states = kernels.row_states(1, n), kernels.row_states(2, n)
    predictors = {}
    for n_buckets in (4096, n * n // 64):
        w = rng.randn(n_buckets).astype(np.float32)
        starts = np.empty((keys.size, n), np.uint32)  # run-major, as the package's
        signs = np.empty((keys.size, n), np.uint16)
        bounds = kernels.row_bucket_ranges(n, n_buckets, 1, 1)
        kernels.block_tables(states, sign_states, keys, n_buckets, *bounds, True, starts, signs)
        predictors[f"tables, {n_buckets} buckets"] = (
            lambda _, w=w, starts=starts, signs=signs, bounds=bounds: kernels.table_matmul(
                x_t, w, starts, signs, *bounds, out
            )
        )
    predictors["dense GEMV (NumPy)"] = lambda _: x @ dense
    return interleaved_ms(predictors, x, repeats, 30)


def _time_us(fn, n=200):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return 1e6 * (time.perf_counter() - t0) / n


def main():
    args = parse_args()
    import numba
    import sklearn
    from threadpoolctl import threadpool_limits

    # The same threads for everyone: Numba, BLAS (NumPy's and the others'), PyTorch, ONNX Runtime.
    numba.set_num_threads(args.threads)
    threadpool_limits(args.threads)

    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; threads: {args.threads}; "
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, numba {numba.__version__}"
    )
    if args.table_kernel:
        medians = table_kernel_ms(args.repeats)
        print_table(
            "block-table kernel, one 4096 x 4096 layer, batch 1: median ms (1,048,576 runs of 16)",
            ["kernel", "ms", "ns per run"],
            [[k, f"{ms:.2f}", f"{ms * 1e6 / 4096 / 256:.1f}"] for k, ms in medians.items()],
            args.markdown,
            1,
        )
    rng = np.random.RandomState(0)
    for shape in args.shapes:
        units = [int(u) for u in shape.split("-")]
        n_fit = min(256, max(args.batch))
        X_all = rng.rand(max(max(args.batch), n_fit), units[0]).astype(np.float32)
        y_fit = rng.randint(units[-1], size=n_fit)
        models = {}
        for hashing in args.hashing:
            for compression in args.compression:
                name = f"{hashing} 1/{round(1 / compression)}"
                models[name] = hashed_model(units, hashing, compression, X_all[:n_fit], y_fit)
                if args.lean:
                    models[name + " lean"] = hashed_model(
                        units, hashing, compression, X_all[:n_fit], y_fit, inference_cache_bytes=0
                    )
                if args.shards:
                    models[name + " sharded"] = hashed_model(
                        units, hashing, compression, X_all[:n_fit], y_fit, hash_shards="auto"
                    )
        first = next(iter(models.values()))
        twin = first.to_sklearn()
        predictors = {name: model.predict for name, model in models.items()}
        peers = []
        if "mlp" in args.peers:
            predictors["MLPClassifier"] = twin.predict
            peers.append("MLPClassifier")
        for peer, make in (("torch", torch_peer), ("onnx", onnx_peer)):
            if peer in args.peers:
                predict, note = make(twin, args.threads)
                print(f"{shape}: {peer}: {note}" + ("" if predict else ": skipped"))
                if predict is not None:
                    label = "PyTorch" if peer == "torch" else "ONNX Runtime"
                    predictors[label] = predict
                    peers.append(label)
        if args.paths:
            for name, model in list(models.items()):
                if not all_kept(model, X_all[:1]):
                    for path in ("direct", "panels"):
                        predictors[f"{name} {path}"] = forced_path(model, path)
        # The peers agree with the first hashed model, which they copy.
        X = X_all[: min(args.batch)]
        for peer in peers:
            assert (predictors[peer](X) == first.predict(X)).mean() >= 0.9, peer

        latency = {}
        for batch in args.batch:
            medians = interleaved_ms(predictors, X_all[:batch], args.repeats, args.seconds)
            latency.update({(batch, name): ms for name, ms in medians.items()})
        names = list(predictors)
        print_table(
            f"{shape}: predict latency, median ms",
            ["batch", *names],
            [[str(b), *(f"{latency[b, n]:.3f}" for n in names)] for b in args.batch],
            args.markdown,
            1,
        )
        hashed = [n for n in names if n not in peers]
        for peer in peers[:2]:
            print_table(
                f"{shape}: hashed latency / {peer} latency (below 1: hashed faster)",
                ["batch", *hashed],
                [
                    [str(b), *(f"{latency[b, n] / latency[b, peer]:.2f}" for n in hashed)]
                    for b in args.batch
                ],
                args.markdown,
                1,
            )
        numpy_models = [n for n in names if n not in ("PyTorch", "ONNX Runtime")]
        print_table(
            f"{shape}: peak extra memory of one predict call, KiB (tracemalloc)",
            ["batch", *numpy_models],
            [
                [
                    str(b),
                    *(f"{peak_kib(predictors[n], X_all[:b]):.0f}" for n in numpy_models),
                ]
                for b in args.batch
            ],
            args.markdown,
            1,
        )
        print_table(
            f"{shape}: memory held, KiB (buckets + intercepts, plan; dense: weights)",
            ["model", "parameters", "plan", "total"],
            [
                [
                    n,
                    *(
                        f"{m.memory_footprint()[k] / 1024:.0f}"
                        for k in ("parameters", "plan", "total")
                    ),
                ]
                for n, m in models.items()
            ]
            + [
                [
                    "dense twin",
                    f"{sum(a.nbytes for a in twin.coefs_ + twin.intercepts_) / 1024:.0f}",
                    "0",
                    f"{sum(a.nbytes for a in twin.coefs_ + twin.intercepts_) / 1024:.0f}",
                ]
            ],
            args.markdown,
            1,
        )
        if args.check_cost:
            rows = []
            for name, model in models.items():
                for batch in args.batch:
                    generic, ours = input_and_label_cost(model, X_all[:batch], 5)
                    rows.append([name, str(batch), f"{generic:.1f}", f"{ours:.1f}"])
            print_table(
                f"{shape}: per-call cost of checking the input and decoding labels, us (best of 5)",
                [
                    "model",
                    "batch",
                    "validate_data + inverse_transform",
                    "checked_rows + class_labels",
                ],
                rows,
                args.markdown,
                1,
            )
            rows = []
            for name, model in models.items():
                check, crc, nbytes = check_cost(model, 5)
                rows.append([name, f"{nbytes / 1024:.0f}", f"{check:.2f}", f"{crc:.1f}"])
            print_table(
                f"{shape}: per-call cost of seeing in-place changes, us",
                ["model", "buckets + intercepts (KiB)", "plan check (read-only)", "crc32 of them"],
                rows,
                args.markdown,
                1,
            )


if __name__ == "__main__":
    main()
