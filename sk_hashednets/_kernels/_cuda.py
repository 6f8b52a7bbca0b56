"""The CUDA backend's kernels: CuPy arrays, the CUDA C++ of ``cuda/hashed_kernels.cu``.

Implements :class:`~sk_hashednets._kernels._backend.Backend` (and the optional
:class:`~sk_hashednets._kernels._backend.DeviceHashing`) on CuPy arrays, on the
current CuPy device. The kernels compile once per device
(NVRTC, through ``cupy.RawModule``) and are looked up per dtype. Importing this
module needs CuPy; the package imports it only when a CUDA device is asked for.

Every method takes sharded hashes (``docs/hashing.md``, "Sharded hashing") as
well as unsharded ones. The scatters differ:

- unsharded, every entry may read any bucket: the bucket vector is summed in
  shared memory per thread block when it fits in :data:`SHARED_BYTES`, then
  added into ``bucket_grad`` with global atomics; a larger one takes global
  atomics per entry. The order of the additions, and the last bits of the
  sums, may change from run to run.
- sharded (``scatter_shards``), a thread block owns one shard's range of
  buckets, or a chunk of it that fits in :data:`SHARED_BYTES` with the
  block's :data:`SHARD_SLOTS` bids: it loads that range into shared memory,
  adds the shard's rows of the tile, and stores it back, with no global
  atomics. A shard larger than a chunk takes one pass over its rows per chunk,
  in parallel blocks (each pass hashes the bucket of every entry, and reads
  and sign-hashes only those of its chunk). The additions are in a fixed
  order, the CPU's (each bucket receives its entries in row-major order): a
  block takes its rows in batches of one entry per thread, and within a batch
  entries that share a bucket go in rounds, lowest thread first (the
  kernel's comment says how). The bucket gradient is then the CPU's bit for
  bit, and the same from run to run, whatever the row tiles, at the cost of
  three block barriers per round (a batch takes as many rounds as the most
  of its pending entries that share a slot: a few, with 256 entries among
  1024 slots); shared-memory atomics would cost no barrier and give the last
  bits in the order the threads get there.

Status: the kernels compile for sm_90 and their hash is checked bit for bit
on the CPU in CI (``tests/test_cuda_sources.py``); ``tests/test_gpu_kernels.py``
checks this class against the CPU backend and the NumPy reference, sharded
hashes included, and ``tests/test_gpu_estimators.py`` the estimators with
``device="cuda"``: on a GPU where there is one, else on the CPU through the
CUDA emulation (``docs/devices.md``). Neither has run on a GPU yet, and the
sharded scatter's speed is not measured (``benchmarks/bench_gpu.py`` times it).
"""

import functools
from pathlib import Path

import cupy as cp
import numpy as np

from ._backend import Backend, DeviceHashing, finished_after
from ._hashing import BLOCK_HASHING, tile_shards
from ._updates import adam_formula, sgd_formula

SOURCE = Path(__file__).with_name("cuda") / "hashed_kernels.cu"

#: Threads per block of every kernel.
THREADS = 256
#: Dynamic shared memory a block may use without opting in (48 KiB on every
#: architecture since Kepler): unsharded bucket vectors up to this size are
#: summed in shared memory first, and the sharded scatter sums a shard's
#: buckets in chunks that fit in it. (Hopper lets a kernel opt in to 227 KiB,
#: ``RawKernel.max_dynamic_shared_size_bytes``: fewer passes over a large
#: shard's rows, but fewer blocks in flight; left for a GPU measurement.)
SHARED_BYTES = 48 * 1024
#: Bid slots of the sharded scatter's thread block (a power of two, 4 KiB):
#: entries of a batch whose buckets share a slot are added in turn.
SHARD_SLOTS = 1024

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


@functools.cache
def _module(device_id):
    with cp.cuda.Device(device_id):
        return cp.RawModule(code=SOURCE.read_text(), options=("--std=c++17",))


def _kernel(name):
    return _module(cp.cuda.Device().id).get_function(name)


@functools.cache
def _sm_count(device_id):
    return cp.cuda.Device(device_id).attributes["MultiProcessorCount"]


def _grid(n):
    # Grid-stride loops: enough blocks to fill the device, never more than needed.
    sm_count = _sm_count(cp.cuda.Device().id)
    return (max(1, min(-(-n // THREADS), 32 * sm_count)),)


class CUDABackend(DeviceHashing, Backend):
    """Array module and hashed-matrix kernels for an NVIDIA GPU (CuPy)."""

    name = "cuda"
    xp = cp
    #: Arrays live in device memory: the estimators move the training state
    #: here for a fit and back to the host after it.
    is_host = False
    #: What CuPy raises when an allocation fails (a ``MemoryError`` subclass).
    out_of_memory_errors = (cp.cuda.memory.OutOfMemoryError,)

    def empty(self, shape, dtype):
        """Uninitialised array on the current device."""
        return cp.empty(shape, dtype=dtype)

    def to_device(self, a):
        """``a`` on the current device: copied from the host, or as it is if already there."""
        return cp.asarray(a)

    def to_host(self, a):
        """A CuPy array as NumPy (0-d as a NumPy scalar); anything else as it is."""
        if not isinstance(a, cp.ndarray):
            return a
        host = cp.asnumpy(a)
        return host[()] if host.ndim == 0 else host

    def free_memory(self):
        """Bytes the current device can still give: free, plus what CuPy's pool holds unused."""
        free, _ = cp.cuda.runtime.memGetInfo()
        return free + cp.get_default_memory_pool().free_bytes()

    def scatter_block_rows(self, n_in, n_out, n_buckets):
        """1: the scatter's atomic additions put no constraint on row tiles."""
        return 1

    def scatter_workspace(self, rows_per_tile, block_rows, n_buckets, dtype):
        """None: ``scatter_bucket_grad`` needs no scratch space."""
        return None

    def materialize_tile(self, layer_hash, bucket_weights, out, *, row_start=0, col_start=0):
        """Write the block of a virtual matrix at ``(row_start, col_start)`` into ``out``."""
        layer_hash.check_buckets(bucket_weights, "bucket_weights")
        _check_contiguous(bucket_weights, "bucket_weights")
        n_rows, n_cols = out.shape
        if not out.flags.c_contiguous or out.dtype != bucket_weights.dtype:
            raise ValueError("out must be C-contiguous, of the buckets' dtype.")
        kernel = _kernel(f"materialize_tile_{_SUFFIX[out.dtype]}")
        kernel(
            _grid(n_rows * n_cols),
            (THREADS,),
            (
                bucket_weights,
                *_hash_args(layer_hash),
                *_shard_args(layer_hash),
                np.uint64(row_start),
                np.uint64(col_start),
                np.int64(n_rows),
                np.int64(n_cols),
                out,
            ),
        )

    def scatter_bucket_grad(
        self, layer_hash, grad_tile, bucket_grad, scratch, *, row_start=0, finish=None
    ):
        """Add the signed virtual-weight gradients of a tile into ``bucket_grad``.

        Unsharded: shared-memory sums per block and global atomics, whose
        order (and the sums' last bits) may change from run to run. Sharded:
        a block per shard (or chunk of a shard's buckets), no global atomics,
        and the CPU's sums bit for bit (the module docstring). ``grad_tile``
        is left as it is; ``scratch`` is :meth:`scatter_workspace`'s None.
        ``finish`` is applied by its formulas after the sums, not fused.
        """
        layer_hash.check_buckets(bucket_grad, "bucket_grad")
        _check_contiguous(bucket_grad, "bucket_grad")
        if not grad_tile.flags.c_contiguous or grad_tile.dtype != bucket_grad.dtype:
            raise ValueError("grad_tile must be C-contiguous, of the bucket gradient's dtype.")
        with finished_after(finish, bucket_grad):
            self._scatter(layer_hash, grad_tile, bucket_grad, row_start)

    def _scatter(self, layer_hash, grad_tile, bucket_grad, row_start):
        """:meth:`scatter_bucket_grad`'s sums, added into ``bucket_grad``."""
        n_rows, n_cols = grad_tile.shape
        if layer_hash.sharded:
            if n_rows:
                _scatter_shards(layer_hash, grad_tile, bucket_grad, row_start)
            return
        shared_bytes = bucket_grad.size * bucket_grad.itemsize
        shared = shared_bytes <= SHARED_BYTES
        kernel = _kernel(f"scatter_{'shared' if shared else 'global'}_{_SUFFIX[grad_tile.dtype]}")
        kernel(
            _grid(n_rows * n_cols),
            (THREADS,),
            (
                grad_tile,
                *_hash_args(layer_hash),
                np.uint64(row_start),
                np.int64(n_rows),
                np.int64(n_cols),
                bucket_grad,
            ),
            shared_mem=shared_bytes if shared else 0,
        )

    def sgd_update(self, param, velocity, grad, learning_rate, momentum, nesterov):
        """One SGD step by scikit-learn's formulas, on the device."""
        sgd_formula(param, velocity, grad, learning_rate, momentum, nesterov)

    def adam_update(self, param, m, v, grad, learning_rate, beta_1, beta_2, epsilon):
        """One Adam step by scikit-learn's formulas, on the device."""
        adam_formula(param, m, v, grad, learning_rate, beta_1, beta_2, epsilon)

    def hash_pairs(self, layer_hash, i, j):
        """Bucket (uint32) and sign (int8) of index pairs, computed on the device.

        Under a sharded hash every ``i`` must be below the layer's ``n_rows``.
        """
        i = cp.ascontiguousarray(i, dtype=cp.uint32)
        j = cp.ascontiguousarray(j, dtype=cp.uint32)
        if layer_hash.sharded and i.size and int(i.max()) >= layer_hash.n_rows:
            raise ValueError(f"Every row index must be below n_rows={layer_hash.n_rows}.")
        bucket = cp.empty(i.size, dtype=cp.uint32)
        sign = cp.empty(i.size, dtype=cp.int8)
        _kernel("hash_pairs")(
            _grid(i.size),
            (THREADS,),
            (
                i,
                j,
                np.int64(i.size),
                np.uint32(layer_hash.seed),
                np.uint32(layer_hash.sign_seed),
                np.uint32(layer_hash.n_buckets),
                _block_flag(layer_hash),
                *_shard_args(layer_hash),
                bucket,
                sign,
            ),
        )
        return bucket, sign


def _block_flag(layer_hash):
    """The kernels' ``int block``: 1 under block hashing."""
    return np.int32(layer_hash.mode == BLOCK_HASHING)


def _hash_args(layer_hash):
    """The kernels' ``u32 n_buckets, u32 seed, u32 sign_seed, int sign_hash, int block``."""
    return (
        np.uint32(layer_hash.n_buckets),
        np.uint32(layer_hash.seed),
        np.uint32(layer_hash.sign_seed),
        np.int32(layer_hash.sign_hash),
        _block_flag(layer_hash),
    )


def _shard_args(layer_hash):
    """The kernels' ``u32 n_shards, u32 shard_period`` (``LayerHash.shard_period``)."""
    return np.uint32(layer_hash.n_shards), np.uint32(layer_hash.shard_period)


#: Shared memory of the sharded scatter besides its buckets: the bids and 3 flags (uint32).
_SHARD_BID_BYTES = (SHARD_SLOTS + 3) * 4


def _shard_chunks(layer_hash, itemsize):
    """Buckets per chunk of the sharded scatter, and chunks per shard (of the largest shard)."""
    largest = -(-layer_hash.n_buckets // layer_hash.n_shards)
    chunk_buckets = min(largest, (SHARED_BYTES - _SHARD_BID_BYTES) // itemsize)
    return chunk_buckets, -(-largest // chunk_buckets)


def _scatter_shards(layer_hash, grad_tile, bucket_grad, row_start):
    """Launch ``scatter_shards``: a thread block per (shard of the tile, chunk of its buckets)."""
    n_rows, n_cols = grad_tile.shape
    chunk_buckets, n_chunks = _shard_chunks(layer_hash, bucket_grad.itemsize)
    _, n_tile_shards = tile_shards(row_start, n_rows, layer_hash.n_shards, layer_hash.shard_period)
    n_units = int(n_tile_shards) * n_chunks
    sm_count = _sm_count(cp.cuda.Device().id)
    _kernel(f"scatter_shards_{_SUFFIX[grad_tile.dtype]}")(
        (min(n_units, 32 * sm_count),),
        (THREADS,),
        (
            grad_tile,
            *_hash_args(layer_hash),
            *_shard_args(layer_hash),
            np.uint64(row_start),
            np.int64(n_rows),
            np.int64(n_cols),
            np.uint32(chunk_buckets),
            np.uint32(n_chunks),
            np.uint32(SHARD_SLOTS),
            bucket_grad,
        ),
        shared_mem=chunk_buckets * bucket_grad.itemsize + _SHARD_BID_BYTES,
    )


def _check_contiguous(vector, name):
    """Raise ``ValueError`` unless ``vector`` is contiguous: the kernels index it as a pointer."""
    if not vector.flags.c_contiguous:
        raise ValueError(
            f"{name} must be a contiguous vector (a kernel reads it by pointer); "
            "pass a copy, e.g. cupy.ascontiguousarray."
        )
