"""How evenly the shards of a first layer share the input: each layout's shares of the input energy.

A shard's buckets are trained only through the inputs of its rows
(``docs/hashing.md``, "Sharded hashing"). This prints, for the first layer of a
network on MNIST-like images and each shard count, the share of the training
images' input energy (the sum of squared pixel values) that each shard's rows
carry, 1 being an even share, under the contiguous layout of hash version 2
(blocks of consecutive pixels) and the cyclic one of version 3 (pixel ``i`` in
shard ``i % S``). ``--pad`` first pads each image with that many zero pixels on
every side (2 makes MNIST's 28 x 28 images 32 x 32: rows whose width is a
multiple of ``S``, the cyclic layout's blind spot).

Usage::

    python benchmarks/shard_balance.py [--data mnist fashion-mnist] [--shards 16 24 32 64]
        [--pad 0 2] [--images 60000] [--per-shard 16]

``--data`` names folders of ``../shared/data`` (or give ``SK_HASHEDNETS_DATA``);
``--per-shard S`` also prints every shard's share at ``S`` shards, unpadded.
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from sk_hashednets._layout import shard_energy_shares
from sk_hashednets.datasets import load_idx

LAYOUTS = ("contiguous", "cyclic")
DATA_DIR = Path(
    os.environ.get("SK_HASHEDNETS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def input_energy(images, pad):
    """Mean squared value of each pixel, the images padded with ``pad`` zeros on each side."""
    side = int(round(np.sqrt(images.shape[1])))
    squares = (images.astype(np.float64) ** 2).mean(axis=0).reshape(side, side)
    return np.pad(squares, pad).ravel()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--shards", type=int, nargs="+", default=[16, 24, 32, 64])
    parser.add_argument("--pad", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--images", type=int, default=60000, help="training images read")
    parser.add_argument("--per-shard", type=int, default=16, help="S whose shares are listed")
    args = parser.parse_args(argv)
    print(
        f"$ python benchmarks/shard_balance.py {' '.join(sys.argv[1:] if argv is None else argv)}"
    )
    print()
    print("| data | image | S | contiguous: min / max share | cyclic: min / max share |")
    print("|---|---|---:|---|---|")
    listed = []
    for name in args.data:
        directory = DATA_DIR / name
        if not directory.is_dir():
            sys.exit(f"{directory} is not a directory: give --data folders of {DATA_DIR}.")
        images = load_idx(directory).X_train[: args.images]
        for pad in args.pad:
            energy = input_energy(images, pad)
            side = int(round(np.sqrt(len(energy))))
            for n_shards in args.shards:
                cells = []
                for layout in LAYOUTS:
                    shares = shard_energy_shares(energy, n_shards, layout)
                    cells.append(f"{shares.min():.2f} / {shares.max():.2f}")
                    if pad == 0 and n_shards == args.per_shard:
                        listed.append((name, layout, shares))
                print(f"| {name} | {side} x {side} | {n_shards} | {cells[0]} | {cells[1]} |")
    print()
    for name, layout, shares in listed:
        print(f"{name}, {layout}, S = {args.per_shard}: {' '.join(f'{v:.2f}' for v in shares)}")


if __name__ == "__main__":
    main()
