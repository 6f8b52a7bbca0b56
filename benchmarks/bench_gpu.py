"""GPU training speed of HashedMLPClassifier against a dense cuBLAS floor and our CPU backend.

Usage::

    python benchmarks/bench_gpu.py [--shapes 784-1000-1000-10 4096-4096-4096-10 784-65536-65536-10]
        [--batch 256 1024] [--compression 0.125 0.015625] [--repeats 3] [--steps 16]
        [--epochs 2] [--dtype float32] [--cpu-shapes 4096-4096-4096-10] [--cpu-steps 4]
        [--hashing element] [--max-tile-bytes N] [--scatter-shapes 4096-4096] [--quick]
        [--markdown]

Needs CuPy and a CUDA GPU (``pip install "sk_hashednets[gpu]"``); without them
it stops with the reason. Everything is measured side by side in one run, on
one GPU (the current CuPy device), as medians of ``--repeats`` after a warm-up,
with ``cupy.cuda.Device().synchronize()`` around every timing. For each shape
(``n_in-h1-...-n_classes``), batch size and compression:

1. **hashed GPU**: ``HashedMLPClassifier(device="cuda", solver="adam")`` on
   ``--steps`` minibatches per epoch (random N(0, 1) features, uniform random
   classes). Each repeat times a warm-started ``fit`` of 1 epoch and one of
   ``1 + --epochs`` epochs; the difference, over its minibatches, is the time
   of a training step (the whole step: hashing, GEMMs, scatter, Adam, the loss
   read back once per step). What every fit does once (copying the data and
   the state to the GPU and back, validation, the host copy of the state kept
   against errors) is the "fit fixed cost" column. The warm-up fit (kernel
   compilation) is not timed.
2. **dense cuBLAS floor**: a minimal hand-written dense MLP of the same virtual
   layers on CuPy: ``A @ W + b`` with ReLU, softmax and cross-entropy, the same
   backward GEMMs (``A.T @ D`` into a preallocated gradient, ``D @ W.T``), and
   Adam with the same L2 term in one fused elementwise kernel per array. Its
   data is on the GPU already and it never reads the loss back, so it is a
   floor: what the same dense network costs on cuBLAS, without the estimator.
   When the dense weights, gradients and Adam moments would not fit in the
   GPU's free memory, the row says so instead of a time.
3. **hashed CPU**, for the ``--cpu-shapes`` only: the same estimator and
   method with ``device="cpu"`` (Numba and BLAS on every core), over
   ``--cpu-steps`` minibatches per epoch, fits of 1 and 2 epochs.

Columns: throughputs in samples/s, ``hashed/cuBLAS`` (hashed GPU step time over
the floor's: above 1 is slower than the dense floor) and ``GPU/CPU`` (hashed
GPU throughput over hashed CPU throughput: the GPU's speed-up).

A second table times the CUDA kernels alone on one virtual matrix of each
``--scatter-shapes`` (``n_in-n_out``), at each compression: the bucket-gradient
scatter of a whole ``n_in x n_out`` gradient and the materialise of the whole
matrix, unsharded (one shard: shared-memory sums and global atomics) and
sharded as ``hash_shards="auto"`` shards the layer (``scatter_shards``: a block
per shard and chunk of its buckets, no global atomics, the CPU's order of
additions), medians of ``--repeats`` timings of 10 calls each after a warm-up.
"""

import argparse
import math
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from importlib import metadata

import numpy as np
from _common import hashed_extra_params, print_table

import sk_hashednets
from sk_hashednets import HashedMLPClassifier
from sk_hashednets._kernels import LayerHash, resolve_device
from sk_hashednets._kernels._hashing import auto_shards
from sk_hashednets._layout import resolve_n_buckets

DEFAULTS = {
    "shapes": ["784-1000-1000-10", "4096-4096-4096-10", "784-65536-65536-10"],
    "batch": [256, 1024],
    "compression": [0.125, 0.015625],
    "repeats": 3,
    "steps": 16,
    "epochs": 2,
    "cpu_shapes": ["4096-4096-4096-10"],
    "cpu_steps": 4,
    "scatter_shapes": ["4096-4096"],
}
QUICK = {
    "shapes": ["64-128-10"],
    "batch": [32],
    "compression": [0.125],
    "repeats": 2,
    "steps": 4,
    "epochs": 1,
    "cpu_shapes": ["64-128-10"],
    "cpu_steps": 4,
    "scatter_shapes": ["64-128"],
}
#: Adam's and the L2 term's settings: HashedMLPClassifier's defaults.
ALPHA, LEARNING_RATE, BETA_1, BETA_2, EPSILON = 1e-4, 1e-3, 0.9, 0.999, 1e-8


def parse_shape(text):
    """``"784-1000-10"`` -> ``[784, 1000, 10]``."""
    try:
        units = [int(u) for u in text.split("-")]
    except ValueError:
        units = []
    if len(units) < 2 or any(u < 1 for u in units) or units[-1] < 2:
        raise argparse.ArgumentTypeError(
            f"shape {text!r}: give positive layer sizes joined by '-', the last (the classes) "
            "at least 2, e.g. 784-1000-10."
        )
    return units


def shape_name(units):
    return "-".join(str(u) for u in units)


def make_data(n_samples, units, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, units[0]), dtype=np.float32).astype(dtype, copy=False)
    y = rng.integers(0, units[-1], n_samples)
    return X, y


def version_of(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def gpu_lines(cp):
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"]
    name = name.decode() if isinstance(name, bytes) else name
    free, total = cp.cuda.runtime.memGetInfo()
    return [
        f"command: python {shlex.join(sys.argv)}",
        f"GPU: {name} (device {cp.cuda.Device().id}), {total / 2**30:.1f} GiB, "
        f"{free / 2**30:.1f} GiB free at the start, {props['multiProcessorCount']} SMs",
        f"CUDA: runtime {cp.cuda.runtime.runtimeGetVersion()}, "
        f"driver {cp.cuda.runtime.driverGetVersion()}; CuPy {cp.__version__}; "
        f"TF32 for float32 GEMMs: {'on' if os.environ.get('CUPY_TF32') == '1' else 'off'}",
        f"CPU: {platform.processor() or 'unknown'}, {os.cpu_count()} logical cores",
        f"versions: python {platform.python_version()}, numpy {np.__version__}, "
        f"numba {version_of('numba')}, sk_hashednets {sk_hashednets.__version__}",
    ]


# ----------------------------------------------------------------------
# Hashed: whole warm-started fits of the estimator
# ----------------------------------------------------------------------


def make_hashed(units, batch, compression, device, extra):
    return HashedMLPClassifier(
        hidden_layer_sizes=tuple(units[1:-1]),
        compression=compression,
        solver="adam",
        batch_size=batch,
        shuffle=True,
        random_state=0,
        warm_start=True,
        tol=0.0,
        n_iter_no_change=np.inf,  # every fit runs all its epochs
        device=device,
        **extra,
    )


def timed_fit(cp, model, X, y, epochs):
    model.set_params(max_iter=epochs)
    cp.cuda.Device().synchronize()
    start = time.perf_counter()
    model.fit(X, y)
    cp.cuda.Device().synchronize()
    return time.perf_counter() - start


def hashed_step_time(cp, model, X, y, epochs, repeats):
    """Median time (s) of one minibatch step, and of a fit's fixed costs.

    Each repeat times a warm-started fit of one epoch and one of ``1 + epochs``
    epochs: their difference is ``epochs`` epochs of steps alone, without what
    every fit does once (copying the data and the state to the device and back,
    validating, keeping a host copy of the state against errors).
    """
    steps_per_epoch = math.ceil(len(X) / model.batch_size)
    timed_fit(cp, model, X, y, 1)  # warm-up: kernel compilation, cuBLAS, the memory pool
    steps, fixed = [], []
    for _ in range(repeats):
        short = timed_fit(cp, model, X, y, 1)
        long = timed_fit(cp, model, X, y, 1 + epochs)
        step = (long - short) / (epochs * steps_per_epoch)
        steps.append(step)
        fixed.append(short - steps_per_epoch * step)
    return statistics.median(steps), statistics.median(fixed)


# ----------------------------------------------------------------------
# Dense floor: a minimal MLP on CuPy and cuBLAS
# ----------------------------------------------------------------------


def adam_kernel(cp):
    """One fused Adam step with the L2 term: no temporaries of the weights' size."""
    return cp.ElementwiseKernel(
        "T raw_grad, T scale, T alpha, T lr, T beta_1, T beta_2, T eps",
        "T param, T m, T v",
        """
        T g = (raw_grad + alpha * param) * scale;
        m = beta_1 * m + (1 - beta_1) * g;
        v = beta_2 * v + (1 - beta_2) * g * g;
        param -= lr * m / (sqrt(v) + eps);
        """,
        "bench_dense_adam",
    )


def dense_bytes(units, batch, itemsize):
    """Device bytes of the dense floor: weights, gradients, two moments, activations."""
    n_params = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
    return itemsize * (4 * n_params + 3 * batch * sum(units))


class DenseMLP:
    """The dense floor: the same layers, loss and Adam update, on CuPy arrays."""

    def __init__(self, cp, units, dtype, seed=0):
        self.cp = cp
        self.dtype = np.dtype(dtype)
        rng = cp.random.default_rng(seed)
        self.W, self.b = [], []
        for n_in, n_out in zip(units[:-1], units[1:]):
            bound = math.sqrt(6.0 / (n_in + n_out))
            self.W.append((rng.random((n_in, n_out), dtype=np.float32) * 2 - 1) * bound)
            self.b.append(cp.zeros(n_out, dtype=np.float32))
        self.W = [w.astype(self.dtype, copy=False) for w in self.W]
        self.b = [b.astype(self.dtype, copy=False) for b in self.b]
        self.grad_W = [cp.empty_like(w) for w in self.W]
        self.moments = [(cp.zeros_like(p), cp.zeros_like(p)) for p in self.W + self.b]
        self.adam = adam_kernel(cp)
        self.t = 0

    def step(self, X, Y):
        """One minibatch step; ``Y`` is one-hot. Returns the loss, left on the device."""
        cp, s = self.cp, self.dtype.type
        activations = [X]
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            Z = activations[-1] @ W
            Z += b
            if i < len(self.W) - 1:
                cp.maximum(Z, 0, out=Z)
            activations.append(Z)
        out = activations[-1]
        out -= out.max(axis=1, keepdims=True)
        cp.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        eps = np.finfo(self.dtype).eps
        loss = -(Y * cp.log(cp.clip(out, eps, 1 - eps))).sum() / len(X)
        delta = out - Y
        self.t += 1
        lr = LEARNING_RATE * math.sqrt(1 - BETA_2**self.t) / (1 - BETA_1**self.t)
        args = (s(1 / len(X)), s(ALPHA), s(lr), s(BETA_1), s(BETA_2), s(EPSILON))
        n_layers = len(self.W)
        for i in reversed(range(n_layers)):
            cp.matmul(activations[i].T, delta, out=self.grad_W[i])
            grad_b = delta.sum(axis=0)
            if i > 0:  # the input needs no gradient
                next_delta = delta @ self.W[i].T
                cp.copyto(next_delta, 0, where=activations[i] == 0)
            m, v = self.moments[i]
            self.adam(self.grad_W[i], *args, self.W[i], m, v)
            m, v = self.moments[n_layers + i]
            self.adam(grad_b, args[0], s(0), *args[2:], self.b[i], m, v)
            if i > 0:
                delta = next_delta
        return loss


def dense_step_time(cp, units, batch, dtype, n_steps, repeats):
    """Median per-step time (s) of the dense floor, or a string saying why there is none."""
    need = dense_bytes(units, batch, np.dtype(dtype).itemsize)
    free = cp.cuda.runtime.memGetInfo()[0] + cp.get_default_memory_pool().free_bytes()
    if need > 0.9 * free:
        return f"OOM (needs {need / 2**30:.0f} GiB, {free / 2**30:.0f} GiB free)"
    try:
        model = DenseMLP(cp, units, dtype)
        rng = cp.random.default_rng(1)
        X = rng.standard_normal((batch * n_steps, units[0]), dtype=np.float32).astype(dtype)
        Y = cp.eye(units[-1], dtype=dtype)[rng.integers(0, units[-1], batch * n_steps)]
        batches = [(X[k * batch : (k + 1) * batch], Y[k * batch : (k + 1) * batch])
                   for k in range(n_steps)]
        for Xb, Yb in batches[:2]:  # warm-up: kernel compilation, cuBLAS workspaces
            model.step(Xb, Yb)
        times = []
        for _ in range(repeats):
            cp.cuda.Device().synchronize()
            start = time.perf_counter()
            for Xb, Yb in batches:
                model.step(Xb, Yb)
            cp.cuda.Device().synchronize()
            times.append((time.perf_counter() - start) / n_steps)
        return statistics.median(times)
    except cp.cuda.memory.OutOfMemoryError:
        return "OOM"
    finally:
        model = X = Y = batches = None
        cp.get_default_memory_pool().free_all_blocks()


# ----------------------------------------------------------------------
# Kernels: the scatter and the materialise, unsharded and sharded
# ----------------------------------------------------------------------


def kernel_ms(cp, repeats, kernel, *args, n_calls=10):
    """Median ms of one ``kernel(*args)`` on the GPU, over ``repeats`` timings of ``n_calls``."""
    kernel(*args)  # warm-up: kernel compilation
    times = []
    for _ in range(repeats):
        cp.cuda.Device().synchronize()
        start = time.perf_counter()
        for _ in range(n_calls):
            kernel(*args)
        cp.cuda.Device().synchronize()
        times.append((time.perf_counter() - start) / n_calls)
    return 1e3 * statistics.median(times)


def shard_kernel_row(cp, n_in, n_out, compression, hashing, dtype, repeats):
    """Scatter and materialise of one virtual matrix, unsharded and as "auto" shards it."""
    from sk_hashednets._kernels import _cuda

    backend = _cuda.CUDABackend()
    (n_buckets,) = resolve_n_buckets(None, compression, [n_in, n_out])
    n_shards = auto_shards(n_in, n_buckets)
    rng = cp.random.default_rng(2)
    grad = rng.standard_normal((n_in, n_out), dtype=np.float32).astype(dtype)
    weights = rng.standard_normal(n_buckets, dtype=np.float32).astype(dtype)
    bucket_grad, tile = cp.zeros(n_buckets, dtype=dtype), cp.empty((n_in, n_out), dtype=dtype)
    times = []
    for shards in (1, n_shards):
        layer_hash = LayerHash.for_layer(
            12345, sign_hash=True, hashing=hashing, n_buckets=n_buckets, n_shards=shards,
            n_rows=n_in,
        )
        scatter = (backend.scatter_bucket_grad, layer_hash, grad, bucket_grad, None)
        times.append([
            kernel_ms(cp, repeats, *scatter),
            kernel_ms(cp, repeats, backend.materialize_tile, layer_hash, weights, tile),
        ])
    # Chunks of the largest shard's buckets, each one pass of the sharded scatter over its rows.
    chunks = _cuda._shard_chunks(layer_hash, np.dtype(dtype).itemsize)[1] if n_shards > 1 else "-"
    (scatter_1, materialize_1), (scatter_s, materialize_s) = times
    return [
        f"{n_in}-{n_out}", f"{compression:g}", str(n_buckets), str(n_shards), str(chunks),
        f"{scatter_1:.3f}", f"{scatter_s:.3f}", f"{scatter_1 / scatter_s:.2f}",
        f"{materialize_1:.3f}", f"{materialize_s:.3f}",
    ]


# ----------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------


def throughput(batch, step):
    return f"{batch / step:.0f}" if isinstance(step, float) else step


def ms(seconds):
    return f"{1e3 * seconds:.2f}" if isinstance(seconds, float) else "-"


def ratio(a, b):
    return f"{a / b:.2f}" if isinstance(a, float) and isinstance(b, float) else "-"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=parse_shape, nargs="+", default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=None)
    parser.add_argument("--compression", type=float, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="minibatches per epoch (GPU)")
    parser.add_argument(
        "--epochs", type=int, default=None, help="GPU epochs timed beyond a 1-epoch fit"
    )
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument(
        "--cpu-shapes", type=parse_shape, nargs="*", default=None,
        help="shapes also timed on the CPU backend (none: skip the CPU)",
    )
    parser.add_argument("--cpu-steps", type=int, default=None, help="minibatches per CPU epoch")
    parser.add_argument("--hashing", default=None, help="passed to the estimator when given")
    parser.add_argument("--max-tile-bytes", type=int, default=None)
    parser.add_argument(
        "--scatter-shapes", type=parse_shape, nargs="*", default=None,
        help="virtual matrices (n_in-n_out) whose scatter and materialise are timed "
        "unsharded and sharded (none: skip)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            shapes = name in ("shapes", "cpu_shapes", "scatter_shapes")
            setattr(args, name, [parse_shape(s) for s in value] if shapes else value)
    for name in ("repeats", "steps", "epochs", "cpu_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if min(args.batch) < 1 or any(not 0 < c <= 1 for c in args.compression):
        parser.error("--batch must be >= 1 and --compression in (0, 1]")
    return args


def main(argv=None):
    args = parse_args(argv)
    extra = hashed_extra_params(args.hashing, args.max_tile_bytes)
    try:
        resolve_device("cuda")
    except (ImportError, RuntimeError) as error:
        sys.exit(f"bench_gpu.py measures on a CUDA GPU and cannot run here: {error}")
    import cupy as cp

    warnings.simplefilter("ignore")  # ConvergenceWarning of every timed fit
    for line in gpu_lines(cp):
        print(line)
    print(
        f"data: {args.dtype} N(0, 1) features, uniform random classes; GPU: {args.steps} "
        f"minibatches per epoch, fits of 1 and {1 + args.epochs} epochs; CPU: "
        f"{args.cpu_steps} minibatches per epoch, fits of 1 and 2 epochs; {args.repeats} "
        "repeats after a warm-up fit, medians"
    )

    cpu_shapes = {shape_name(u) for u in args.cpu_shapes}
    rows = []
    for units in args.shapes:
        for batch in args.batch:
            print(f"measuring the dense floor {shape_name(units)} batch {batch} ...",
                  file=sys.stderr, flush=True)
            floor = dense_step_time(cp, units, batch, args.dtype, args.steps, args.repeats)
            for compression in args.compression:
                print(f"measuring hashed {shape_name(units)} batch {batch} compression "
                      f"{compression:g} ...", file=sys.stderr, flush=True)
                X, y = make_data(args.steps * batch, units, args.dtype)
                model = make_hashed(units, batch, compression, "cuda", extra)
                try:
                    gpu, gpu_fixed = hashed_step_time(cp, model, X, y, args.epochs, args.repeats)
                except MemoryError as error:
                    gpu, gpu_fixed = "OOM", str(error)
                    print(f"hashed GPU: {error}", file=sys.stderr)
                model = None
                cp.get_default_memory_pool().free_all_blocks()
                cpu = "-"
                if shape_name(units) in cpu_shapes:
                    Xc, yc = make_data(args.cpu_steps * batch, units, args.dtype)
                    cpu_model = make_hashed(units, batch, compression, "cpu", extra)
                    cpu, _ = hashed_step_time(cp, cpu_model, Xc, yc, 1, args.repeats)
                rows.append(
                    [shape_name(units), str(batch), f"{compression:g}"]
                    + [throughput(batch, t) for t in (gpu, floor, cpu)]
                    + [ratio(gpu, floor), ratio(cpu, gpu)]
                    + [ms(gpu), ms(floor), ms(gpu_fixed)]
                )

    print_table(
        "Training throughput (samples/s; medians; step = timed fit / its minibatches)",
        ["shape", "batch", "compression", "hashed GPU", "dense cuBLAS floor", "hashed CPU",
         "hashed/cuBLAS (step time)", "GPU/CPU (speed-up)", "hashed GPU step (ms)",
         "cuBLAS step (ms)", "hashed GPU fit fixed cost (ms)"],
        rows,
        args.markdown,
        n_text=3,
    )

    hashing = args.hashing or "element"
    kernel_rows = [
        shard_kernel_row(cp, n_in, n_out, compression, hashing, args.dtype, args.repeats)
        for n_in, n_out in (units[:2] for units in args.scatter_shapes)
        for compression in args.compression
    ]
    if kernel_rows:
        print_table(
            f"CUDA kernels on one virtual matrix, unsharded and sharded (hash_shards='auto'), "
            f"{hashing} hashing, {args.dtype} (ms per call; medians)",
            ["matrix", "compression", "buckets", "shards", "chunks per shard",
             "scatter, 1 shard", "scatter, sharded", "scatter 1 shard / sharded",
             "materialise, 1 shard", "materialise, sharded"],
            kernel_rows,
            args.markdown,
            n_text=5,
        )


if __name__ == "__main__":
    main()
