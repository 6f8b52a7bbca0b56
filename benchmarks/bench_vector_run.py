"""Block hashing's table kernel at batch 1, against the loop it replaced.

Usage::

    python benchmarks/bench_vector_run.py [--n 4096] [--compression 0.015625]
        [--zero-rows 0 0.5] [--dtype float32] [--aligned] [--repeats 31]
    python benchmarks/bench_vector_run.py --model [--repeats 41]

``_numba_predict.table_matmul`` (prediction at batches of up to 8 under block
hashing) adds, per row of ``W`` and run of 16 columns, 16 consecutive buckets
times the row's input with the sign chosen lane by lane. At batch 1 the
package walks each run column down the rows with its 16 outputs in one LLVM
vector (``_kernels/_vector_run.py``), from run-major tables. This script
keeps the loop it replaced (``_loop_row_into``, as of commit 4dd8bdd: row by
row, a loop of 16 per run, row-major tables), compiled as the package
compiled it, and times both on an ``n x n`` layer at batch 1 with random
tables, alternating, one thread: the median ms of a call, the ns per (row,
run) and the ratio, and whether the two outputs are the same bits.
``--zero-rows`` makes that fraction of the input zero (rows the kernel skips,
as after a ReLU). ``--aligned`` draws run starts that are multiples of 16 (64
bytes of float32: no load crosses a cache line), which the hash never does, to
show what unaligned loads cost; a small ``--compression`` keeps the buckets in
L1 (1/4096: 4,096 buckets, 16 KiB).

``--model`` times whole ``predict`` calls at batch 1 instead: a
``HashedMLPClassifier`` 4096-4096-4096-10, block hashing at 1/64, set up by
one ``partial_fit`` on 256 random samples as in ``bench_predict.py``, its plan
calling the package's kernel or the loop (put in its place for the call, with
a row-major copy of the plan's tables made once), and its float32
``to_sklearn()`` twin (``MLPClassifier``), alternating.
"""

import argparse
import time

import numba
import numpy as np
from numba import njit, prange
from threadpoolctl import threadpool_limits

import sk_hashednets._kernels._cpu as cpu_backend
from sk_hashednets._kernels._hashing import BLOCK_SIZE
from sk_hashednets._kernels._numba_predict import (
    TABLE_CHUNK_COLUMNS,
    _nonzero_rows,
    _wrapped_run_into,
    row_bucket_ranges,
    table_matmul,
)


@njit(fastmath={"contract"})
def _loop_row_into(acc, a, bucket_weights, starts, signs, first_run, n_runs):
    """The run as a loop of variable length (the loop vectoriser's, not the unroller's)."""
    minus_a = -a
    n_cols = acc.shape[0]
    full = min(BLOCK_SIZE, n_cols)
    last_start = bucket_weights.shape[0] - full
    for k in range(n_runs):
        c = k * BLOCK_SIZE
        start = np.int64(starts[first_run + k])
        bits = np.int64(signs[first_run + k])
        if start <= last_start and c + full <= n_cols:
            for t in range(full):
                acc[c + t] += (minus_a if (bits >> t) & 1 else a) * bucket_weights[start + t]
        else:
            _wrapped_run_into(acc, c, a, bucket_weights, start, bits)


@njit(parallel=True)
def loop_table_matmul(a_t, bucket_weights, starts, signs, out):
    """``table_matmul`` at batch 1 with :func:`_loop_row_into`."""
    assert a_t.shape[1] == 1
    n_out = out.shape[1]
    rows = _nonzero_rows(a_t)
    n_chunks = (n_out + TABLE_CHUNK_COLUMNS - 1) // TABLE_CHUNK_COLUMNS
    for chunk in prange(n_chunks):
        col0 = chunk * TABLE_CHUNK_COLUMNS
        n_cols = min(TABLE_CHUNK_COLUMNS, n_out - col0)
        acc = np.zeros(n_cols, dtype=out.dtype)
        n_runs = (n_cols + BLOCK_SIZE - 1) // BLOCK_SIZE
        first_run = chunk * (TABLE_CHUNK_COLUMNS // BLOCK_SIZE)
        for r in range(rows.shape[0]):
            i = rows[r]
            _loop_row_into(acc, a_t[i, 0], bucket_weights, starts[i], signs[i], first_run, n_runs)
        out[0, col0 : col0 + n_cols] = acc


def _time(kernels, args, repeats):
    """Median seconds of each kernel, called alternately ``repeats`` times."""
    times = {name: [] for name in kernels}
    for _ in range(repeats):
        for name, kernel in kernels.items():
            start = time.perf_counter()
            kernel(*args)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def _model(repeats):
    """Whole predict calls at batch 1, with the package's kernel or the loop, and the twin's."""
    from sk_hashednets import HashedMLPClassifier

    rng = np.random.RandomState(0)
    X = rng.rand(256, 4096).astype(np.float32)
    model = HashedMLPClassifier(
        hidden_layer_sizes=(4096, 4096),
        hashing="block",
        compression=1 / 64,
        batch_size=256,
        random_state=0,
    ).partial_fit(X, rng.randint(10, size=256), classes=np.arange(10))
    twin = model.to_sklearn()
    x = X[:1]

    row_major = {}

    def loop_kernel(a_t, w, starts, signs, firsts, ends, out):
        # The model is unsharded: every row reads all the buckets, as the loop does.
        if id(starts) not in row_major:  # once per layer, outside the timed calls
            row_major[id(starts)] = (starts.T.copy(), signs.T.copy())
        loop_table_matmul(a_t, w, *row_major[id(starts)], out)

    def with_kernel(kernel):
        def predict():
            saved, cpu_backend.table_matmul = cpu_backend.table_matmul, kernel
            try:
                return model.predict(x)
            finally:
                cpu_backend.table_matmul = saved

        return predict

    calls = {
        "loop": with_kernel(loop_kernel),
        "package": with_kernel(table_matmul),
        "MLPClassifier": lambda: twin.predict(x),
    }
    for call in calls.values():
        call()
    with threadpool_limits(1):  # BLAS on one thread too, as Numba
        medians = _time(calls, (), repeats)
    print(f"command: python benchmarks/bench_vector_run.py --model --repeats {repeats}")
    print("4096-4096-4096-10, block 1/64, predict at batch 1, 1 thread (Numba and BLAS)")
    print()
    print(
        "| loop (ms) | package (ms) | MLPClassifier (ms) | loop / package | loop / MLPClassifier "
        "| package / MLPClassifier |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    loop, vector, dense = medians["loop"], medians["package"], medians["MLPClassifier"]
    print(
        f"| {loop * 1e3:.2f} | {vector * 1e3:.2f} | {dense * 1e3:.2f} | {loop / vector:.2f} "
        f"| {loop / dense:.2f} | {vector / dense:.2f} |"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--compression", type=float, default=1 / 64)
    parser.add_argument("--zero-rows", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--aligned", action="store_true")
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--model", action="store_true", help="whole predict calls")
    args = parser.parse_args()
    numba.set_num_threads(1)
    if args.model:
        _model(args.repeats)
        return
    n, dtype = args.n, np.dtype(args.dtype)
    n_buckets = int(n * n * args.compression)
    rng = np.random.default_rng(0)
    w = rng.standard_normal(n_buckets).astype(dtype)
    w.flags.writeable = False  # as a prediction plan's buckets are
    n_runs = -(-n // BLOCK_SIZE)
    starts = rng.integers(0, n_buckets, size=(n, n_runs)).astype(np.uint32)
    if args.aligned:
        starts -= starts % BLOCK_SIZE
    signs = rng.integers(0, 2**16, size=(n, n_runs)).astype(np.uint16)
    # The package's tables are run-major; the loop read them row-major.
    starts_t, signs_t = np.ascontiguousarray(starts.T), np.ascontiguousarray(signs.T)
    bounds = row_bucket_ranges(n, n_buckets, 1, 1)  # unsharded: every row reads all the buckets
    print(
        f"command: python benchmarks/bench_vector_run.py --n {n} --compression "
        f"{args.compression} --zero-rows {' '.join(map(str, args.zero_rows))} "
        f"--dtype {args.dtype}{' --aligned' if args.aligned else ''} --repeats {args.repeats}"
    )
    print(
        f"layer {n} x {n}, {n_buckets} buckets ({w.nbytes // 1024} KiB), tables "
        f"{(starts.nbytes + signs.nbytes) // 1024} KiB, batch 1, 1 thread, "
        f"numba {numba.__version__}"
    )
    print()
    print(
        "| zero rows | loop (ms) | package (ms) | loop ns per run | package ns per run "
        "| loop / package | same bits |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|")
    for zero in args.zero_rows:
        a_t = rng.standard_normal((n, 1)).astype(dtype)
        a_t[rng.random(n) < zero] = 0
        calls = {
            "loop": lambda out, a_t=a_t: loop_table_matmul(a_t, w, starts, signs, out),
            "package": lambda out, a_t=a_t: table_matmul(a_t, w, starts_t, signs_t, *bounds, out),
        }
        outs = {name: np.empty((1, n), dtype) for name in calls}
        for name, call in calls.items():
            call(outs[name])
        same = np.array_equal(outs["loop"], outs["package"])
        medians = _time(calls, (outs["package"],), args.repeats)
        pairs = int(np.count_nonzero(a_t)) * n_runs
        loop, vector = medians["loop"], medians["package"]
        print(
            f"| {zero} | {loop * 1e3:.2f} | {vector * 1e3:.2f} | {loop * 1e9 / pairs:.1f} "
            f"| {vector * 1e9 / pairs:.1f} | {loop / vector:.2f} | {same} |"
        )


if __name__ == "__main__":
    main()
