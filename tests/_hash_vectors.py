"""The test vectors of ``docs/hashing.md`` (read once) and the constants the hash tests share."""

from pathlib import Path

from sk_hashednets._kernels._backend import LayerHash

DOC = Path(__file__).resolve().parents[1] / "docs" / "hashing.md"
TABLE_HEADER = "| seed | i | j | K | hash | sign hash | bucket | sign |"
BLOCK_TABLE_HEADER = "| seed | i | j | K | block hash | block sign hash | start | bucket | sign |"
#: Version 3, the cyclic layout: the bucket does not depend on n_rows.
CYCLIC_SHARD_TABLE_HEADER = "| seed | i | j | K | S | block | shard | first | K_s | bucket | sign |"
#: Version 2, the contiguous layout.
CONTIGUOUS_SHARD_TABLE_HEADER = (
    "| seed | i | j | K | S | n_rows | block | shard | first | K_s | bucket | sign |"
)


def read_table(header):
    """Rows of integers of the markdown table under ``header`` in the document."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    rows = []
    for line in lines[lines.index(header) + 2 :]:  # skip the header and the |---| line
        if not line.startswith("|"):
            break
        rows.append(tuple(int(cell.strip(), 0) for cell in line.strip().strip("|").split("|")))
    return rows


#: Element hashing: (seed, i, j, K, hash, sign hash, bucket, sign).
ELEMENT_VECTORS = read_table(TABLE_HEADER)
#: Block hashing: (seed, i, j, K, block hash, block sign hash, start, bucket, sign).
BLOCK_VECTORS = read_table(BLOCK_TABLE_HEADER)
MAX_U32 = 2**32 - 1
#: Sharded hashing, both layouts: (layout, seed, i, j, K, S, n_rows, block, shard,
#: first, K_s, bucket, sign). A cyclic vector holds for any n_rows above i: the
#: largest, 2**32 - 1.
SHARD_VECTORS = [("cyclic", *v[:5], MAX_U32, *v[5:]) for v in read_table(CYCLIC_SHARD_TABLE_HEADER)]
SHARD_VECTORS += [("contiguous", *v) for v in read_table(CONTIGUOUS_SHARD_TABLE_HEADER)]

#: The seed of the layer that the kernel and tiling tests hash (above 2**31).
LAYER_SEED = 2718281828


def sharded_layer_hash(hashing, sign_hash, n_buckets, n_shards, n_rows, layout="cyclic", *, seed):
    """The ``LayerHash`` of a sharded layer (its sign seed derived from ``seed``)."""
    return LayerHash.for_layer(
        seed,
        sign_hash=sign_hash,
        hashing=hashing,
        n_buckets=n_buckets,
        n_shards=n_shards,
        n_rows=n_rows,
        shard_layout=layout,
    )
