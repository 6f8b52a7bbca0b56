"""One hashed layer's virtual matrix, used in row tiles.

No virtual matrix is ever held whole unless it fits in one tile: products with
``W`` and ``W.T`` and the bucket gradient walk over row tiles of at most
``tile_bytes`` bytes, materialised by the backend into one reused buffer.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import safe_sparse_dot

from ._kernels import sign_seed

#: Default memory budget of one materialised tile (and of one gradient tile).
DEFAULT_TILE_BYTES = 64 * 2**20


class HashedLayer:
    """The virtual weight matrix of one layer, seen through its hash map.

    Parameters
    ----------
    backend : object
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
        Memory budget of one materialised tile; a tile holds at least one row.
    """

    def __init__(self, backend, n_in, n_out, seed, sign_hash, dtype, tile_bytes=DEFAULT_TILE_BYTES):
        self.backend = backend
        self.n_in = n_in
        self.n_out = n_out
        self.seed = np.uint64(seed)
        self.sign_seed = sign_seed(seed)
        self.sign_hash = bool(sign_hash)
        self.dtype = np.dtype(dtype)
        row_bytes = n_out * self.dtype.itemsize
        self.rows_per_tile = int(max(1, min(n_in, tile_bytes // row_bytes)))
        self.tiles = [
            (start, min(start + self.rows_per_tile, n_in))
            for start in range(0, n_in, self.rows_per_tile)
        ]
        self._weight_tile = None
        self._grad_tile = None
        self._bucket_index_tile = None

    @property
    def single_tile(self):
        """Whether the whole virtual matrix fits in one tile."""
        return len(self.tiles) == 1

    def materialize_tile(self, bucket_weights, start, stop):
        """Rows ``start:stop`` of the virtual matrix, in the reused tile buffer."""
        if self._weight_tile is None:
            self._weight_tile = self.backend.empty((self.rows_per_tile, self.n_out), self.dtype)
        tile = self._weight_tile[: stop - start]
        self.backend.materialize_tile(
            bucket_weights, self.seed, self.sign_seed, self.sign_hash, start, tile
        )
        return tile

    def dot(self, A, bucket_weights):
        """``A @ W``, tile by tile.

        Parameters
        ----------
        A : {ndarray, sparse matrix} of shape (n_samples, n_in)
        bucket_weights : ndarray of shape (n_buckets,)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_out)
        """
        if self.single_tile:
            return safe_sparse_dot(A, self.materialize_tile(bucket_weights, 0, self.n_in))
        A = _column_sliceable(A)
        Z = self.backend.xp.zeros((A.shape[0], self.n_out), dtype=self.dtype)
        for start, stop in self.tiles:
            Z += safe_sparse_dot(
                A[:, start:stop], self.materialize_tile(bucket_weights, start, stop)
            )
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
            if reuse_tile and self._weight_tile is not None:
                W = self._weight_tile
            else:
                W = self.materialize_tile(bucket_weights, 0, self.n_in)
            return D @ W.T
        out = self.backend.empty((D.shape[0], self.n_in), self.dtype)
        for start, stop in self.tiles:
            out[:, start:stop] = D @ self.materialize_tile(bucket_weights, start, stop).T
        return out

    def bucket_grad(self, A, D, out):
        """Bucket gradient of ``sum(A @ W * D)``: scatter ``A.T @ D`` into ``out``.

        Parameters
        ----------
        A : {ndarray, sparse matrix} of shape (n_samples, n_in)
            The layer's input.
        D : ndarray of shape (n_samples, n_out)
            Gradient with respect to the layer's output (pre-activation).
        out : ndarray of shape (n_buckets,)
            Overwritten with the bucket gradient.
        """
        out[...] = 0
        if sp.issparse(A):
            A = _column_sliceable(A) if not self.single_tile else A
            for start, stop in self.tiles:
                grad = np.ascontiguousarray(safe_sparse_dot(A[:, start:stop].T, D))
                self._scatter(grad, start, out)
            return out
        if self._grad_tile is None:
            self._grad_tile = self.backend.empty((self.rows_per_tile, self.n_out), self.dtype)
        for start, stop in self.tiles:
            grad = self._grad_tile[: stop - start]
            self.backend.xp.matmul(A[:, start:stop].T, D, out=grad)
            self._scatter(grad, start, out)
        return out

    def _scatter(self, grad, start, out):
        """Scatter a gradient tile (overwritten) into the bucket gradient ``out``."""
        if self._bucket_index_tile is None:
            self._bucket_index_tile = self.backend.empty(
                (self.rows_per_tile, self.n_out), np.uint32
            )
        self.backend.scatter_bucket_grad(
            grad,
            self.seed,
            self.sign_seed,
            self.sign_hash,
            start,
            out,
            self._bucket_index_tile[: grad.shape[0]],
        )


def _column_sliceable(A):
    """CSC for sparse input that will be sliced by columns; dense unchanged."""
    return A.tocsc() if sp.issparse(A) and A.format != "csc" else A
