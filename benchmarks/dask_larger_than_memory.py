"""Train on a Dask array larger than a worker's memory: ``Incremental(HashedMLPClassifier)``.

Usage::

    python benchmarks/dask_larger_than_memory.py [--rows 3000000] [--features 256]
        [--chunk-rows 50000] [--memory-limit 1GB] [--epochs 1] [--window 0]
        [--hidden 64] [--compression 0.125] [--classes 4] [--batch 256]
        [--test-rows 100000] [--quick]

Starts a ``distributed.LocalCluster`` of 2 worker processes, one thread each, with
``--memory-limit`` per worker and ``NUMBA_NUM_THREADS=1`` in the workers. The
training data is a float32 Dask array of ``--rows`` x ``--features`` (3.07 GB by
default: three times a worker's limit, more than the two workers hold together)
that is never materialised as a whole: each block of ``--chunk-rows`` rows is drawn
on a worker from N(0, 1) with its own seed, and its labels come from a fixed linear
teacher, ``argmax(X @ W)`` over ``--classes`` classes.

``dask_ml.wrappers.Incremental(HashedMLPClassifier(...))`` trains on it: one
``partial_fit`` call per block, in a shuffled block order, ``--epochs`` passes. With
``--window 0`` (the default) each epoch is one ``Incremental.partial_fit`` over the
whole array, the plain recipe: the worker that does not train makes the next blocks
ahead of the training, and the workers spill what piles up to disk. ``--window N``
calls ``Incremental.partial_fit`` on N blocks at a time (a random permutation of the
blocks, cut in windows), so that at most about N blocks exist at once and nothing
is spilled. Held-out accuracy is measured with ``Incremental.predict`` on a separate
array of ``--test-rows`` rows drawn from other seeds.

Prints the data size, the worker memory limit, the peak worker memory (RSS polled
every 0.25 s, and each worker's ``VmHWM``, the kernel's high-water mark of its
resident memory), the bytes the workers spilled to disk, the wall time and the
held-out accuracy. The default run takes one to two minutes on 2 cores; ``--quick``
runs tiny sizes in about 15 s, as a smoke test.
"""

# Only the standard library and NumPy at the top level: the worker processes are
# spawned, and re-run this module's top level before they set NUMBA_NUM_THREADS=1. An
# import of Numba here (dask.array and sk_hashednets import it) would fix their Numba
# thread pool at the number of cores. See docs/dask.md.
import argparse
import os
import shlex
import sys
import threading
import time

import numpy as np
from _common import maxrss_mib, vmhwm_mib

GB = 10**9
MIB = 2**20


def x_block(features, seed, block_id=None, block_info=None):
    """One block of features: N(0, 1) float32 drawn from ``(seed, block index)``."""
    rows = block_info[None]["chunk-shape"][0]
    rng = np.random.default_rng([seed, block_id[0]])
    return rng.standard_normal((rows, features), dtype=np.float32)


def teacher_labels(X, W):
    """Labels of the linear teacher: ``argmax(X @ W)``."""
    return np.argmax(X @ W, axis=1)


def make_data(rows, features, chunk_rows, seed, W):
    """A lazy ``(X, y)`` pair of Dask arrays: nothing is computed until it is used."""
    import dask.array as da

    n_full, rest = divmod(rows, chunk_rows)
    chunks = ((chunk_rows,) * n_full + ((rest,) if rest else ()), (features,))
    X = da.map_blocks(
        x_block, features, seed, chunks=chunks, dtype=np.float32, meta=np.empty((0, 0), "f4")
    )
    y = X.map_blocks(teacher_labels, W, drop_axis=1, dtype=np.int64, meta=np.empty(0, "i8"))
    return X, y


def warm_up(n_classes):
    """A tiny fit that loads the Numba kernels, so that the timed training runs warm."""
    from sk_hashednets import HashedMLPClassifier

    X = np.random.default_rng(0).standard_normal((64, 4), dtype=np.float32)
    y = np.arange(64) % n_classes
    clf = HashedMLPClassifier(hidden_layer_sizes=(8,), batch_size=16)
    clf.partial_fit(X, y, classes=np.arange(n_classes)).predict(X)
    return os.getpid()


def worker_rss():
    """Resident memory of the calling worker process, in bytes (run on the workers)."""
    import psutil

    return psutil.Process().memory_info().rss


def worker_numba_threads():
    """Numba's thread count in the calling worker (run on the workers)."""
    import numba

    return numba.get_num_threads()


def worker_spilled(dask_worker):
    """Bytes the worker has written to its spill directory so far (run on the workers)."""
    metrics = getattr(dask_worker.data, "cumulative_metrics", {})
    return int(metrics.get(("disk-write", "bytes"), 0))


class PeakMemory(threading.Thread):
    """Polls the workers' RSS in the background and keeps each one's maximum."""

    def __init__(self, client, interval=0.25):
        super().__init__(daemon=True)
        self.client = client
        self.interval = interval
        self.peaks = {}
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            try:
                for worker, rss in self.client.run(worker_rss).items():
                    self.peaks[worker] = max(rss, self.peaks.get(worker, 0))
                self.samples += 1
            except Exception:  # the cluster is closing
                pass
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()


def train(model, X, y, classes, epochs, window):
    """``epochs`` passes of ``model`` (an ``Incremental``) over the blocks of ``X`` and ``y``.

    Returns the wall time of each epoch.
    """
    n_blocks = X.numblocks[0]
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        if window == 0:
            # One graph over every block, in an order drawn from random_state.
            model.set_params(random_state=epoch, shuffle_blocks=True)
            model.partial_fit(X, y, classes=classes)
        else:
            order = np.random.default_rng(epoch).permutation(n_blocks)
            model.set_params(shuffle_blocks=False)
            for lo in range(0, n_blocks, window):
                blocks = order[lo : lo + window].tolist()
                model.partial_fit(X.blocks[blocks], y.blocks[blocks], classes=classes)
        times.append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="training rows (total)")
    parser.add_argument("--features", type=int, default=None)
    parser.add_argument("--chunk-rows", type=int, default=None, help="rows per Dask block")
    parser.add_argument(
        "--memory-limit", default=None, help="per worker, as Dask reads it: 1GB, 800MiB, ..."
    )
    parser.add_argument("--epochs", type=int, default=1, help="passes over the blocks")
    parser.add_argument(
        "--window",
        type=int,
        default=0,
        help="blocks per Incremental.partial_fit call (0: the whole array in one call)",
    )
    parser.add_argument("--hidden", type=int, nargs="+", default=[64])
    parser.add_argument("--compression", type=float, default=1 / 8)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--test-rows", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    args = parser.parse_args(argv)

    if args.quick:
        defaults = {"rows": 40_000, "features": 32, "chunk_rows": 5_000, "test_rows": 5_000}
    else:
        defaults = {"rows": 3_000_000, "features": 256, "chunk_rows": 50_000}
        defaults["test_rows"] = 100_000
    defaults["memory_limit"] = "1GB"
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if min(args.rows, args.features, args.chunk_rows, args.epochs, args.test_rows) < 1:
        parser.error("--rows, --features, --chunk-rows, --epochs and --test-rows must be >= 1")
    if args.window < 0 or args.classes < 2 or not 0 < args.compression <= 1:
        parser.error("--window must be >= 0, --classes >= 2 and --compression in (0, 1]")

    import dask
    from dask.utils import format_bytes, parse_bytes
    from dask_ml.wrappers import Incremental
    from distributed import Client, LocalCluster

    from sk_hashednets import HashedMLPClassifier

    memory_limit = parse_bytes(args.memory_limit)
    print(f"command: python {shlex.join(sys.argv)}")
    print(
        f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f} "
        f"{os.getloadavg()[1]:.2f}, dask {dask.__version__}"
    )

    W = np.random.default_rng([args.seed, 2**32 - 1]).standard_normal((args.features, args.classes))
    X, y = make_data(args.rows, args.features, args.chunk_rows, args.seed, W)
    X_test, y_test = make_data(args.test_rows, args.features, args.chunk_rows, args.seed + 1, W)

    start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address=":0",
        env={"NUMBA_NUM_THREADS": "1"},
    )
    client = Client(cluster)
    startup = time.perf_counter() - start
    try:
        threads = client.run(worker_numba_threads)
        if set(threads.values()) != {1}:
            sys.exit(f"the workers run Numba on {threads} threads, not 1: see docs/dask.md")
        monitor = PeakMemory(client)
        monitor.start()
        start = time.perf_counter()
        client.gather(
            [client.submit(warm_up, args.classes, workers=[w], pure=False) for w in threads]
        )
        warmup = time.perf_counter() - start

        clf = HashedMLPClassifier(
            hidden_layer_sizes=tuple(args.hidden),
            compression=args.compression,
            batch_size=args.batch,
            random_state=0,
        )
        model = Incremental(clf)
        epoch_times = train(model, X, y, np.arange(args.classes), args.epochs, args.window)
        wall = sum(epoch_times)
        accuracy = float((model.predict(X_test) == y_test).mean().compute())
        monitor.stop()
        hwm = client.run(vmhwm_mib)
        spilled = client.run(worker_spilled)
    finally:
        client.close()
        cluster.close()

    est = model.estimator_
    workers = sorted(hwm)
    how = (
        "one Incremental.partial_fit call over all blocks"
        if args.window == 0
        else f"Incremental.partial_fit on windows of {args.window} blocks"
    )
    print(
        f"cluster: LocalCluster, 2 worker processes x 1 thread, NUMBA_NUM_THREADS=1 in the "
        f"workers (numba.get_num_threads() = {sorted(threads.values())}), started in "
        f"{startup:.1f} s; kernel warm-up on each worker (not timed below) {warmup:.1f} s"
    )
    print(
        f"data: X {args.rows:,} x {args.features} float32 = {X.nbytes / GB:.2f} GB "
        f"(+ y int64 {y.nbytes / GB:.3f} GB) in {X.numblocks[0]} blocks of "
        f"{args.chunk_rows:,} rows ({args.chunk_rows * args.features * 4 / MIB:.0f} MiB), "
        f"made on the workers; {args.classes} classes from a linear teacher"
    )
    print(
        f"worker memory limit: {memory_limit / GB:.2f} GB each "
        f"({2 * memory_limit / GB:.2f} GB for the cluster): X is "
        f"{X.nbytes / memory_limit:.1f} x one worker's limit"
    )
    print(
        f"model: HashedMLPClassifier(hidden_layer_sizes={tuple(args.hidden)}, "
        f"compression={args.compression:g}, batch_size={args.batch}), "
        f"{est.n_stored_params_:,} stored / {est.n_virtual_params_:,} virtual parameters"
    )
    print(
        f"training: {args.epochs} epoch(s), {how}, {est.t_:,} samples seen, wall time "
        f"{wall:.1f} s ({est.t_ / wall:,.0f} rows/s; per epoch: "
        f"{', '.join(f'{t:.1f}' for t in epoch_times)} s)"
    )
    print(
        f"peak worker RSS, polled every 0.25 s ({monitor.samples} polls): "
        f"{', '.join(f'{monitor.peaks.get(w, 0) / MIB:.0f}' for w in workers)} MiB; "
        f"VmHWM: {', '.join(f'{hwm[w]:.0f}' for w in workers)} MiB"
    )
    print(f"spilled to disk by the workers: {', '.join(format_bytes(spilled[w]) for w in workers)}")
    print(f"client process peak RSS (ru_maxrss): {maxrss_mib():.0f} MiB")
    print(f"held-out accuracy ({args.test_rows:,} rows from other seeds): {accuracy:.4f}")


if __name__ == "__main__":
    main()
