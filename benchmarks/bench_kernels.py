"""The CPU kernels alone: materialise and scatter, from the hash or from a bucket index tile.

Usage::

    python benchmarks/bench_kernels.py [--layers 784x1000x98000 4096x4096x2097152 ...]
        [--repeats 7] [--threads N] [--flush-mib 64] [--partials-mib M]
        [--shards [--n-shards S ...] [--compare-layouts] [--after-gemm]] [--finish]

For each layer (``n_in x n_out x n_buckets``) and hashing, the median time of

- hashing the whole matrix into its bucket index tile (``bucket_index_tile``,
  once per fit of a layer that keeps its index);
- materialising the whole virtual matrix: ``materialize_tile`` (hashing every
  entry) and ``gather_tile`` (reading the bucket index tile that a training
  layer keeps);
- scattering a whole gradient tile into the buckets: ``scatter_bucket_grad``
  (hashing) and ``scatter_indexed`` (the index); both give the same bits;
- the indexed scatter again, right after the GEMM that produces the gradient
  in a training step (``A.T @ D``, batch ``--batch``): OpenBLAS's threads spin
  for a while after each call (``OPENBLAS_THREAD_TIMEOUT``, read when NumPy
  loads OpenBLAS; the header prints it) and compete with Numba's for the cores;
- the indexed materialise and the indexed scatter with cold caches, as in a
  training step, where the rest of the step's data passes through the caches
  between two uses of a layer's index: after writing ``--flush-mib`` MiB of
  other data (and, for the scatter, then the GEMM).

``--partials-mib`` sets the memory of the scatter's partial sums
(``_cpu.SCATTER_PARTIALS_BYTES``; 0 keeps only the ``2 x threads`` bucket
vectors of the rule before it), to time the scatter under another workspace.

``--shards`` times instead, side by side, the sharded hash (``hash_shards="auto"``,
``docs/hashing.md``) against today's: the scatter from the hash and from the
index (today's, partial sums and a reduction pass) against the sharded scatter
(each thread owns whole shards), the materialise from the hash both ways, and
the ratios ``today / sharded``, and the sharded scatter from the sharded
hash's index (a training layer's, each thread owning whole shards) against
today's indexed scatter; ``--n-shards`` times these shard counts
instead of "auto"'s (one row each), to choose the rule. The sharded hash is
hash version 3's (row ``i`` in shard ``i % S``); ``--compare-layouts`` times
version 2's contiguous shards too, in the same run: its sharded scatters and
materialise (from the hash and from the index), and the ratios of version 3's
times to them. ``--after-gemm`` times the sharded index gather and scatter (a
training layer's kernels) right after the GEMM of a training step (``A @ W``
before the gather, ``A.T @ D`` before the scatter, batch ``--batch``), and
after the same GEMM followed by a pause of ``PAUSE_S`` seconds, long enough
for OpenBLAS's threads to stop spinning and sleep: their ratio is what the
spinning threads cost the kernel in a step.

``--finish`` times instead a training layer's scatter (from the index under
element hashing, from the hash under block hashing) with the bucket
gradient's last terms (``GradientFinish``: ``+ alpha * w``, ``/ batch``), today's
hash and the sharded one: zeroing, the scatter and NumPy's formulas after it
(the code before the terms were fused), against the scatter writing them
with its sums; both give the same bits. Each after ``--flush-mib`` MiB of
other data, as in a training step, the two timed in turn in every repeat.

The layer's choices (``HashedLayer``: index for materialising, and for the
scatter under element hashing only) follow these figures.
"""

import argparse
import os
import platform
import statistics
import time

import numba
import numpy as np
import threadpoolctl

from sk_hashednets._kernels import GradientFinish, LayerHash, _cpu
from sk_hashednets._kernels._cpu import CPUBackend
from sk_hashednets._kernels._hashing import auto_shards

DEFAULT_LAYERS = ["784x1000x98000", "784x1000x12250", "4096x4096x2097152", "4096x4096x262144"]
#: ``--after-gemm``'s pause after the GEMM (s): OpenBLAS's threads spin for 2**28
#: cycles by default (``OPENBLAS_THREAD_TIMEOUT``), a tenth of a second at 2.7 GHz.
PAUSE_S = 0.3


def parse_layer(text):
    n_in, n_out, n_buckets = (int(v) for v in text.split("x"))
    return n_in, n_out, n_buckets


def median_ms(function, repeats, before=None):
    function()  # compiles, warms the caches
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def bench_hash(hashing, n_buckets, n_shards, n_rows, layout="cyclic"):
    """The benchmarks' layer hash (seed 12345, signed) with ``n_shards`` shards."""
    return LayerHash.for_layer(
        12345,
        sign_hash=True,
        hashing=hashing,
        n_buckets=n_buckets,
        n_shards=n_shards,
        n_rows=n_rows,
        shard_layout=layout,
    )


def cache_flush(flush_mib):
    """A function that writes ``flush_mib`` MiB of other data through every cache level."""
    other_data = np.zeros(flush_mib * 2**20 // 4, dtype=np.float32)

    def flush():
        other_data[:] += 1

    return flush


def layer_arrays(backend, layer_hash, n_in, n_out):
    """Random float32 buckets and gradient, the bucket index, a tile, scratch, a bucket gradient."""
    rng = np.random.default_rng(0)
    n_buckets = layer_hash.n_buckets
    weights = rng.standard_normal(n_buckets).astype(np.float32)
    grad = rng.standard_normal((n_in, n_out)).astype(np.float32)
    index = np.empty((n_in, n_out), dtype=np.uint32)
    backend.bucket_index_tile(layer_hash, index)
    tile = np.empty((n_in, n_out), dtype=np.float32)
    block_rows = backend.scatter_block_rows(n_in, n_out, n_buckets)
    scratch = backend.scatter_workspace(n_in, block_rows, n_buckets, np.float32)
    return weights, grad, index, tile, scratch, np.zeros(n_buckets, dtype=np.float32)


def measure(n_in, n_out, n_buckets, hashing, batch, repeats, flush_mib):
    backend = CPUBackend()
    rng = np.random.default_rng(0)
    layer_hash = LayerHash(
        seed=12345, sign_seed=67890, sign_hash=True, hashing=hashing, n_buckets=n_buckets
    )
    weights, grad, index, tile, scratch, bucket_grad = layer_arrays(
        backend, layer_hash, n_in, n_out
    )
    A = rng.standard_normal((batch, n_in)).astype(np.float32)
    D = rng.standard_normal((batch, n_out)).astype(np.float32)
    gemm_out = np.empty((n_in, n_out), dtype=np.float32)
    flush = cache_flush(flush_mib)

    return {
        "index build": median_ms(
            lambda: backend.bucket_index_tile(layer_hash, index),
            repeats,
        ),
        "hash materialise": median_ms(
            lambda: backend.materialize_tile(layer_hash, weights, tile),
            repeats,
        ),
        "index materialise": median_ms(lambda: backend.gather_tile(weights, index, tile), repeats),
        "hash scatter": median_ms(
            lambda: backend.scatter_bucket_grad(layer_hash, grad, bucket_grad, scratch),
            repeats,
        ),
        "index scatter": median_ms(
            lambda: backend.scatter_indexed(grad, index, bucket_grad, scratch), repeats
        ),
        "index scatter after GEMM": median_ms(
            lambda: backend.scatter_indexed(grad, index, bucket_grad, scratch),
            repeats,
            before=lambda: np.matmul(A.T, D, out=gemm_out),
        ),
        "index materialise, cold": median_ms(
            lambda: backend.gather_tile(weights, index, tile), repeats, before=flush
        ),
        "index scatter, cold, after GEMM": median_ms(
            lambda: backend.scatter_indexed(grad, index, bucket_grad, scratch),
            repeats,
            before=lambda: (flush(), np.matmul(A.T, D, out=gemm_out)),
        ),
    }


def measure_shards(
    n_in, n_out, n_buckets, hashing, repeats, n_shards=None, layouts=False, after_gemm_batch=None
):
    """Today's hash and the sharded one (``n_shards``, default "auto"): ms per matrix.

    With ``layouts``, also the sharded kernels under version 2's contiguous shards;
    with ``after_gemm_batch``, the sharded index kernels after a GEMM of that batch.
    """
    backend = CPUBackend()
    if n_shards is None:
        n_shards = auto_shards(n_in, n_buckets)
    n_shards = min(n_shards, n_in, n_buckets)
    today, sharded = (bench_hash(hashing, n_buckets, s, n_in) for s in (1, n_shards))
    weights, grad, index, tile, scratch, bucket_grad = layer_arrays(backend, today, n_in, n_out)
    sharded_index = np.empty_like(index)
    backend.bucket_index_tile(sharded, sharded_index)
    row = {
        "shards": n_shards,
        "hash scatter": median_ms(
            lambda: backend.scatter_bucket_grad(today, grad, bucket_grad, scratch), repeats
        ),
        "index scatter": median_ms(
            lambda: backend.scatter_indexed(grad, index, bucket_grad, scratch), repeats
        ),
        "sharded scatter": median_ms(
            lambda: backend.scatter_bucket_grad(sharded, grad, bucket_grad, scratch), repeats
        ),
        "sharded index scatter": median_ms(
            lambda: backend.scatter_indexed(
                grad, sharded_index, bucket_grad, None, layer_hash=sharded
            ),
            repeats,
        ),
        "hash materialise": median_ms(
            lambda: backend.materialize_tile(today, weights, tile), repeats
        ),
        "sharded materialise": median_ms(
            lambda: backend.materialize_tile(sharded, weights, tile), repeats
        ),
    }
    if layouts:
        contiguous = bench_hash(hashing, n_buckets, n_shards, n_in, "contiguous")
        contiguous_index = np.empty_like(index)
        backend.bucket_index_tile(contiguous, contiguous_index)
        row["contiguous scatter"] = median_ms(
            lambda: backend.scatter_bucket_grad(contiguous, grad, bucket_grad, scratch), repeats
        )
        row["contiguous index scatter"] = median_ms(
            lambda: backend.scatter_indexed(
                grad, contiguous_index, bucket_grad, None, layer_hash=contiguous
            ),
            repeats,
        )
        row["contiguous materialise"] = median_ms(
            lambda: backend.materialize_tile(contiguous, weights, tile), repeats
        )
        row["sharded index materialise"] = median_ms(
            lambda: backend.gather_tile(weights, sharded_index, tile, layer_hash=sharded),
            repeats,
        )
        row["contiguous index materialise"] = median_ms(
            lambda: backend.gather_tile(weights, contiguous_index, tile, layer_hash=contiguous),
            repeats,
        )
        for kernel in ("scatter", "index scatter", "materialise", "index materialise"):
            row[f"cyclic / contiguous {kernel}"] = (
                row[f"sharded {kernel}"] / row[f"contiguous {kernel}"]
            )
    if after_gemm_batch is not None:
        row.update(
            after_gemm(backend, sharded, sharded_index, weights, grad, after_gemm_batch, repeats)
        )
    row["hash / sharded scatter"] = row["hash scatter"] / row["sharded scatter"]
    row["index / sharded scatter"] = row["index scatter"] / row["sharded scatter"]
    row["index / sharded index scatter"] = row["index scatter"] / row["sharded index scatter"]
    return row


def after_gemm(backend, layer_hash, index, weights, grad, batch, repeats):
    """The sharded index kernels right after a step's GEMM, and after the GEMM and a pause."""
    rng = np.random.default_rng(1)
    n_in, n_out = index.shape
    A = rng.standard_normal((batch, n_in)).astype(np.float32)
    D = rng.standard_normal((batch, n_out)).astype(np.float32)
    Z, G = np.empty((batch, n_out), np.float32), np.empty((n_in, n_out), np.float32)
    tile, bucket_grad = np.empty((n_in, n_out), np.float32), np.zeros(weights.shape, np.float32)

    def forward_gemm():
        np.matmul(A, tile, out=Z)

    def gradient_gemm():
        np.matmul(A.T, D, out=G)

    def gather():
        backend.gather_tile(weights, index, tile, layer_hash=layer_hash)

    def scatter():
        backend.scatter_indexed(grad, index, bucket_grad, None, layer_hash=layer_hash)

    row = {}
    for kernel, function, gemm in (
        ("gather", gather, forward_gemm),
        ("scatter", scatter, gradient_gemm),
    ):
        row[f"{kernel} after GEMM"] = median_ms(function, repeats, before=gemm)
        row[f"{kernel} after GEMM and pause"] = median_ms(
            function, repeats, before=lambda gemm=gemm: (gemm(), time.sleep(PAUSE_S))
        )
        row[f"{kernel}: after GEMM / after pause"] = (
            row[f"{kernel} after GEMM"] / row[f"{kernel} after GEMM and pause"]
        )
    return row


def measure_finish(n_in, n_out, n_buckets, hashing, repeats, flush_mib):
    """The training layer's scatter and the gradient's last terms: formulas after it, or fused."""
    flush = cache_flush(flush_mib)
    row = {}
    for name, n_shards in (("today", 1), ("sharded", auto_shards(n_in, n_buckets))):
        layer_hash = bench_hash(hashing, n_buckets, n_shards, n_in)
        formulas, fused = finish_times(layer_hash, n_in, n_out, repeats, flush)
        row[f"{name}: formulas after"] = formulas
        row[f"{name}: fused"] = fused
        row[f"{name}: formulas / fused"] = formulas / fused
    return row


def finish_times(layer_hash, n_in, n_out, repeats, flush):
    """ms of the scatter with NumPy's formulas after it, and of the scatter that fuses them."""
    backend = CPUBackend()
    weights, grad, index, _, scratch, out = layer_arrays(backend, layer_hash, n_in, n_out)
    scratch = None if layer_hash.sharded else scratch
    finish = GradientFinish(weights, 1e-4, 256)

    def scatter(finish):
        if layer_hash.hashing == "element":
            backend.scatter_indexed(grad, index, out, scratch, layer_hash=layer_hash, finish=finish)
        else:
            backend.scatter_bucket_grad(layer_hash, grad, out, scratch, finish=finish)

    def formulas():
        out[...] = 0
        scatter(None)
        finish.apply(out)

    return interleaved_ms([formulas, lambda: scatter(finish)], repeats, before=flush)


def interleaved_ms(functions, repeats, before):
    """Median ms of each function, timed in turn in every repeat (the machine's drift shared)."""
    for function in functions:
        function()  # compiles, warms the caches
    times = [[] for _ in functions]
    for _ in range(repeats):
        for function, kept in zip(functions, times):
            before()
            start = time.perf_counter()
            function()
            kept.append(time.perf_counter() - start)
    return [1e3 * statistics.median(kept) for kept in times]


#: ``--finish``'s columns (``measure_finish``).
FINISH_COLUMNS = [
    f"{name}: {column}"
    for name in ("today", "sharded")
    for column in ("formulas after", "fused", "formulas / fused")
]


#: ``--after-gemm``'s columns (``after_gemm``).
AFTER_GEMM_COLUMNS = [
    f"{kernel}{suffix}"
    for kernel in ("gather", "scatter")
    for suffix in (" after GEMM", " after GEMM and pause", ": after GEMM / after pause")
]


def print_shards(args):
    columns = [
        "hash scatter",
        "index scatter",
        "sharded scatter",
        "hash / sharded scatter",
        "index / sharded scatter",
        "sharded index scatter",
        "index / sharded index scatter",
        "hash materialise",
        "sharded materialise",
    ]
    if args.compare_layouts:
        columns += [
            name
            for kernel in ("scatter", "index scatter", "materialise", "index materialise")
            for name in (f"contiguous {kernel}", f"cyclic / contiguous {kernel}")
        ]
    if args.after_gemm:
        columns += AFTER_GEMM_COLUMNS
    counts = args.n_shards or [None]
    batch = args.batch if args.after_gemm else None
    print_table(
        args,
        ["shards"] + columns,
        lambda *layer: [
            measure_shards(*layer, args.repeats, count, args.compare_layouts, batch)
            for count in counts
        ],
    )


def print_table(args, columns, measure_layer):
    """One markdown row per layer and hashing: ``measure_layer(n_in, n_out, K, hashing)``'s."""
    print("| layer | buckets | hashing | " + " | ".join(columns) + " |")
    print("|---|---:|---|" + "---:|" * len(columns))
    for text in args.layers:
        n_in, n_out, n_buckets = parse_layer(text)
        for hashing in args.hashing:
            rows = measure_layer(n_in, n_out, n_buckets, hashing)
            for row in rows if isinstance(rows, list) else [rows]:
                cells = " | ".join(
                    f"{row[c]:.2f}" if c != "shards" else str(row[c]) for c in columns
                )
                print(f"| {n_in}x{n_out} | {n_buckets} | {hashing} | {cells} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", nargs="+", default=DEFAULT_LAYERS)
    parser.add_argument("--hashing", nargs="+", default=["element", "block"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--threads", type=int, default=None, help="Numba threads (default: Numba's own)"
    )
    parser.add_argument(
        "--flush-mib", type=int, default=64, help="other data written before a cold measurement"
    )
    parser.add_argument(
        "--partials-mib",
        type=float,
        default=None,
        help="memory of the scatter's partial sums (default: the backend's, "
        f"{_cpu.SCATTER_PARTIALS_BYTES / 2**20:g} MiB)",
    )
    parser.add_argument(
        "--shards",
        action="store_true",
        help='time the sharded hash (hash_shards="auto") against today\'s, side by side',
    )
    parser.add_argument(
        "--n-shards",
        type=int,
        nargs="+",
        default=None,
        help="with --shards: these shard counts (each capped by the rows and buckets) "
        'instead of "auto", one row each',
    )
    parser.add_argument(
        "--compare-layouts",
        action="store_true",
        help="with --shards: also version 2's contiguous shards, side by side",
    )
    parser.add_argument(
        "--after-gemm",
        action="store_true",
        help="with --shards: the sharded index kernels right after a step's GEMM, "
        "and after the GEMM and a pause (OpenBLAS's threads asleep)",
    )
    parser.add_argument(
        "--finish",
        action="store_true",
        help="the scatter with the gradient's last terms: formulas after it, or fused",
    )
    args = parser.parse_args()
    for option in ("compare_layouts", "after_gemm", "n_shards"):
        if getattr(args, option) and not args.shards:
            parser.error(f"--{option.replace('_', '-')} goes with --shards")
    if args.threads is not None:
        numba.set_num_threads(args.threads)
    if args.partials_mib is not None:
        _cpu.SCATTER_PARTIALS_BYTES = int(args.partials_mib * 2**20)
    blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(
        f"numba {numba.__version__}, {numba.get_num_threads()} threads; "
        + "; ".join(f"{b['internal_api']} {b['version']} {b['num_threads']} threads" for b in blas)
        + f"; OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset')}"
    )
    if args.shards:
        print(f"float32, medians of {args.repeats}, ms per whole matrix\n")
        print_shards(args)
        return
    if args.finish:
        print(
            f"float32, medians of {args.repeats}, ms per whole matrix, each after writing "
            f"{args.flush_mib} MiB of other data\n"
        )
        print_table(
            args,
            FINISH_COLUMNS,
            lambda *layer: measure_finish(*layer, args.repeats, args.flush_mib),
        )
        return
    print(
        f"float32, medians of {args.repeats}, ms per whole matrix; cold: after writing "
        f"{args.flush_mib} MiB of other data; scatter partial sums: "
        f"{_cpu.SCATTER_PARTIALS_BYTES / 2**20:g} MiB\n"
    )
    columns = [
        "index build",
        "hash materialise",
        "index materialise",
        "hash scatter",
        "index scatter",
        "index scatter after GEMM",
        "index materialise, cold",
        "index scatter, cold, after GEMM",
    ]
    print_table(
        args,
        columns,
        lambda *layer: measure(*layer, args.batch, args.repeats, args.flush_mib),
    )


if __name__ == "__main__":
    main()
