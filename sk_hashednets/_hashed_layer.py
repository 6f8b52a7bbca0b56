"""One hashed layer's virtual matrix, used in row tiles.

No virtual matrix is ever held whole unless it fits in one tile: ``A @ W`` walks
over column tiles, ``D @ W.T`` and the bucket gradient over row tiles, each of
at most ``tile_bytes`` bytes, materialised by the backend into one reused buffer.
The arrays are the backend's (NumPy for the CPU, CuPy on a GPU, where the tile
buffers live on the device too); sparse input is a host-only case.

Every matrix product is computed panel by panel, on a grid of panels (about
``PANEL_BYTES`` of the virtual matrix each) fixed by the layer's shape, and a
tile is a whole number of panels. So the tile budget decides only how many
panels are materialised at a time, never the shapes handed to BLAS, and the
results are the same bits for every budget of at least ``PANEL_BYTES``, down
to the single tile of an untiled layer. (BLAS libraries pick their kernels by
shape: OpenBLAS sums an 8-column product in another order than a 1000-column
one.) A smaller budget makes smaller panels: results then agree to rounding.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import safe_sparse_dot

from ._index_store import index_key
from ._kernels import LayerHash, finished_after

#: Default memory budget of one materialised tile (and of one gradient tile).
DEFAULT_TILE_BYTES = 64 * 2**20
#: Memory of one panel of the virtual matrix, the unit of its matrix products.
PANEL_BYTES = 32 * 2**20


class HashedLayer:
    """The virtual weight matrix of one layer, seen through its hash map.

    Parameters
    ----------
    backend : Backend
        Compute backend (see :mod:`sk_hashednets._kernels`).
    n_in, n_out : int
        Shape of the virtual matrix.
    seed : int
        The layer's 32-bit hash seed.
    sign_hash : bool
        Whether entries carry a hashed sign.
    dtype : numpy dtype
        Dtype of the buckets and of the tiles.
    tile_bytes : int, default=DEFAULT_TILE_BYTES
        Memory budget of one materialised tile. A tile is a whole number of
        panels (of ``min(tile_bytes, PANEL_BYTES)`` each) and a row panel a
        whole number of the backend's scatter blocks (on the CPU about
        ``2 * n_buckets`` entries), so that neither the products nor the
        bucket gradient depend on the tiles; a budget below one block or one
        row or column of the matrix is exceeded by that much.
    hashing : {"element", "block"}, default="element"
        The hashing scheme (see ``docs/hashing.md``).
    n_buckets : int
        Length of the bucket vectors the layer will be given.
    keep_index : bool, default=False
        Keep the hash of every entry as a bucket index tile (4 bytes an entry,
        no more than the tile of weights it replaces in the hash's work) when
        the matrix fits in one tile and the backend can: tiles are then
        gathered and gradients scattered without hashing again. Worth it for
        training, where the same layer serves thousands of steps. Under
        sharded hashing too: the index's scatter then gives each thread
        whole shards, as the hash's does, with the same bits.
    index_store : IndexStore, default=None
        Where the layer takes its bucket index from
        (``_index_store.IndexStore``): one kept from an earlier call
        (``partial_fit``, or ``fit`` under ``warm_start``) of the same
        backend, shape and hash, or hashed and recorded there. None hashes
        it for this layer alone.
    n_shards : int, default=1
        Shards of the hash (``docs/hashing.md``): the rows split into
        ``n_shards`` shards, each hashing into its own range of buckets.
    shard_layout : {"cyclic", "contiguous"}, default="cyclic"
        How the shards take the rows (``LayerHash``): the model's hash
        specification version decides (``_hashing.SHARD_LAYOUTS``).

    Attributes
    ----------
    layer_hash : LayerHash
        The hash of the virtual matrix, as the backend's kernels take it.
    """

    def __init__(
        self,
        backend,
        n_in,
        n_out,
        seed,
        sign_hash,
        dtype,
        tile_bytes=DEFAULT_TILE_BYTES,
        hashing="element",
        *,
        n_buckets,
        keep_index=False,
        index_store=None,
        n_shards=1,
        shard_layout="cyclic",
    ):
        self.backend = backend
        self.n_in = n_in
        self.n_out = n_out
        self.layer_hash = LayerHash.for_layer(
            seed,
            sign_hash=sign_hash,
            hashing=hashing,
            n_buckets=n_buckets,
            n_shards=n_shards,
            n_rows=n_in,
            shard_layout=shard_layout,
        )
        self.dtype = np.dtype(dtype)
        itemsize = self.dtype.itemsize
        # Row tiles for D @ W.T and for the gradient, column tiles for A @ W:
        # each output entry is then one whole dot product, never a sum of
        # per-tile partial products. Row panels are whole scatter blocks, so
        # that row tiles start on block boundaries (see the module docstring).
        self.scatter_block_rows = backend.scatter_block_rows(n_in, n_out, self.n_buckets)
        panel_bytes = min(tile_bytes, PANEL_BYTES)
        row_bytes, column_bytes = n_out * itemsize, n_in * itemsize
        self.rows_per_panel = _whole_units(n_in, panel_bytes // row_bytes, self.scatter_block_rows)
        self.cols_per_panel = _whole_units(n_out, panel_bytes // column_bytes, 1)
        self.rows_per_tile = _whole_units(n_in, tile_bytes // row_bytes, self.rows_per_panel)
        self.cols_per_tile = _whole_units(n_out, tile_bytes // column_bytes, self.cols_per_panel)
        self.row_panels = _ranges(n_in, self.rows_per_panel)
        self.column_panels = _ranges(n_out, self.cols_per_panel)
        self.tiles = _ranges(n_in, self.rows_per_tile)
        self.column_tiles = _ranges(n_out, self.cols_per_tile)
        self.keeps_index = bool(
            keep_index
            and self.single_tile
            and backend.indexes_buckets
            and self.n_buckets <= backend.max_indexed_buckets
        )
        self._index_store = index_store
        self._weight_buffer = None
        self._grad_tile = None
        self._index = None
        self._scatter_workspace = None

    @property
    def n_buckets(self):
        """Number of buckets of the layer."""
        return self.layer_hash.n_buckets

    @property
    def single_tile(self):
        """Whether the whole virtual matrix fits in one tile."""
        return len(self.tiles) == 1

    def _weight_tile(self, shape):
        if self._weight_buffer is None:
            size = max(self.rows_per_tile * self.n_out, self.n_in * self.cols_per_tile)
            self._weight_buffer = self.backend.empty(size, self.dtype)
        return self._weight_buffer[: shape[0] * shape[1]].reshape(shape)

    def _bucket_index(self):
        """The bucket index tile of the whole matrix, from the store or hashed on first use."""
        if self._index is None:
            if self._index_store is None:
                self._index = self._hash_index()
            else:
                key = index_key(self.backend, self.n_in, self.n_out, self.layer_hash)
                self._index = self._index_store.get(key, self._hash_index)
        return self._index

    def _hash_index(self):
        """A new bucket index tile of the whole matrix."""
        index = self.backend.empty((self.n_in, self.n_out), np.uint32)
        self.backend.bucket_index_tile(self.layer_hash, index)
        return index

    def materialize_tile(self, bucket_weights, start, stop):
        """Rows ``start:stop`` of the virtual matrix, in the reused tile buffer."""
        tile = self._weight_tile((stop - start, self.n_out))
        if self.keeps_index:  # then the tile is the whole matrix
            self.backend.gather_tile(
                bucket_weights, self._bucket_index(), tile, layer_hash=self.layer_hash
            )
            return tile
        self.backend.materialize_tile(self.layer_hash, bucket_weights, tile, row_start=start)
        return tile

    def materialize_columns(self, bucket_weights, start, stop):
        """Columns ``start:stop`` of the virtual matrix, in the reused tile buffer."""
        tile = self._weight_tile((self.n_in, stop - start))
        self.backend.materialize_tile(self.layer_hash, bucket_weights, tile, col_start=start)
        return tile

    def dot(self, A, bucket_weights):
        """``A @ W``, column tile by column tile.

        Parameters
        ----------
        A : {ndarray, sparse matrix} of shape (n_samples, n_in)
        bucket_weights : ndarray of shape (n_buckets,)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_out)
        """
        if self.single_tile:
            W = self.materialize_tile(bucket_weights, 0, self.n_in)
            if len(self.column_panels) == 1:
                return _matmul(A, W)
            # The whole matrix, even where one row over the budget made column tiles.
            tiles = [(0, self.n_out)]
        else:
            tiles = self.column_tiles
        Z = self.backend.empty((A.shape[0], self.n_out), self.dtype)
        for start, stop in tiles:
            if not self.single_tile:
                W = self.materialize_columns(bucket_weights, start, stop)
            for panel, in_tile in _panels(start, stop, self.cols_per_panel):
                _matmul_into(self.backend.xp, A, W[:, in_tile], Z[:, panel])
        return Z

    def dot_transposed(self, D, bucket_weights, reuse_tile=False):
        """``D @ W.T``, tile by tile.

        Parameters
        ----------
        D : ndarray of shape (n_samples, n_out)
        bucket_weights : ndarray of shape (n_buckets,)
        reuse_tile : bool, default=False
            Reuse the tile that the last :meth:`dot` materialised, when the
            matrix fits in one tile. Only valid if ``bucket_weights`` has not
            changed since that call (true within one training step).

        Returns
        -------
        out : ndarray of shape (n_samples, n_in)
        """
        if self.single_tile:
            if reuse_tile and self._weight_buffer is not None:
                W = self._weight_tile((self.n_in, self.n_out))
            else:
                W = self.materialize_tile(bucket_weights, 0, self.n_in)
            if len(self.row_panels) == 1:
                return D @ W.T
        out = self.backend.empty((D.shape[0], self.n_in), self.dtype)
        for start, stop in self.tiles:
            if not self.single_tile:
                W = self.materialize_tile(bucket_weights, start, stop)
            for panel, in_tile in _panels(start, stop, self.rows_per_panel):
                _matmul_into(self.backend.xp, D, W[in_tile].T, out[:, panel])
        return out

    def bucket_grad(self, A, D, out, finish=None):
        """Bucket gradient of ``sum(A @ W * D)``: scatter ``A.T @ D`` into ``out``.

        Parameters
        ----------
        A : {ndarray, sparse matrix} of shape (n_samples, n_in)
            The layer's input.
        D : ndarray of shape (n_samples, n_out)
            Gradient with respect to the layer's output (pre-activation).
        out : ndarray of shape (n_buckets,)
            Overwritten with the bucket gradient.
        finish : GradientFinish, default=None
            Terms that complete the gradient (the L2 penalty's, the division
            by the minibatch's weight): written with the sums where the
            matrix is one tile, applied after the last tile otherwise.
        """
        if len(self.row_panels) > 1:
            A = _column_sliceable(A)
        if self._grad_tile is None:
            self._grad_tile = self.backend.empty((self.rows_per_tile, self.n_out), self.dtype)
        # One tile overwrites ``out`` with its sums and the finish, in one pass;
        # several add into zeros, and the finish follows the last.
        fused = finish if len(self.tiles) == 1 else None
        if finish is None:
            out[...] = 0
        with finished_after(finish if fused is None else None, out):
            for start, stop in self.tiles:
                grad = self._grad_tile[: stop - start]
                for panel, in_tile in _panels(start, stop, self.rows_per_panel):
                    _matmul_into(self.backend.xp, A[:, panel].T, D, grad[in_tile])
                self._scatter(grad, start, out, fused)
        return out

    def _scatter(self, grad, start, out, finish):
        """Scatter the gradient tile of rows ``start:`` into the bucket gradient ``out``.

        With ``finish`` (a :class:`GradientFinish`, the whole matrix being
        this one tile), ``out`` is overwritten with the finished gradient.
        """
        sharded = self.layer_hash.sharded
        # Block hashing adds runs of consecutive buckets: from the hash, that is
        # one hash per run and contiguous additions, faster than reading the
        # index (both give the same bits; python benchmarks/bench_kernels.py).
        if self.keeps_index and self.layer_hash.hashing == "element":
            scratch = None if sharded else self._workspace()
            self.backend.scatter_indexed(
                grad, self._bucket_index(), out, scratch, layer_hash=self.layer_hash, finish=finish
            )
            return
        # Sharded: each thread owns whole shards, no scratch, any row tiles.
        scratch = None if sharded else self._workspace()
        self.backend.scatter_bucket_grad(
            self.layer_hash, grad, out, scratch, row_start=start, finish=finish
        )

    def _workspace(self):
        """The unsharded scatter's scratch, allocated on first use."""
        if self._scatter_workspace is None:
            self._scatter_workspace = self.backend.scatter_workspace(
                self.rows_per_tile, self.scatter_block_rows, self.n_buckets, self.dtype
            )
        return self._scatter_workspace


def _matmul(A, W):
    """``A @ W`` for a sparse or dense (NumPy or CuPy) ``A``."""
    return safe_sparse_dot(A, W) if sp.issparse(A) else A @ W


def _matmul_into(xp, A, B, out):
    """``out[...] = A @ B``, straight into ``out`` where that is known to work.

    NumPy's matmul hands a strided view to BLAS as it is; on other array
    modules (CuPy) a panel of columns, not contiguous, is assigned instead.
    """
    if sp.issparse(A):
        out[...] = safe_sparse_dot(A, B)
    elif xp is np or out.flags.c_contiguous:
        xp.matmul(A, B, out=out)
    else:
        out[...] = A @ B


def _whole_units(n, size, unit):
    """The largest multiple of ``unit`` up to ``size`` (one ``unit`` at least), or ``n`` if less."""
    if size >= n:
        return n
    return min(n, max(unit, size - size % unit))


def _panels(start, stop, step):
    """The panels of a tile ``start:stop`` (``start`` a multiple of ``step``).

    Returns ``(panel, in_tile)`` pairs of slices: each panel of ``step`` rows
    or columns, in the matrix and in the tile.
    """
    bounds = [(first, min(first + step, stop)) for first in range(start, stop, step)]
    return [(slice(first, last), slice(first - start, last - start)) for first, last in bounds]


def _ranges(n, step):
    """``[(0, step), (step, 2 * step), ...]`` covering ``range(n)``."""
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def _column_sliceable(A):
    """CSC for sparse input that will be sliced by columns; dense unchanged."""
    return A.tocsc() if sp.issparse(A) and A.format != "csc" else A
