"""CPU training speed and memory of HashedMLPClassifier against scikit-learn's MLPClassifier.

Usage::

    python benchmarks/bench_cpu.py [--shapes 784-1000-1000-10 4096-4096-4096-10]
        [--batch 128 256] [--compression 0.125 0.015625] [--repeats 5] [--epochs 1]
        [--samples 4096] [--hashing element block] [--max-tile-bytes N]
        [--quick] [--markdown]
        [--shards [--compare-layouts] [--compare-indexes] [--compare-blas-pool]
                  [--compare-skeleton]]

Everything is measured side by side in one run (the machine may be shared and
noisy, and its speed drifts over minutes): every repeat times the hashed epoch,
the ``MLPClassifier`` epoch and the GEMM floor one after the other, each ratio is
the median of the repeats' ratios, and each time the median of the repeats'
times. For each shape (``n_in-h1-...-n_classes``), batch size, compression and
hashing:

1. **Throughput**: samples/s over whole ``partial_fit`` epochs of
   ``HashedMLPClassifier`` and of ``MLPClassifier`` with the same virtual
   architecture and solver settings (adam, same batch size, shuffle, float32
   random data with ``n_classes`` classes), after one warm-up epoch each (so
   Numba's JIT compilation is not counted). Repeats alternate which model goes
   first.
2. **GEMM floor**: the matrix products alone of one minibatch step (forward
   ``A @ W``, input gradient ``D @ W.T`` for every layer but the first, weight
   gradient ``A.T @ D``), float32, NumPy matmul into preallocated outputs, as
   many steps as an epoch has, timed in every repeat of 1. and of 3.
3. **Breakdown of one hashed step**, from real ``partial_fit`` epochs with timers
   wrapped around the backend's kernels (``materialize_tile``, ``bucket_index_tile``
   and ``gather_tile`` for materialising; ``scatter_bucket_grad`` and
   ``scatter_indexed`` for the scatter), ``HashedLayer.dot`` / ``dot_transposed`` /
   ``bucket_grad`` and ``AdamOptimizer.update_params``.
4. **Peak resident memory** (``ru_maxrss``) of a hashed fit and of an
   ``MLPClassifier`` fit, each in its own child process (this script with
   ``--child``), with the child's baseline after imports.

``--shards`` measures instead, side by side in every repeat, the hashed network
with today's hash (``hash_shards=None``), the same network with sharded hashing
(``hash_shards="auto"``, ``docs/hashing.md``) and the GEMM floor: each step's
time, each step over the floor (median of the repeats' ratios) and today's step
over the sharded one; then the breakdown (3.) of both. No ``MLPClassifier``,
no memory. ``--compare-layouts`` adds the sharded network under hash version
2's contiguous shards (``"auto"``, trained on as a version 2 model), beside the
others in every repeat, and the ratio of version 3's step to it.
``--compare-indexes`` adds the sharded network hashing its bucket indexes at
every ``partial_fit`` call (``Rehashing``), as it did before they were kept
between calls, and its step's ratios to the floor and to the sharded one.
``--compare-blas-pool`` adds the sharded network trained with OpenBLAS's
parallel sections on the package's pool of sleeping threads (``pool``:
``SK_HASHEDNETS_BLAS_POOL=1`` for its calls, ``sk_hashednets._kernels._blas_pool``),
where the others leave OpenBLAS its own threads (the default), and the ratios of
its step to the floor and of the sharded one's to it.
``--compare-skeleton`` adds the sharded network's skeleton (``Skeleton``): its
layers' products and hashing kernels in a step's order (``HashedLayer.dot``,
``bucket_grad`` with the gradient's last terms, ``dot_transposed``), and nothing
else: no activation, loss, optimizer or ``partial_fit`` call. Its time over the
floor is the least that a step of this design can take on the machine, with
whatever the kernels and the products cost each other there (caches, OpenBLAS's
threads); the sharded step over it is what the estimator adds. With
``--compare-blas-pool`` too, the skeleton also runs on the pool (``pool skeleton``).
"""

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from importlib import metadata
from typing import NamedTuple

import numba
import numpy as np
import threadpoolctl
from _common import hashed_extra_params, maxrss_mib, print_table, via_shell, vmhwm_mib
from sklearn.neural_network import MLPClassifier

import sk_hashednets
from sk_hashednets import HashedMLPClassifier
from sk_hashednets._hashed_layer import HashedLayer
from sk_hashednets._index_store import forget_indexes
from sk_hashednets._kernels import GradientFinish
from sk_hashednets._kernels._blas_pool import ENV_SWITCH, blas_sections_on_pool, worth_a_pool
from sk_hashednets._kernels._cpu import CPUBackend
from sk_hashednets._kernels._free_cores import threads_for_free_cores
from sk_hashednets._layout import hashed_layers
from sk_hashednets._optimizers import AdamOptimizer

DEFAULTS = {
    "shapes": ["784-1000-1000-10"],
    "batch": [128],
    "compression": [0.125],
    "repeats": 5,
    "epochs": 1,
    "samples": 4096,
}
QUICK = {
    "shapes": ["64-128-10"],
    "batch": [32],
    "compression": [0.125],
    "repeats": 2,
    "epochs": 1,
    "samples": 256,
}

BREAKDOWN_METHOD = (
    "timers wrapped around CPUBackend.materialize_tile, .bucket_index_tile and .gather_tile "
    "(materialise), .scatter_bucket_grad and .scatter_indexed (scatter), "
    "HashedLayer.dot, .dot_transposed and .bucket_grad, and AdamOptimizer.update_params "
    "during real partial_fit epochs (instrumented epochs, run after the throughput ones)"
)


# ----------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------


def parse_shape(text):
    """``"784-1000-10"`` -> ``[784, 1000, 10]``."""
    try:
        units = [int(u) for u in text.split("-")]
    except ValueError:
        units = []
    if len(units) < 2 or any(u < 1 for u in units):
        raise argparse.ArgumentTypeError(
            f"shape {text!r}: give positive layer sizes joined by '-', e.g. 784-1000-10."
        )
    if units[-1] < 2:
        raise argparse.ArgumentTypeError(f"shape {text!r}: the last size (classes) must be >= 2.")
    return units


def shape_name(units):
    return "-".join(str(u) for u in units)


def make_hashed(units, batch, compression, extra, seed=0):
    return HashedMLPClassifier(
        hidden_layer_sizes=tuple(units[1:-1]),
        compression=compression,
        solver="adam",
        batch_size=batch,
        shuffle=True,
        random_state=seed,
        **extra,
    )


def make_mlp(units, batch, seed=0):
    return MLPClassifier(
        hidden_layer_sizes=tuple(units[1:-1]),
        solver="adam",
        batch_size=batch,
        shuffle=True,
        random_state=seed,
    )


def make_data(n_samples, units, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, units[0]), dtype=np.float32)
    y = rng.integers(0, units[-1], n_samples)
    return X, y, np.arange(units[-1])


# ----------------------------------------------------------------------
# Machine description
# ----------------------------------------------------------------------


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def version_of(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_lines():
    """The machine, the libraries and the command line."""
    # A tiny fit runs the Numba kernels once, so that the threading layer is chosen.
    X, y, classes = make_data(16, [4, 8, 2])
    make_hashed([4, 8, 2], 8, 0.5, {}).partial_fit(X, y, classes=classes)
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "none chosen yet"
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    lines = [
        f"command: python {shlex.join(sys.argv)}",
        f"machine: {cpu_model()}, {os.cpu_count()} logical cores ({affinity} usable), "
        f"load average {load_average()}",
        f"numba: {numba.__version__}, threading layer {layer}, {numba.get_num_threads()} threads",
    ]
    for pool in threadpoolctl.threadpool_info():
        lines.append(
            f"{pool['user_api']}: {pool.get('internal_api')} {pool.get('version')}, "
            f"{pool.get('num_threads')} threads, threading {pool.get('threading_layer', '-')}, "
            f"arch {pool.get('architecture', '-')} ({os.path.basename(pool['filepath'])})"
        )
    lines.append(
        "versions: "
        + ", ".join(
            [f"python {platform.python_version()}"]
            + [
                f"{d} {version_of(d)}"
                for d in ("numpy", "scipy", "scikit-learn", "numba", "threadpoolctl", "tbb")
            ]
            + [f"sk_hashednets {sk_hashednets.__version__}"]
        )
    )
    return lines


# ----------------------------------------------------------------------
# Measurements
# ----------------------------------------------------------------------


def time_epochs(model, X, y, classes, epochs):
    start = time.perf_counter()
    for _ in range(epochs):
        model.partial_fit(X, y, classes=classes)
    return time.perf_counter() - start


def measure_throughput(hashed, mlp, X, y, classes, floor, args):
    """Epoch times (s) of both models and of the GEMM floor, interleaved in every repeat.

    A warm-up epoch each first; the repeats alternate which model goes first.
    """
    time_epochs(hashed, X, y, classes, 1)
    time_epochs(mlp, X, y, classes, 1)
    times = {"hashed": [], "mlp": [], "floor": []}
    for r in range(args.repeats):
        order = ("hashed", "mlp") if r % 2 == 0 else ("mlp", "hashed")
        for name in order:
            model = hashed if name == "hashed" else mlp
            times[name].append(time_epochs(model, X, y, classes, args.epochs) / args.epochs)
        times["floor"].append(floor())
    return times


def gemm_floor(units, batch, n_steps, seed=0):
    """A function that times the matrix products of ``n_steps`` minibatch steps (s)."""
    rng = np.random.default_rng(seed)
    shapes = list(zip(units[:-1], units[1:]))

    def rand(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    A = [rand(batch, n_in) for n_in, _ in shapes]
    W = [rand(n_in, n_out) for n_in, n_out in shapes]
    D = [rand(batch, n_out) for _, n_out in shapes]
    Z = [np.empty((batch, n_out), np.float32) for _, n_out in shapes]
    dA = [np.empty((batch, n_in), np.float32) for n_in, _ in shapes]
    G = [np.empty((n_in, n_out), np.float32) for n_in, n_out in shapes]

    def step():
        for i in range(len(shapes)):
            np.matmul(A[i], W[i], out=Z[i])
        for i in reversed(range(len(shapes))):
            np.matmul(A[i].T, D[i], out=G[i])
            if i > 0:  # backprop needs no gradient with respect to the input X
                np.matmul(D[i], W[i].T, out=dA[i])

    def timed():
        start = time.perf_counter()
        for _ in range(n_steps):
            step()
        return time.perf_counter() - start

    step()
    return timed


def median_ratio(numerators, denominators):
    """Median over the repeats of the ratio of two interleaved measurements."""
    return statistics.median(a / b for a, b in zip(numerators, denominators))


class PieceTimers:
    """Accumulated wall time of wrapped methods, keyed by a label."""

    def __init__(self):
        self.totals = defaultdict(float)

    @contextmanager
    def wrapped(self, targets):
        """Replace ``owner.name`` by a timed version for each ``(owner, name, label)``."""
        originals = []
        try:
            for owner, name, label in targets:
                original = owner.__dict__[name]
                originals.append((owner, name, original))
                setattr(owner, name, self._timed(original, label))
            yield self
        finally:
            for owner, name, original in reversed(originals):
                setattr(owner, name, original)

    def _timed(self, function, label):
        totals = self.totals

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                totals[label] += time.perf_counter() - start

        return timed


BREAKDOWN_TARGETS = [
    # Materialising: from the hash, or (layers that fit in one tile) from the
    # bucket index tile, hashed once per fit or partial_fit call.
    (CPUBackend, "materialize_tile", "materialize"),
    (CPUBackend, "bucket_index_tile", "materialize"),
    (CPUBackend, "gather_tile", "materialize"),
    (CPUBackend, "scatter_bucket_grad", "scatter"),
    (CPUBackend, "scatter_indexed", "scatter"),
    (HashedLayer, "dot", "layer"),
    (HashedLayer, "dot_transposed", "layer"),
    (HashedLayer, "bucket_grad", "layer"),
    (AdamOptimizer, "update_params", "optimizer"),
]


def measure_breakdown(hashed, X, y, classes, n_steps, floor, args):
    """Per-step time (s) of each piece of a hashed training step, and the floor, per repeat."""
    pieces = defaultdict(list)
    for _ in range(args.repeats):
        timers = PieceTimers()
        with timers.wrapped(BREAKDOWN_TARGETS):
            total = time_epochs(hashed, X, y, classes, args.epochs)
        t = {k: v / (n_steps * args.epochs) for k, v in timers.totals.items()}
        step = total / (n_steps * args.epochs)
        materialize, scatter = t.get("materialize", 0.0), t.get("scatter", 0.0)
        # The HashedLayer methods minus the kernels they call: the GEMMs, plus
        # tile slicing, the output allocation and the zeroing of the bucket gradient.
        gemm = t.get("layer", 0.0) - materialize - scatter
        optimizer = t.get("optimizer", 0.0)
        pieces["step"].append(step)
        pieces["materialize"].append(materialize)
        pieces["gemm"].append(gemm)
        pieces["scatter"].append(scatter)
        pieces["optimizer"].append(optimizer)
        pieces["rest"].append(step - materialize - gemm - scatter - optimizer)
        pieces["unhashed"].append(step - materialize - scatter)
        pieces["floor"].append(floor() / n_steps)
    return pieces


#: The columns that name a configuration, first in every table.
CONFIG_HEADER = ["shape", "batch", "compression", "hashing"]


class Configuration(NamedTuple):
    """One row's setting ``(units, batch, compression, hashing, cells)`` and its data."""

    setting: tuple
    data: tuple


def configurations(args, hashings):
    """Every shape, batch, compression and hashing of the command line, announced on stderr.

    ``data`` is ``(X, y, classes, n_steps, floor, extra)``: the shape's samples, the
    batch's GEMM floor (made once per shape and batch) and the hashed model's
    extra parameters.
    """
    for units in args.shapes:
        X, y, classes = make_data(args.samples, units)
        for batch in args.batch:
            n_steps = math.ceil(args.samples / batch)
            floor = gemm_floor(units, batch, n_steps)
            for compression in args.compression:
                for hashing in hashings:
                    extra = hashed_extra_params(hashing, args.max_tile_bytes)
                    cells = [
                        shape_name(units),
                        str(batch),
                        f"{compression:g}",
                        hashing or "default",
                    ]
                    print(f"measuring {' '.join(cells)} ...", file=sys.stderr, flush=True)
                    yield Configuration(
                        (units, batch, compression, hashing, cells),
                        (X, y, classes, n_steps, floor, extra),
                    )


#: The two hashes that ``--shards`` compares, by their ``hash_shards``.
SHARD_MODELS = {"today": None, "sharded": "auto"}


class Rehashing:
    """A model whose ``partial_fit`` calls hash their bucket indexes anew (``--compare-indexes``).

    Since the sixth session of issue 18 a model keeps its bucket indexes from
    one ``partial_fit`` call to the next (``sk_hashednets._index_store``); this
    wrapper drops them before every call, as every call did before.
    """

    def __init__(self, model):
        self.model = model

    def partial_fit(self, X, y, classes=None):
        forget_indexes(self.model)
        return self.model.partial_fit(X, y, classes=classes)

    def __getattr__(self, name):
        return getattr(self.model, name)


class OnBLASPool:
    """A model whose ``partial_fit`` calls run OpenBLAS's sections on the pool.

    For ``--compare-blas-pool``. The pool (``sk_hashednets._kernels._blas_pool``)
    is opt-in: this wrapper sets ``SK_HASHEDNETS_BLAS_POOL=1`` for its calls only.
    """

    def __init__(self, model):
        self.model = model

    def partial_fit(self, X, y, classes=None):
        previous = os.environ.get(ENV_SWITCH)
        os.environ[ENV_SWITCH] = "1"
        try:
            return self.model.partial_fit(X, y, classes=classes)
        finally:
            if previous is None:
                del os.environ[ENV_SWITCH]
            else:
                os.environ[ENV_SWITCH] = previous

    def __getattr__(self, name):
        return getattr(self.model, name)


class Skeleton:
    """The products and hashing kernels of a fitted model's steps, and nothing else.

    For ``--compare-skeleton``. Its ``partial_fit`` runs, for each minibatch of
    ``X``, what every training step of ``model`` must run whatever the estimator
    around it: each layer's forward product (materialising its virtual matrix),
    then from the last layer down its weight-gradient product and scatter (with
    the gradient's last terms, as a fit writes them) and the input-gradient
    product (on the tile the forward product materialised). The layers are the
    model's own training layers (``hashed_layers``), so they keep their bucket
    indexes and choose their kernels as a fit's do. No activation, loss,
    optimizer, validation or snapshot: the deltas are fixed random arrays and
    the buckets never change.

    Parameters
    ----------
    model : HashedMLPClassifier
        Fitted (one ``partial_fit`` epoch is enough), on the CPU, in float32.
    on_pool : bool, default=False
        Run OpenBLAS's parallel sections on the package's pool of sleeping
        threads where a fit with ``SK_HASHEDNETS_BLAS_POOL=1`` would
        (``worth_a_pool``; and nowhere the pool cannot be used). Either way
        the steps run with the threads a fit would take (``threads_for_free_cores``).
    """

    def __init__(self, model, on_pool=False):
        self.layers = hashed_layers(model, CPUBackend(), np.float32, training=True)
        self.on_pool = on_pool and worth_a_pool(model.batch_size, model._layer_units_)
        self.weights = list(model.bucket_weights_)
        self.grads = [np.empty_like(w) for w in self.weights]
        self.alpha = model.alpha
        self.batch = model.batch_size
        rng = np.random.default_rng(1)
        units = model._layer_units_
        self.deltas = [
            rng.standard_normal((self.batch, n_out), dtype=np.float32) for n_out in units[1:]
        ]

    def partial_fit(self, X, y, classes=None):
        with threads_for_free_cores(), blas_sections_on_pool(self.on_pool):
            for start in range(0, X.shape[0], self.batch):
                self._step(X[start : start + self.batch])
        return self

    def _step(self, X):
        rows = X.shape[0]
        inputs = [X]
        for layer, w in zip(self.layers, self.weights):
            inputs.append(layer.dot(inputs[-1], w))
        for i in reversed(range(len(self.layers))):
            D = self.deltas[i][:rows]
            finish = GradientFinish(self.weights[i], self.alpha, rows)
            self.layers[i].bucket_grad(inputs[i], D, self.grads[i], finish)
            if i > 0:
                self.layers[i].dot_transposed(D, self.weights[i], reuse_tile=True)


def shard_comparisons(args, units, batch, compression, extra, X, y, classes):
    """The models of one ``--shards`` row, and the pairs whose time ratios it prints."""
    models = {
        name: make_hashed(units, batch, compression, {**extra, "hash_shards": s})
        for name, s in SHARD_MODELS.items()
    }
    ratios = [("today", "floor"), ("sharded", "floor"), ("today", "sharded")]
    if args.compare_layouts:
        # "auto" read through hash version 2: its shards blocks of consecutive rows. A
        # model trains on in the version it records, so after one epoch it is one of
        # version 2's models (docs/hashing.md).
        contiguous = make_hashed(units, batch, compression, {**extra, "hash_shards": "auto"})
        time_epochs(contiguous, X, y, classes, 1)
        contiguous.hash_spec_version_ = 2
        models["contiguous"] = contiguous
        ratios += [("contiguous", "floor"), ("sharded", "contiguous")]
    if args.compare_indexes:
        sharded = make_hashed(units, batch, compression, {**extra, "hash_shards": "auto"})
        models["rehashing"] = Rehashing(sharded)
        ratios += [("rehashing", "floor"), ("rehashing", "sharded")]
    if args.compare_blas_pool:
        sharded = make_hashed(units, batch, compression, {**extra, "hash_shards": "auto"})
        models["pool"] = OnBLASPool(sharded)
        ratios += [("pool", "floor"), ("sharded", "pool")]
    if args.compare_skeleton:
        sharded = make_hashed(units, batch, compression, {**extra, "hash_shards": "auto"})
        time_epochs(sharded, X, y, classes, 1)  # fits the layout that the skeleton runs
        models["skeleton"] = Skeleton(sharded)
        ratios += [("skeleton", "floor"), ("sharded", "skeleton")]
        if args.compare_blas_pool:
            models["pool skeleton"] = Skeleton(sharded, on_pool=True)
            ratios += [("pool skeleton", "floor"), ("pool", "pool skeleton")]
    return models, ratios


def run_shards(args, hashings):
    """``--shards``: today's hash against ``hash_shards="auto"`` and the GEMM floor, per config."""
    speed_rows, breakdown_rows = [], []
    extra_names = []
    for run in configurations(args, hashings):
        units, batch, compression, hashing, config = run.setting
        X, y, classes, n_steps, floor, extra = run.data
        models, ratios = shard_comparisons(args, units, batch, compression, extra, X, y, classes)
        extra_names = [name for name in models if name not in SHARD_MODELS]
        times = measure_shard_throughput(models, X, y, classes, floor, args)
        shards = ", ".join(str(s) for s in models["sharded"].hash_shards_)
        step = {k: statistics.median(v) / n_steps for k, v in times.items()}
        speed_rows.append(
            config
            + [shards, ms(step["today"]), ms(step["sharded"]), ms(step["floor"])]
            + [ms(step[name]) for name in extra_names]
            + [f"{median_ratio(times[a], times[b]):.2f}" for a, b in ratios]
        )
        for name, model in models.items():
            pieces = measure_breakdown(model, X, y, classes, n_steps, floor, args)
            breakdown_rows.append(config + [name] + breakdown_cells(pieces))
    print_table(
        'Today\'s hash against hash_shards="auto" (medians; step = epoch time / minibatches)',
        CONFIG_HEADER
        + ["auto shards per layer", "today step (ms)", "sharded step (ms)", "GEMM floor (ms)"]
        + [f"{name} step (ms)" for name in extra_names]
        + [f"{a}/{b}" for a, b in ratios],
        speed_rows,
        args.markdown,
        n_text=5,
    )
    print_table(
        "Breakdown of one hashed step (ms per step, share of the instrumented step)",
        CONFIG_HEADER + ["hash"] + BREAKDOWN_HEADER,
        breakdown_rows,
        args.markdown,
        n_text=5,
    )
    print()
    print(f"breakdown method: {BREAKDOWN_METHOD}")
    print()
    print(f"load average at the end: {load_average()}")


def measure_shard_throughput(models, X, y, classes, floor, args):
    """Epoch times (s) of each model and of the GEMM floor, interleaved in every repeat.

    A warm-up epoch each first; the repeats alternate which model goes first.
    """
    for model in models.values():
        time_epochs(model, X, y, classes, 1)
    times = {name: [] for name in [*models, "floor"]}
    for r in range(args.repeats):
        for name in list(models)[:: 1 if r % 2 == 0 else -1]:
            times[name].append(time_epochs(models[name], X, y, classes, args.epochs) / args.epochs)
        times["floor"].append(floor())
    return times


#: The breakdown's columns after the configuration (``breakdown_cells``).
BREAKDOWN_HEADER = [
    "step",
    "materialise",
    "GEMM",
    "scatter",
    "optimizer",
    "rest",
    "GEMM/floor",
    "unhashed/floor",
]


def breakdown_cells(pieces):
    """The cells of :data:`BREAKDOWN_HEADER` from :func:`measure_breakdown`'s pieces."""
    median = {k: statistics.median(v) for k, v in pieces.items()}
    step = median["step"]
    return (
        [ms(step)]
        + [
            f"{ms(median[k])} ({100 * median[k] / step:.0f}%)"
            for k in ("materialize", "gemm", "scatter", "optimizer", "rest")
        ]
        + [f"{median_ratio(pieces[k], pieces['floor']):.2f}" for k in ("gemm", "unhashed")]
    )


def run_child(args):
    """``--child hashed|mlp``: one fit, then print a JSON line with the memory figures."""
    baseline = maxrss_mib()
    units = args.shapes[0]
    batch, compression = args.batch[0], args.compression[0]
    hashing = args.hashing[0] if args.hashing else None
    extra = hashed_extra_params(hashing, args.max_tile_bytes)

    def model_for(shape, batch):
        if args.child == "hashed":
            return make_hashed(shape, batch, compression, extra)
        return make_mlp(shape, batch)

    # A tiny fit first loads the Numba kernels (and LLVM), before any data.
    Xs, ys, cs = make_data(16, [4, 8, units[-1]])
    model_for([4, 8, units[-1]], 8).partial_fit(Xs, ys, classes=cs)
    after_warmup = maxrss_mib()

    X, y, classes = make_data(args.samples, units)
    model = model_for(units, batch)
    start = time.perf_counter()
    for _ in range(args.epochs):
        model.partial_fit(X, y, classes=classes)
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "baseline_mib": baseline,
                "after_warmup_mib": after_warmup,
                "peak_mib": maxrss_mib(),
                "vmhwm_mib": vmhwm_mib(),
                "data_mib": X.nbytes / 2**20,
                "seconds": elapsed,
            }
        )
    )


def measure_memory(kind, units, batch, compression, hashing, args):
    """Run this script with ``--child kind`` and return its JSON report (or an error)."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        kind,
        "--shapes",
        shape_name(units),
        "--batch",
        str(batch),
        "--compression",
        repr(compression),
        "--samples",
        str(args.samples),
        "--epochs",
        str(args.epochs),
    ]
    if hashing is not None:
        command += ["--hashing", hashing]
    if args.max_tile_bytes is not None:
        command += ["--max-tile-bytes", str(args.max_tile_bytes)]
    result = subprocess.run(via_shell(command), capture_output=True, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"child exited {result.returncode}: {tail}"}
    return json.loads(lines[-1])


# ----------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------


def ms(seconds):
    return f"{1e3 * seconds:.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=parse_shape, nargs="+", default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=None)
    parser.add_argument("--compression", type=float, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="epochs per repeat")
    parser.add_argument("--samples", type=int, default=None, help="samples per epoch")
    parser.add_argument(
        "--hashing",
        nargs="+",
        default=None,
        help="hashing schemes to compare; left out, the estimator's default (not passed)",
    )
    parser.add_argument("--max-tile-bytes", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument(
        "--shards",
        action="store_true",
        help='today\'s hash against hash_shards="auto" and the GEMM floor, side by side',
    )
    parser.add_argument(
        "--compare-layouts",
        action="store_true",
        help="with --shards: also the sharded network under hash version 2's contiguous shards",
    )
    parser.add_argument(
        "--compare-indexes",
        action="store_true",
        help="with --shards: also the sharded network hashing its bucket indexes at every "
        "partial_fit call, as before they were kept between calls",
    )
    parser.add_argument(
        "--compare-blas-pool",
        action="store_true",
        help="with --shards: also the sharded network trained with OpenBLAS's parallel "
        "sections on the package's pool of sleeping threads (SK_HASHEDNETS_BLAS_POOL=1)",
    )
    parser.add_argument(
        "--compare-skeleton",
        action="store_true",
        help="with --shards: also the sharded network's products and hashing kernels alone, "
        "in a step's order (the least a step of this design takes here)",
    )
    parser.add_argument("--child", choices=["hashed", "mlp"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    defaults = QUICK if args.quick else DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, [parse_shape(s) for s in value] if name == "shapes" else value)
    for name in ("repeats", "epochs", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if min(args.batch) < 1 or any(not 0 < c <= 1 for c in args.compression):
        parser.error("--batch must be >= 1 and --compression in (0, 1]")
    for option in ("compare_layouts", "compare_indexes", "compare_blas_pool", "compare_skeleton"):
        if getattr(args, option) and not args.shards:
            parser.error(f"--{option.replace('_', '-')} goes with --shards")
    if args.samples < max(args.batch):
        parser.error(f"--samples ({args.samples}) must be at least the largest --batch")

    if args.child:
        run_child(args)
        return

    hashings = args.hashing or [None]
    for hashing in hashings:
        hashed_extra_params(hashing, args.max_tile_bytes)  # fail early, with a clear message

    for line in machine_lines():
        print(line)
    print(
        f"data: {args.samples} samples of float32 N(0, 1) features, uniform random classes; "
        f"{args.epochs} epoch(s) per repeat, {args.repeats} repeats, medians; "
        "solver adam, shuffle=True, random_state=0 for both models"
    )

    if args.shards:
        run_shards(args, hashings)
        return

    speed_rows, breakdown_rows, memory_rows = [], [], []
    mlp_memory = {}
    for run in configurations(args, hashings):
        units, batch, compression, hashing, config = run.setting
        X, y, classes, n_steps, floor, extra = run.data
        hashed = make_hashed(units, batch, compression, extra)
        mlp = make_mlp(units, batch)
        times = measure_throughput(hashed, mlp, X, y, classes, floor, args)
        t_hashed = statistics.median(times["hashed"])
        t_mlp = statistics.median(times["mlp"])
        speed_rows.append(
            config
            + [
                f"{args.samples / t_hashed:.0f}",
                f"{args.samples / t_mlp:.0f}",
                f"{median_ratio(times['mlp'], times['hashed']):.2f}",
                ms(t_hashed / n_steps),
                ms(t_mlp / n_steps),
                ms(statistics.median(times["floor"]) / n_steps),
                f"{median_ratio(times['hashed'], times['floor']):.2f}",
                f"{median_ratio(times['mlp'], times['floor']):.2f}",
            ]
        )

        pieces = measure_breakdown(hashed, X, y, classes, n_steps, floor, args)
        breakdown_rows.append(config + breakdown_cells(pieces))

        report = measure_memory("hashed", units, batch, compression, hashing, args)
        reports = [("hashed", report)]
        if (shape_name(units), batch) not in mlp_memory:
            mlp_memory[shape_name(units), batch] = measure_memory(
                "mlp", units, batch, compression, None, args
            )
            reports.append(("MLPClassifier", mlp_memory[shape_name(units), batch]))
        for model, report in reports:
            if "error" in report:
                memory_rows.append(config + [model, report["error"]] + [""] * 5)
                continue
            memory_rows.append(
                config
                + [
                    model,
                    f"{report['baseline_mib']:.0f}",
                    f"{report['after_warmup_mib']:.0f}",
                    f"{report['peak_mib']:.0f}",
                    f"{report['peak_mib'] - report['baseline_mib']:.0f}",
                    f"{report['vmhwm_mib']:.0f}",
                    f"{report['data_mib']:.1f}",
                ]
            )

    print_table(
        "Training throughput (medians; step = epoch time / minibatches per epoch)",
        CONFIG_HEADER
        + [
            "hashed (samples/s)",
            "MLP (samples/s)",
            "hashed/MLP",
            "hashed step (ms)",
            "MLP step (ms)",
            "GEMM floor (ms)",
            "hashed/floor",
            "MLP/floor",
        ],
        speed_rows,
        args.markdown,
        n_text=4,
    )
    print_table(
        "Breakdown of one hashed step (ms per step, share of the instrumented step)",
        CONFIG_HEADER + BREAKDOWN_HEADER,
        breakdown_rows,
        args.markdown,
        n_text=4,
    )
    print()
    print(f"breakdown method: {BREAKDOWN_METHOD}")
    print_table(
        "Peak resident memory (MiB, ru_maxrss, one child process per fit)",
        CONFIG_HEADER
        + ["model", "baseline", "after warm-up", "peak", "peak - baseline", "VmHWM", "data"],
        memory_rows,
        args.markdown,
        n_text=5,
    )
    print()
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
