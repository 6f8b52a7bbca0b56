"""Peak memory of training a hashed network of a billion virtual weights, against its dense twin.

Usage::

    python benchmarks/bench_memory.py [--hidden 32768 32768] [--compression 0.0009765625]
        [--steps 20] [--batch 64] [--max-tile-bytes N] [--hashing element] [--dense-copies 1]
        [--quick]

Trains ``HashedMLPClassifier(hidden_layer_sizes=(32768, 32768), compression=1/1024,
batch_size=64, solver="adam")`` on 784 float32 random features (10 classes) for
exactly ``--steps`` minibatch steps: one ``partial_fit`` epoch over
``steps * batch`` samples, about 1.1 billion virtual weights. A tiny fit first
loads the Numba kernels, so the timed epoch does not include JIT compilation.
Prints the virtual and stored parameter counts, the dense size of the virtual
weights, the wall time and the process's peak resident memory (``ru_maxrss``).

Then, in a child process, it allocates the dense ``MLPClassifier``
coefficient matrices of the same architecture (``--dense-copies`` times: 1 for
the weights alone, 4 for weights, gradients and Adam's two moments) in float32
and float64, writing every page, and reports whether they fit and the child's
peak RSS. Nothing is allocated that would exceed the machine's available memory
(``MemAvailable`` in /proc/meminfo) minus 2 GiB: such a case is reported as
"would need X GB > available Y GB".

The full-size run takes minutes on 2 cores; ``--quick`` runs a small network in
seconds, with small tiles so that the tiled code paths run.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np
from _common import hashed_extra_params, maxrss_mib, via_shell, vmhwm_mib

GIB = 2**30
GB = 10**9
#: Memory left to the rest of the machine by the dense-allocation child.
HEADROOM = 2 * GIB
N_FEATURES = 784
N_CLASSES = 10


def mem_available():
    """``MemAvailable`` of /proc/meminfo in bytes, or None where there is none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def layer_shapes(hidden):
    units = [N_FEATURES, *hidden, N_CLASSES]
    return list(zip(units[:-1], units[1:]))


def sizes(n_bytes):
    return f"{n_bytes / GB:.2f} GB ({n_bytes / GIB:.2f} GiB)"


def dense_child(args):
    """``--dense-child DTYPE``: allocate and touch the dense matrices; print a JSON line."""
    dtype = np.dtype(args.dense_child)
    shapes = layer_shapes(args.hidden)
    need = args.dense_copies * sum(a * b for a, b in shapes) * dtype.itemsize
    available = mem_available()
    report = {"dtype": dtype.name, "need_bytes": need, "available_bytes": available}
    if available is None or need > available - HEADROOM:
        report["allocated"] = False
    else:
        start = time.perf_counter()
        matrices = []
        for _ in range(args.dense_copies):
            for shape in shapes:
                # np.zeros would map zero pages lazily: fill() writes every page.
                matrix = np.empty(shape, dtype=dtype)
                matrix.fill(0)
                matrices.append(matrix)
        report["allocated"] = True
        report["seconds"] = time.perf_counter() - start
    report["peak_mib"] = maxrss_mib()
    report["vmhwm_mib"] = vmhwm_mib()
    print(json.dumps(report))


def run_dense_child(dtype, args):
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--dense-child",
        dtype,
        "--dense-copies",
        str(args.dense_copies),
        "--hidden",
        *map(str, args.hidden),
    ]
    result = subprocess.run(via_shell(command), capture_output=True, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        # A child killed by the kernel's OOM killer has returncode -9.
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"dtype": dtype, "error": f"child exited {result.returncode}: {tail}"}
    return json.loads(lines[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=None)
    parser.add_argument("--compression", type=float, default=None)
    parser.add_argument("--steps", type=int, default=None, help="minibatch steps (one epoch)")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--max-tile-bytes", type=int, default=None)
    parser.add_argument("--hashing", default=None, help="left out, the estimator's default")
    parser.add_argument(
        "--dense-copies",
        type=int,
        default=1,
        help="dense matrices per layer to allocate (1: weights; 4: adam's training state)",
    )
    parser.add_argument("--quick", action="store_true", help="a small network, for a smoke run")
    parser.add_argument("--dense-child", choices=["float32", "float64"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.quick:
        defaults = {"hidden": [2048, 2048], "compression": 1 / 64, "steps": 5, "batch": 64}
        if args.max_tile_bytes is None:
            args.max_tile_bytes = 2**20  # several tiles per layer, to run the tiled paths
    else:
        defaults = {"hidden": [32768, 32768], "compression": 1 / 1024, "steps": 20, "batch": 64}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.dense_copies < 1 or min(args.hidden) < 1:
        parser.error("--dense-copies and --hidden must be >= 1")

    if args.dense_child:
        dense_child(args)
        return

    if args.steps < 1 or args.batch < 1 or not 0 < args.compression <= 1:
        parser.error("--steps and --batch must be >= 1, --compression in (0, 1]")

    from sk_hashednets import HashedMLPClassifier

    baseline = maxrss_mib()
    extra = hashed_extra_params(args.hashing, args.max_tile_bytes)
    print(f"command: python {shlex.join(sys.argv)}")
    print(
        f"cores: {os.cpu_count()}, MemAvailable: {sizes(mem_available() or 0)}, "
        f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}"
    )

    # Load (or compile) the kernels on a tiny network first, in the same dtype,
    # in one tile and in many (16-byte tiles), so that the timed fit runs warm.
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for tile_bytes in (None, 16):
        tiny = HashedMLPClassifier(hidden_layer_sizes=(8,), batch_size=8, **extra)
        if tile_bytes is not None:
            tiny.set_params(max_tile_bytes=tile_bytes)
        tiny.partial_fit(
            rng.standard_normal((16, 4), dtype=np.float32),
            np.arange(16) % N_CLASSES,
            classes=np.arange(N_CLASSES),
        )
    warmup = time.perf_counter() - start
    after_warmup = maxrss_mib()

    n_samples = args.steps * args.batch
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n_samples, N_FEATURES), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, n_samples)
    clf = HashedMLPClassifier(
        hidden_layer_sizes=tuple(args.hidden),
        compression=args.compression,
        batch_size=args.batch,
        solver="adam",
        random_state=0,
        **extra,
    )
    start = time.perf_counter()
    clf.partial_fit(X, y, classes=np.arange(N_CLASSES))
    wall = time.perf_counter() - start
    peak = maxrss_mib()

    n_virtual_weights = sum(a * b for a, b in layer_shapes(args.hidden))
    print(
        f"network: {N_FEATURES}-{'-'.join(map(str, args.hidden))}-{N_CLASSES}, "
        f"compression {args.compression:g}, batch {args.batch}, {args.steps} steps "
        f"({n_samples} samples, one partial_fit epoch), solver adam, float32, "
        f"hashing {clf.hashing_}, max_tile_bytes {clf.max_tile_bytes}"
    )
    print(f"n_virtual_params_: {clf.n_virtual_params_:,}")
    print(f"n_stored_params_: {clf.n_stored_params_:,}")
    print(f"dense float32 virtual weights: {sizes(4 * n_virtual_weights)}")
    print(f"stored float32 buckets: {sizes(4 * sum(clf.n_buckets_))}")
    print(f"kernel warm-up (tiny fit, not timed below): {warmup:.1f} s")
    print(f"wall time of the {args.steps} steps: {wall:.1f} s ({wall / args.steps:.2f} s per step)")
    print(
        f"peak RSS (ru_maxrss): {peak:.0f} MiB; baseline after imports {baseline:.0f} MiB, "
        f"after kernel warm-up {after_warmup:.0f} MiB, data X {X.nbytes / 2**20:.0f} MiB "
        f"(VmHWM {vmhwm_mib():.0f} MiB)"
    )
    print(f"final training loss: {clf.loss_:.4f}")
    del clf, X

    what = "weights" if args.dense_copies == 1 else f"{args.dense_copies} copies of the weights"
    print(f"dense MLPClassifier coefficient matrices ({what}), in a child process:")
    for dtype in ("float32", "float64"):
        report = run_dense_child(dtype, args)
        if "error" in report:
            print(f"  {dtype}: {report['error']}")
        elif report["allocated"]:
            print(
                f"  {dtype}: fits: allocated and wrote {sizes(report['need_bytes'])} in "
                f"{report['seconds']:.1f} s, child peak RSS {report['peak_mib']:.0f} MiB "
                f"(VmHWM {report['vmhwm_mib']:.0f} MiB)"
            )
        elif report["available_bytes"] is None:
            print(f"  {dtype}: not tried: no MemAvailable in /proc/meminfo")
        else:
            print(
                f"  {dtype}: would need {report['need_bytes'] / GB:.2f} GB > available "
                f"{(report['available_bytes'] - HEADROOM) / GB:.2f} GB (MemAvailable "
                f"{report['available_bytes'] / GB:.2f} GB minus 2 GiB of headroom): "
                "not allocated"
            )


if __name__ == "__main__":
    main()
