"""The CPU backend: NumPy arrays, Numba kernels, GEMMs through NumPy's BLAS."""

import math
from contextlib import contextmanager

import numba
import numpy as np

from ._backend import Backend, BucketIndexing, DirectProducts, finished_after
from ._numba import (
    MATERIALIZE_KERNELS,
    SIGN_BIT,
    bucket_index_tile,
    gather_tile,
    scatter_bucket_grad,
    scatter_indexed,
    scatter_shards,
    scatter_shards_indexed,
)
from ._numba_predict import (
    block_table_nbytes,
    block_tables,
    column_keys,
    hashed_matmul,
    row_bucket_ranges,
    row_states,
    table_matmul,
)
from ._updates import adam_formula, adam_update, kernels_take, sgd_formula, sgd_update

#: A scatter block holds about this many entries per bucket: each block costs
#: one pass over a vector of bucket partial sums (zeroed, then added in), so
#: blocks of ``2 K`` entries keep that pass small next to the block's own work.
SCATTER_ENTRIES_PER_BUCKET = 2
#: Partial sums of the scatter blocks of a tile are kept for this many bytes
#: at once (more if the threads need more): small bucket vectors are then
#: summed in one wave instead of one wave per ``2 x threads`` blocks.
SCATTER_PARTIALS_BYTES = 4 * 2**20


class CPUBackend(BucketIndexing, DirectProducts, Backend):
    """Array module and hashed-matrix kernels for the CPU: NumPy arrays, Numba kernels.

    Implements :class:`~sk_hashednets._kernels._backend.Backend` and its
    optional :class:`~sk_hashednets._kernels._backend.BucketIndexing`.
    """

    name = "cpu"
    xp = np
    #: Arrays live in host memory: the estimators move nothing and train the
    #: fitted arrays in place.
    is_host = True
    #: Bucket counts above this cannot be kept in an index tile (the top bit is the sign).
    max_indexed_buckets = SIGN_BIT
    #: Exceptions that mean the device ran out of memory: none, a host
    #: ``MemoryError`` stays what it is.
    out_of_memory_errors = ()

    def empty(self, shape, dtype):
        """Uninitialised array on this backend's device."""
        return np.empty(shape, dtype=dtype)

    def to_device(self, a):
        """``a`` itself: host arrays are already where this backend computes."""
        return a

    def to_host(self, a):
        """``a`` itself: it is already a host array (or scalar)."""
        return a

    def free_memory(self):
        """None: host memory is not budgeted (only a device's is)."""
        return None

    def scatter_block_rows(self, n_in, n_out, n_buckets):
        """Rows of a scatter block; row tiles of the gradient must start on a multiple of it.

        Depends on the layer's shape and bucket count only, so that the bucket
        gradient is the same bit for bit whatever the tiles and threads.
        """
        rows = math.ceil(SCATTER_ENTRIES_PER_BUCKET * n_buckets / n_out)
        return int(min(max(1, rows), n_in))

    def scatter_workspace(self, rows_per_tile, block_rows, n_buckets, dtype):
        """Scratch space of ``scatter_bucket_grad`` for tiles of up to ``rows_per_tile`` rows.

        Room for the partial sums of as many scatter blocks as keep every
        thread busy (twice the Numba threads), or as fit in
        ``SCATTER_PARTIALS_BYTES`` if that is more, at most the blocks of one
        tile. The blocks are summed in waves of that many, each wave two
        parallel regions: fewer waves, fewer regions. Its size changes the
        speed only, never the result.
        """
        n_blocks = math.ceil(rows_per_tile / block_rows)
        fit = SCATTER_PARTIALS_BYTES // (n_buckets * np.dtype(dtype).itemsize)
        n_partials = min(n_blocks, max(2 * numba.get_num_threads(), fit))
        return block_rows, np.empty((n_partials, n_buckets), dtype=dtype)

    def materialize_tile(self, layer_hash, bucket_weights, out, *, row_start=0, col_start=0):
        """Write the block of a virtual matrix at ``(row_start, col_start)`` into ``out``."""
        layer_hash.check_buckets(bucket_weights, "bucket_weights")
        MATERIALIZE_KERNELS[layer_hash.mode](
            _read_only(bucket_weights),
            *_hash_args(layer_hash),
            row_start,
            out,
            col_start,
            *_shard_args(layer_hash),
        )

    def scatter_bucket_grad(
        self, layer_hash, grad_tile, bucket_grad, scratch, *, row_start=0, finish=None
    ):
        """Add the signed virtual-weight gradients of a tile into ``bucket_grad``.

        ``scratch`` comes from :meth:`scatter_workspace`; ``grad_tile`` is not modified.
        A sharded hash needs no scratch (it may be None) and no alignment of
        ``row_start``: each thread adds whole shards into their own buckets.
        ``finish`` is written with the sums, each bucket once (the shards'
        while they are in the cache of the thread that summed them), where
        ``_finished`` can hand it to the kernels.
        """
        layer_hash.check_buckets(bucket_grad, "bucket_grad")
        with _finished(finish, bucket_grad) as fused:
            if layer_hash.sharded:
                scatter_shards(
                    grad_tile,
                    *_hash_args(layer_hash),
                    row_start,
                    bucket_grad,
                    *_shard_args(layer_hash),
                    layer_hash.mode,
                    fused,
                )
                return
            block_rows, partials = scratch
            scatter_bucket_grad(
                grad_tile,
                *_hash_args(layer_hash),
                row_start,
                bucket_grad,
                block_rows,
                partials,
                layer_hash.mode,
                fused,
            )

    def sgd_update(self, param, velocity, grad, learning_rate, momentum, nesterov):
        """One SGD step: the Numba kernel on contiguous float vectors, else the formulas."""
        if not kernels_take(param, velocity, grad):
            sgd_formula(param, velocity, grad, learning_rate, momentum, nesterov)
            return
        # The kernel gives the formulas' bits with the scalars in the arrays' dtype.
        dtype = param.dtype.type
        sgd_update(param, velocity, grad, dtype(learning_rate), dtype(momentum), nesterov)

    def adam_update(self, param, m, v, grad, learning_rate, beta_1, beta_2, epsilon):
        """One Adam step: the Numba kernel on contiguous float vectors, else the formulas."""
        if not kernels_take(param, m, v, grad):
            adam_formula(param, m, v, grad, learning_rate, beta_1, beta_2, epsilon)
            return
        dtype = param.dtype.type
        adam_update(
            param,
            m,
            v,
            grad,
            dtype(learning_rate),
            dtype(beta_1),
            dtype(beta_2),
            dtype(1 - beta_1),
            dtype(1 - beta_2),
            dtype(epsilon),
        )

    def bucket_index_tile(self, layer_hash, out, *, row_start=0):
        """Write the bucket and sign of every entry of rows ``row_start:`` into ``out`` (uint32)."""
        if layer_hash.n_buckets > self.max_indexed_buckets:
            raise ValueError(
                f"A bucket index tile addresses at most {self.max_indexed_buckets} "
                f"buckets, not {layer_hash.n_buckets}."
            )
        bucket_index_tile(
            *_hash_args(layer_hash),
            row_start,
            layer_hash.n_buckets,
            out,
            layer_hash.mode,
            *_shard_args(layer_hash),
        )

    def gather_tile(self, bucket_weights, index, out, *, layer_hash=None):
        """Materialise a tile from its bucket index tile.

        Under a sharded ``layer_hash`` the rows are visited shard by shard, as
        :meth:`materialize_tile` visits them (the same result).
        """
        shards = (1, 1) if layer_hash is None else _shard_args(layer_hash)
        gather_tile(bucket_weights, index, out, *shards)

    def scatter_indexed(
        self, grad_tile, index, bucket_grad, scratch, *, layer_hash=None, finish=None
    ):
        """:meth:`scatter_bucket_grad` from a bucket index tile: the same result, bit for bit.

        Under a sharded ``layer_hash`` (the hash of the index, rows from 0),
        each thread adds whole shards into their own buckets, as
        :meth:`scatter_bucket_grad` does, and ``scratch`` may be None.
        """
        with _finished(finish, bucket_grad) as fused:
            if layer_hash is not None and layer_hash.sharded:
                layer_hash.check_buckets(bucket_grad, "bucket_grad")
                scatter_shards_indexed(
                    grad_tile, index, 0, bucket_grad, *_shard_args(layer_hash), fused
                )
                return
            block_rows, partials = scratch
            scatter_indexed(grad_tile, index, bucket_grad, block_rows, partials, fused)

    def direct_tables(self, layer_hash, n_in, n_out, max_bytes=0):
        """Tables of :meth:`direct_matmul` for one layer.

        Under block hashing, when ``block_table_nbytes(n_in, n_out)`` (6 bytes
        per run of 16 entries) is at most ``max_bytes``: each run's first
        bucket and sign bits, and a call hashes nothing (``table_matmul``).
        Otherwise the row states and column keys (bytes per row and column),
        from which each call hashes every run or entry (``hashed_matmul``).
        Under a sharded hash, either way, each row's range of buckets (its
        shard's): 16 bytes per row.
        """
        states = row_states(layer_hash.seed, n_in)
        sign_states = row_states(layer_hash.sign_seed, n_in)
        keys = column_keys(n_out, layer_hash.hashing)
        bounds = row_bucket_ranges(
            n_in, layer_hash.n_buckets, layer_hash.n_shards, layer_hash.shard_period
        )
        if layer_hash.hashing != "block" or block_table_nbytes(n_in, n_out) > max_bytes:
            return DirectTables(layer_hash.hashing, bounds, states, sign_states, keys)
        starts = np.empty((keys.shape[0], n_in), dtype=np.uint32)  # run-major
        signs = np.empty((keys.shape[0], n_in), dtype=np.uint16)
        block_tables(
            states,
            sign_states,
            keys,
            layer_hash.n_buckets,
            *bounds,
            layer_hash.sign_hash,
            starts,
            signs,
        )
        return DirectTables(layer_hash.hashing, bounds, starts=starts, signs=signs)

    def direct_matmul(self, layer_hash, a_t, bucket_weights, tables, out):
        """``out = A @ W`` straight from the buckets, for prediction (``a_t`` is ``A.T``)."""
        if tables.starts is not None:
            table_matmul(
                a_t, _read_only(bucket_weights), tables.starts, tables.signs, *tables.bounds, out
            )
            return
        hashed_matmul(
            a_t,
            _read_only(bucket_weights),
            tables.states,
            tables.sign_states,
            tables.keys,
            layer_hash.sign_hash,
            layer_hash.hashing == "block",
            *tables.bounds,
            out,
        )


class DirectTables:
    """The tables of :meth:`CPUBackend.direct_matmul`: hash states, or each run's start and signs.

    ``bounds`` is ``_numba_predict.row_bucket_ranges``'s pair: each row's range of
    buckets. Iterating gives the arrays held (None where absent), which is
    what a plan counts.
    """

    def __init__(
        self, hashing, bounds, states=None, sign_states=None, keys=None, starts=None, signs=None
    ):
        self.hashing = hashing
        self.bounds = bounds
        self.states, self.sign_states, self.keys = states, sign_states, keys
        self.starts, self.signs = starts, signs

    @property
    def kernel(self):
        """The kernel these tables feed: "element", "block" or "block tables"."""
        return "block tables" if self.starts is not None else self.hashing

    @property
    def table_nbytes(self):
        """Bytes of the run tables, counted against ``max_bytes``; 0 without them."""
        if self.starts is None:
            return 0
        return self.starts.nbytes + self.signs.nbytes

    def __iter__(self):
        return iter(
            (*self.bounds, self.states, self.sign_states, self.keys, self.starts, self.signs)
        )


def _hash_args(layer_hash):
    """Seed, sign seed and sign flag: the first hash arguments of the Numba kernels."""
    return layer_hash.seed, layer_hash.sign_seed, layer_hash.sign_hash


def _shard_args(layer_hash):
    """Shards and the period of their rows: the kernels' last hash arguments."""
    return layer_hash.n_shards, layer_hash.shard_period


@contextmanager
def _finished(finish, bucket_grad):
    """The kernels' ``finish`` for a :class:`GradientFinish`, or its formulas around them.

    Yields ``(weights, decay, divisor)`` for the kernels to fuse, or None:
    then ``bucket_grad`` is zeroed before the block and ``finish`` applied
    after it (scalars that are not plain numbers, or weights that the
    kernels cannot take), with the same bits.
    """
    scalars = None if finish is None else finish.kernel_scalars(bucket_grad.dtype)
    fusable = (
        scalars is not None
        and kernels_take(bucket_grad, finish.weights)
        and finish.weights.shape == bucket_grad.shape
    )
    if fusable:
        yield (finish.weights, *scalars)
        return
    with finished_after(finish, bucket_grad):  # checks the shapes
        yield None


def _read_only(bucket_weights):
    """A read-only view of buckets that a kernel only reads.

    Numba compiles a kernel once per argument type, and a read-only array is
    a type of its own: a prediction plan's buckets are read-only
    (``_inference.py``), training's are not. Kernels that only read the
    buckets always get a read-only view, and are compiled once per dtype.
    """
    if not bucket_weights.flags.writeable:
        return bucket_weights
    view = bucket_weights.view()
    view.flags.writeable = False
    return view
