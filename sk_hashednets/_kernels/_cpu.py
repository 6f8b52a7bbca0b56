"""The CPU backend: NumPy arrays, Numba kernels, GEMMs through NumPy's BLAS."""

import numpy as np

from ._numba import materialize_tile, materialize_tile_block, scatter_bucket_grad


class CPUBackend:
    """Array module and hashed-matrix kernels for the CPU.

    A GPU backend offers the same attributes and methods on device arrays.
    """

    name = "cpu"
    xp = np

    def empty(self, shape, dtype):
        """Uninitialised array on this backend's device."""
        return np.empty(shape, dtype=dtype)

    def materialize_tile(
        self,
        bucket_weights,
        seed,
        sign_seed,
        sign_hash,
        row_start,
        out,
        col_start=0,
        hashing="element",
    ):
        """Write the block of a virtual matrix at ``(row_start, col_start)`` into ``out``."""
        kernel = materialize_tile_block if hashing == "block" else materialize_tile
        kernel(bucket_weights, seed, sign_seed, sign_hash, row_start, out, col_start)

    def scatter_bucket_grad(
        self,
        grad_tile,
        seed,
        sign_seed,
        sign_hash,
        row_start,
        bucket_grad,
        scratch,
        hashing="element",
    ):
        """Add the signed virtual-weight gradients of a tile into ``bucket_grad``.

        ``grad_tile`` is overwritten; ``scratch`` is a uint32 array of its shape.
        """
        scatter_bucket_grad(
            grad_tile, seed, sign_seed, sign_hash, row_start, bucket_grad, scratch, hashing
        )
