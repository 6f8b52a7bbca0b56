"""The CUDA backend's kernels against the CPU's.

On a GPU where there is one; else on the CPU, through the CuPy double
(``tests/fake_cupy``): the real ``CUDABackend`` launching the CUDA source
compiled by g++ with the emulation header, every launch argument checked
against the kernel's C signature. Skipped, with the reasons, where neither
exists. The backend is called through ``_materialize`` and ``_scatter`` only,
except by the tests of sharded hashing, which check the backend against the
NumPy reference (``_reference``) directly.
"""

import numpy as np
import pytest
from _gpu import require_gpu_or_emulation

require_gpu_or_emulation()

from _hash_vectors import sharded_layer_hash  # noqa: E402

from sk_hashednets._kernels import _reference as ref  # noqa: E402
from sk_hashednets._kernels._backend import LayerHash  # noqa: E402
from sk_hashednets._kernels._cpu import CPUBackend  # noqa: E402
from sk_hashednets._kernels._hashing import hash_pairs  # noqa: E402

CPU = CPUBackend()
SEED = 2**32 - 7
#: Dynamic shared memory a scatter may use (the backend's SHARED_BYTES).
SHARED_BYTES = 48 * 1024
#: Bid slots of the sharded scatter (the backend's SHARD_SLOTS).
SHARD_SLOTS = 1024


def _layer_hash(sign_hash, hashing, n_buckets):
    return LayerHash.for_layer(SEED, sign_hash=sign_hash, hashing=hashing, n_buckets=n_buckets)


def _materialize(backend, w, sign_hash, row_start, out, col_start, hashing):
    layer_hash = _layer_hash(sign_hash, hashing, w.size)
    backend.materialize_tile(layer_hash, w, out, row_start=row_start, col_start=col_start)


def _scatter(backend, grad, sign_hash, row_start, bucket_grad, hashing):
    """Add ``grad``'s bucket gradients into ``bucket_grad`` (CPU: with its scratch space)."""
    scratch = None
    if backend.is_host:
        n_rows, n_cols = grad.shape
        block_rows = backend.scatter_block_rows(n_rows, n_cols, bucket_grad.size)
        scratch = backend.scatter_workspace(n_rows, block_rows, bucket_grad.size, grad.dtype)
    layer_hash = _layer_hash(sign_hash, hashing, bucket_grad.size)
    backend.scatter_bucket_grad(layer_hash, grad, bucket_grad, scratch, row_start=row_start)


@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("n_buckets", [1, 15, 1000, 2**32 - 1])
def test_device_hash_equals_numpy_spec(cuda, hashing, n_buckets):
    rng = np.random.default_rng(0)
    i = rng.integers(0, 2**32, 100_000, dtype=np.uint64)
    j = rng.integers(0, 2**32, 100_000, dtype=np.uint64)
    layer_hash = _layer_hash(True, hashing, n_buckets)
    bucket, sign = cuda.backend.hash_pairs(layer_hash, cuda.cp.asarray(i), cuda.cp.asarray(j))
    expected_bucket, expected_sign = hash_pairs(SEED, i, j, n_buckets, hashing)
    np.testing.assert_array_equal(cuda.cp.asnumpy(bucket).astype(np.int64), expected_bucket)
    np.testing.assert_array_equal(cuda.cp.asnumpy(sign), expected_sign)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("sign_hash", [True, False])
# A tile far inside a matrix of more than 2**32 entries, and one at the origin.
@pytest.mark.parametrize("row_start, col_start", [(0, 0), (3_000_000_000, 70_001)])
def test_tiles_identical_to_cpu(cuda, dtype, hashing, sign_hash, row_start, col_start):
    w = np.random.default_rng(1).standard_normal(997).astype(dtype)
    expected = np.empty((37, 91), dtype=dtype)
    _materialize(CPU, w, sign_hash, row_start, expected, col_start, hashing)
    out = cuda.cp.empty((37, 91), dtype=dtype)
    _materialize(cuda.backend, cuda.cp.asarray(w), sign_hash, row_start, out, col_start, hashing)
    np.testing.assert_array_equal(cuda.cp.asnumpy(out), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hashing", ["element", "block"])
# 997 buckets sum in shared memory, 100_003 in global memory.
@pytest.mark.parametrize("n_buckets", [997, 100_003])
# Rows near the origin, and rows past 2**31 (a tile deep in a tall matrix).
@pytest.mark.parametrize("row_start", [5, 2**31 + 3])
def test_bucket_gradients_match_cpu(cuda, dtype, hashing, n_buckets, row_start):
    grad = np.random.default_rng(2).standard_normal((300, 517)).astype(dtype)
    expected = np.zeros(n_buckets, dtype=dtype)
    _scatter(CPU, grad.copy(), True, row_start, expected, hashing)
    got = cuda.cp.zeros(n_buckets, dtype=dtype)
    _scatter(cuda.backend, cuda.cp.asarray(grad), True, row_start, got, hashing)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(cuda.cp.asnumpy(got), expected, rtol=rtol, atol=rtol * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scatter_takes_shared_memory_up_to_48_kib(cuda, dtype):
    """Both sides of the bound: the largest bucket vector summed in shared memory, and one more."""
    if not cuda.emulated:
        pytest.skip("the launches are recorded by the CuPy double only")
    itemsize = np.dtype(dtype).itemsize
    grad = np.random.default_rng(3).standard_normal((7, 33)).astype(dtype)
    for n_buckets, kernel, shared_mem in [
        (SHARED_BYTES // itemsize, "scatter_shared", SHARED_BYTES),
        (SHARED_BYTES // itemsize + 1, "scatter_global", 0),
    ]:
        expected = np.zeros(n_buckets, dtype=dtype)
        _scatter(CPU, grad.copy(), False, 0, expected, "element")
        got = cuda.cp.zeros(n_buckets, dtype=dtype)
        _scatter(cuda.backend, cuda.cp.asarray(grad), False, 0, got, "element")
        name, grid, block, shared = cuda.launches[-1]
        suffix = "f32" if dtype == np.float32 else "f64"
        assert (name, block, shared) == (f"{kernel}_{suffix}", (256, 1, 1), shared_mem)
        assert grid == (1, 1, 1)  # 231 entries: one block
        np.testing.assert_allclose(cuda.cp.asnumpy(got), expected, rtol=1e-12, atol=1e-5)


def test_tile_larger_than_the_grid_is_covered_by_the_grid_stride_loop(cuda):
    """More entries than the grid has threads: every entry written, by its tile row and column."""
    w = np.arange(1, 5001, dtype=np.float64)
    expected = np.empty((123, 457), dtype=np.float64)
    _materialize(CPU, w, True, 2**31 - 60, expected, 2**32 - 460, "block")
    out = cuda.cp.zeros((123, 457), dtype=np.float64)
    _materialize(cuda.backend, cuda.cp.asarray(w), True, 2**31 - 60, out, 2**32 - 460, "block")
    np.testing.assert_array_equal(cuda.cp.asnumpy(out), expected)
    if cuda.emulated:
        (grid, block) = cuda.launches[-1][1:3]
        assert grid[0] * block[0] < expected.size  # the loop went round more than once


def test_the_backend_refuses_tiles_it_cannot_launch_on(cuda):
    w = cuda.cp.zeros(10, dtype=np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        strided = cuda.cp.empty((4, 6), np.float32)[:, :3]
        _materialize(cuda.backend, w, True, 0, strided, 0, "element")
    with pytest.raises(ValueError, match="dtype"):
        _materialize(cuda.backend, w, True, 0, cuda.cp.empty((4, 3), np.float64), 0, "element")
    with pytest.raises(ValueError, match="C-contiguous"):
        _scatter(cuda.backend, cuda.cp.zeros((3, 4), np.float64), True, 0, w, "element")
    # A strided bucket vector would be read as if it were contiguous: refused.
    strided_w = cuda.cp.zeros(20, dtype=np.float32)[::2]
    with pytest.raises(ValueError, match="bucket_weights must be a contiguous vector"):
        out = cuda.cp.empty((4, 3), np.float32)
        _materialize(cuda.backend, strided_w, True, 0, out, 0, "element")
    with pytest.raises(ValueError, match="bucket_grad must be a contiguous vector"):
        _scatter(cuda.backend, cuda.cp.zeros((3, 4), np.float32), True, 0, strided_w, "element")


def test_transfers_and_free_memory(cuda):
    host = np.arange(6.0).reshape(2, 3)
    device = cuda.backend.to_device(host)
    assert isinstance(device, cuda.cp.ndarray) and cuda.backend.to_device(device) is device
    assert cuda.backend.to_host(host) is host and cuda.backend.to_host(1.5) == 1.5
    np.testing.assert_array_equal(cuda.backend.to_host(device), host)
    total = cuda.backend.to_host(device.sum())
    assert isinstance(total, np.generic) and total == 15.0
    empty = cuda.backend.empty((4, 5), np.float32)
    assert isinstance(empty, cuda.cp.ndarray) and (empty.shape, empty.dtype) == ((4, 5), np.float32)
    assert cuda.backend.free_memory() > 0


# ----------------------------------------------------------------------------
# Sharded hashing: against the NumPy reference
# ----------------------------------------------------------------------------

#: A small sharded layer: 5 shards divide neither the 23 rows nor the 101
#: buckets (shards of 4 or 5 rows, 20 or 21 buckets: many entries per bucket).
N_IN, N_OUT, N_BUCKETS, N_SHARDS = 23, 45, 101, 5
#: Row tiles whose bounds fall inside shards (rows 0-3, 4-8, 9-12, 13-17,
#: 18-22): a shard spans two tiles, scattered by two calls.
ROW_TILES = [(0, 7), (7, 16), (16, 23)]


#: Version 3's layout, then version 2's.
LAYOUTS = ["cyclic", "contiguous"]


def _scatter_in_tiles(cuda, layer_hash, grad, tiles):
    """The device's bucket gradient of ``grad``, one call per row tile, and the reference's.

    ``grad`` holds the rows from the first tile's start to the last tile's stop.
    """
    got = cuda.cp.zeros(layer_hash.n_buckets, dtype=grad.dtype)
    expected = np.zeros(layer_hash.n_buckets, dtype=grad.dtype)
    first_row = tiles[0][0]
    assert tiles[-1][1] - first_row == len(grad)
    for start, stop in tiles:
        rows = grad[start - first_row : stop - first_row]
        tile = cuda.cp.asarray(rows)
        cuda.backend.scatter_bucket_grad(layer_hash, tile, got, None, row_start=start)
        ref.bucket_grad_in_row_order(
            rows,
            SEED,
            expected,
            layer_hash.sign_hash,
            start,
            layer_hash.hashing,
            layer_hash.n_shards,
            layer_hash.n_rows,
            layer_hash.shard_layout,
        )
    return cuda.cp.asnumpy(got), expected


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize(
    "n_rows, n_buckets, n_shards",
    [(N_IN, N_BUCKETS, N_SHARDS), (2**32 - 1, 2**32 - 1, 65_536), (1000, 7, 7)],
)
def test_device_hash_equals_numpy_spec_under_shards(
    cuda, hashing, n_rows, n_buckets, n_shards, layout
):
    rng = np.random.default_rng(4)
    i = rng.integers(0, n_rows, 3000, dtype=np.uint64)
    j = rng.integers(0, 2**32, 3000, dtype=np.uint64)
    i[:2] = [0, n_rows - 1]
    layer_hash = sharded_layer_hash(hashing, True, n_buckets, n_shards, n_rows, layout, seed=SEED)
    bucket, sign = cuda.backend.hash_pairs(layer_hash, cuda.cp.asarray(i), cuda.cp.asarray(j))
    expected_bucket, expected_sign = hash_pairs(
        SEED, i, j, n_buckets, hashing, n_shards, n_rows, layout
    )
    np.testing.assert_array_equal(cuda.cp.asnumpy(bucket).astype(np.int64), expected_bucket)
    np.testing.assert_array_equal(cuda.cp.asnumpy(sign), expected_sign)
    with pytest.raises(ValueError, match=f"below n_rows={n_rows}"):
        too_far = cuda.cp.asarray(np.array([n_rows], dtype=np.uint64))
        cuda.backend.hash_pairs(layer_hash, too_far, too_far)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("sign_hash", [True, False])
def test_sharded_tiles_identical_to_the_reference(cuda, dtype, hashing, sign_hash, layout):
    w = np.random.default_rng(5).standard_normal(N_BUCKETS).astype(dtype)
    layer_hash = sharded_layer_hash(
        hashing, sign_hash, N_BUCKETS, N_SHARDS, N_IN, layout, seed=SEED
    )
    whole = ref.materialize(
        w, SEED, N_IN, N_OUT, sign_hash, hashing=hashing, n_shards=N_SHARDS, shard_layout=layout
    )
    # The whole matrix, and a tile that starts and stops inside shards and inside blocks.
    for rows, cols in [((0, N_IN), (0, N_OUT)), ((3, 17), (7, 37))]:
        out = cuda.cp.empty((rows[1] - rows[0], cols[1] - cols[0]), dtype=dtype)
        cuda.backend.materialize_tile(
            layer_hash, cuda.cp.asarray(w), out, row_start=rows[0], col_start=cols[0]
        )
        np.testing.assert_array_equal(cuda.cp.asnumpy(out), whole[slice(*rows), slice(*cols)])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_sharded_tile_deep_in_a_tall_matrix_identical_to_the_reference(cuda, layout):
    """Rows past 2**31 of a matrix of 2**32 - 1 rows, 65536 shards of 3 buckets.

    Contiguous, the tile's 9 rows straddle the first row of shard 45777,
    3_000_041_471; cyclic, they are rows 65531 to 65535 and 0 to 3 of their
    windows: the tile wraps around to shard 0 in the middle.
    """
    n_rows, n_buckets, n_shards, row_start = 2**32 - 1, 3 * 65_536 + 2, 65_536, 3_000_041_467
    assert row_start % n_shards == 65_531
    w = np.random.default_rng(6).standard_normal(n_buckets)
    layer_hash = sharded_layer_hash("block", True, n_buckets, n_shards, n_rows, layout, seed=SEED)
    expected = ref.materialize(
        w, SEED, n_rows, 40, True, row_start, row_start + 9, "block", n_shards, layout
    )
    out = cuda.cp.empty((9, 40), dtype=np.float64)
    cuda.backend.materialize_tile(layer_hash, cuda.cp.asarray(w), out, row_start=row_start)
    np.testing.assert_array_equal(cuda.cp.asnumpy(out), expected)
    grad = np.random.default_rng(7).standard_normal((9, 40))
    got, expected = _scatter_in_tiles(
        cuda, layer_hash, grad, [(row_start, row_start + 6), (row_start + 6, row_start + 9)]
    )
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("sign_hash", [True, False])
def test_sharded_scatter_is_the_cpus_chain_of_additions(cuda, dtype, hashing, sign_hash, layout):
    """Bit for bit the reference's row-major sums, with no global atomics."""
    grad = np.random.default_rng(8).standard_normal((N_IN, N_OUT)).astype(dtype)
    layer_hash = sharded_layer_hash(
        hashing, sign_hash, N_BUCKETS, N_SHARDS, N_IN, layout, seed=SEED
    )
    if cuda.emulated:
        cuda.launches.clear()
    got, expected = _scatter_in_tiles(cuda, layer_hash, grad, ROW_TILES)
    np.testing.assert_array_equal(got, expected)
    assert np.count_nonzero(expected) > 0.9 * N_BUCKETS  # every shard's range was written
    # The CPU's scatter, on the same tiles, gives the same bits.
    on_cpu = np.zeros(N_BUCKETS, dtype=dtype)
    for start, stop in ROW_TILES:
        CPU.scatter_bucket_grad(layer_hash, grad[start:stop], on_cpu, None, row_start=start)
    np.testing.assert_array_equal(got, on_cpu)
    if cuda.emulated:
        # One block per shard of each tile (at most 21 buckets: one chunk each),
        # and the scatter_shards kernel only: no global atomics. Cyclic, every
        # tile of 7 or more rows holds all 5 shards.
        suffix = "f32" if dtype == np.float32 else "f64"
        shared = 21 * np.dtype(dtype).itemsize + 4 * (SHARD_SLOTS + 3)
        tile_shards = (5, 5, 5) if layout == "cyclic" else (2, 3, 2)
        assert cuda.launches == [
            (f"scatter_shards_{suffix}", (n_shards, 1, 1), (256, 1, 1), shared)
            for n_shards in tile_shards
        ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sharded_scatter_of_shards_larger_than_shared_memory(cuda, dtype):
    """Shards of 15005 and 15006 buckets: 2 chunks in float32, 3 in float64 (contiguous)."""
    n_buckets, n_shards = 30_011, 2
    grad = np.random.default_rng(9).standard_normal((N_IN, N_OUT)).astype(dtype)
    layer_hash = sharded_layer_hash(
        "element", True, n_buckets, n_shards, N_IN, "contiguous", seed=SEED
    )
    if cuda.emulated:
        cuda.launches.clear()
    got, expected = _scatter_in_tiles(cuda, layer_hash, grad, ROW_TILES)
    np.testing.assert_array_equal(got, expected)
    # Entries in every chunk of both shards (each at least 3744 buckets wide).
    assert all(np.count_nonzero(piece) for piece in np.array_split(expected, 9))
    if cuda.emulated:
        n_chunks = 2 if dtype == np.float32 else 3
        # Tiles 0-6 and 16-22 touch one shard each, 7-15 both (shard 1 starts at row 11).
        assert [launch[1] for launch in cuda.launches] == [(n_chunks * n, 1, 1) for n in (1, 2, 1)]
        assert all(SHARED_BYTES - 16 < launch[3] <= SHARED_BYTES for launch in cuda.launches)


@pytest.mark.parametrize(
    "n_in, n_out, n_buckets, n_shards, dtype, grid",
    [
        # 40 shards of 10 buckets: more units than the double's grid of 32 blocks,
        # so a block goes on to a second unit (the grid-stride loop over units).
        (80, 20, 400, 40, np.float32, 32),
        # Shards of 5630 and 5631 float64 buckets: 2 chunks of 5630, the smaller
        # shard's second one empty (its block has nothing to do).
        (N_IN, N_OUT, 11_261, 2, np.float64, 4),
    ],
)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_sharded_scatter_units_beyond_the_grid_and_empty_chunks(
    cuda, n_in, n_out, n_buckets, n_shards, dtype, grid, layout
):
    grad = np.random.default_rng(10).standard_normal((n_in, n_out)).astype(dtype)
    layer_hash = sharded_layer_hash("block", True, n_buckets, n_shards, n_in, layout, seed=SEED)
    if cuda.emulated:
        cuda.launches.clear()
    got, expected = _scatter_in_tiles(cuda, layer_hash, grad, [(0, n_in)])
    np.testing.assert_array_equal(got, expected)
    if cuda.emulated:
        assert [launch[1] for launch in cuda.launches] == [(grid, 1, 1)]
