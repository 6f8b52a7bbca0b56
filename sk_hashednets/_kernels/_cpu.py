"""The CPU backend: NumPy arrays, Numba kernels, GEMMs through NumPy's BLAS."""

import numpy as np

from ._numba import materialize_tile, materialize_tile_block, scatter_bucket_grad


class CPUBackend:
    """Array module and hashed-matrix kernels for the CPU.

    A GPU backend offers the same attributes and methods on device arrays.
    """

    name = "cpu"
    xp = np
    #: Arrays live in host memory: the estimators move nothing and train the
    #: fitted arrays in place.
    is_host = True
    #: ``scatter_bucket_grad`` takes a uint32 scratch tile of the gradient's shape.
    needs_scatter_scratch = True
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
