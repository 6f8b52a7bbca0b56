"""What computing a layer's products panel by panel costs against one product each.

Usage::

    python benchmarks/bench_panels.py [--shape 256x4096x4096] [--panels 1024 2048]
        [--repeats 7] [--bit-shape 128x784x1000] [--bit-widths 1 8 16 17 64 256]
        [--markdown]

``HashedLayer`` computes ``A @ W``, ``D @ W.T`` and ``A.T @ D`` on a grid of
panels fixed by the layer's shape (``PANEL_BYTES`` of the virtual matrix each),
so that the tile budget never changes the shapes BLAS sees, nor the results
(``docs/memory.md``). For a ``batch x n_in x n_out`` layer and each panel width
(columns of ``W`` for the forward product, rows for the other two), this times
the three products whole and in panels, interleaved, into preallocated arrays
as the layer does, and prints the medians and their ratio (panels / whole).
Then, for a ``--bit-shape`` layer, it counts the entries of ``A @ W`` that
column tiles of each ``--bit-widths`` width (the last one narrower) change
against one whole product: why the panel grid may not depend on the budget.
Run it with ``OPENBLAS_NUM_THREADS=1`` for figures that other work on the
machine disturbs least.
"""

import argparse
import os
import statistics
import time

import numpy as np
import threadpoolctl
from _common import print_table


def _products(A, W, D, Z, DW, G, width):
    """The three products of one step: whole (``width`` None) or in panels of ``width``."""
    n_in, n_out = W.shape
    if width is None:
        return {
            "A @ W": lambda: np.matmul(A, W, out=Z),
            "D @ W.T": lambda: np.matmul(D, W.T, out=DW),
            "A.T @ D": lambda: np.matmul(A.T, D, out=G),
        }
    columns = [slice(s, s + width) for s in range(0, n_out, width)]
    rows = [slice(s, s + width) for s in range(0, n_in, width)]
    return {
        "A @ W": lambda: [np.matmul(A, W[:, c], out=Z[:, c]) for c in columns],
        "D @ W.T": lambda: [np.matmul(D, W[r].T, out=DW[:, r]) for r in rows],
        "A.T @ D": lambda: [np.matmul(A[:, r].T, D, out=G[r]) for r in rows],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="256x4096x4096", help="batch x n_in x n_out")
    parser.add_argument("--panels", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--bit-shape", default="128x784x1000", help="batch x n_in x n_out")
    parser.add_argument("--bit-widths", type=int, nargs="+", default=[1, 8, 16, 17, 64, 256])
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    batch, n_in, n_out = (int(v) for v in args.shape.split("x"))
    rng = np.random.default_rng(0)
    A = rng.standard_normal((batch, n_in), dtype=np.float32)
    W = rng.standard_normal((n_in, n_out), dtype=np.float32)
    D = rng.standard_normal((batch, n_out), dtype=np.float32)
    Z, DW = np.empty((batch, n_out), np.float32), np.empty((batch, n_in), np.float32)
    G = np.empty((n_in, n_out), np.float32)
    blas = threadpoolctl.threadpool_info()[0]
    print(
        f"shape {args.shape} float32, {blas['internal_api']} {blas['version']} "
        f"({blas['num_threads']} threads; OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}), medians of {args.repeats}"
    )
    variants = {None: _products(A, W, D, Z, DW, G, None)}
    variants.update({width: _products(A, W, D, Z, DW, G, width) for width in args.panels})
    times = {(width, name): [] for width, products in variants.items() for name in products}
    for _ in range(args.repeats + 1):  # the first round warms up, and is dropped
        for width, products in variants.items():
            for name, product in products.items():
                start = time.perf_counter()
                product()
                times[width, name].append(time.perf_counter() - start)
    rows = []
    for name in variants[None]:
        whole = statistics.median(times[None, name][1:]) * 1e3
        for width in args.panels:
            panels = statistics.median(times[width, name][1:]) * 1e3
            ratio = panels / whole
            rows.append([name, str(width), f"{whole:.1f}", f"{panels:.1f}", f"{ratio:.3f}"])
    header = ["product", "panel width", "whole (ms)", "panels (ms)", "panels / whole"]
    print_table("Panels against one product", header, rows, args.markdown, n_text=2)

    batch, n_in, n_out = (int(v) for v in args.bit_shape.split("x"))
    A = rng.standard_normal((batch, n_in), dtype=np.float32)
    W = rng.standard_normal((n_in, n_out), dtype=np.float32)
    whole = A @ W
    rows = []
    for width in args.bit_widths:
        tiled = np.empty_like(whole)
        for start in range(0, n_out, width):
            tiled[:, start : start + width] = A @ W[:, start : start + width]
        rows.append([str(width), str(int((tiled != whole).sum())), str(whole.size)])
    header = ["tile width", "entries that differ", "entries"]
    title = f"A @ W of {args.bit_shape} in column tiles against one product, bit for bit"
    print_table(title, header, rows, args.markdown, n_text=1)


if __name__ == "__main__":
    main()
