"""The bucket gradient's last terms written with the scatter's sums (``GradientFinish``).

A scatter given a finish overwrites the bucket gradient with ``(sums + decay *
weights) / divisor``. The CPU kernels fuse it into their last write of each
bucket; every path must give the bits of NumPy's formulas applied after a
plain scatter into zeros (``GradientFinish.apply``), whatever the tile, the
waves of partial sums, the shards the tile touches and the scalars' types.
"""

import numpy as np
import pytest
from _hash_vectors import LAYER_SEED, sharded_layer_hash
from _numpy_device import NumPyDeviceBackend
from numpy.testing import assert_array_equal

from sk_hashednets._hashed_layer import HashedLayer
from sk_hashednets._kernels import GradientFinish, LayerHash
from sk_hashednets._kernels._cpu import CPUBackend
from sk_hashednets._kernels._numba import scatter_bucket_grad

N_IN, N_OUT, N_BUCKETS = 37, 23, 101


def _layer_hash(hashing, n_shards, layout="cyclic"):
    if n_shards == 1:
        return LayerHash.for_layer(LAYER_SEED, sign_hash=True, hashing=hashing, n_buckets=N_BUCKETS)
    return sharded_layer_hash(hashing, True, N_BUCKETS, n_shards, N_IN, layout, seed=LAYER_SEED)


def _arrays(dtype, n_rows=N_IN):
    rng = np.random.default_rng(0)
    grad = rng.standard_normal((n_rows, N_OUT)).astype(dtype)
    weights = rng.standard_normal(N_BUCKETS).astype(dtype)
    return grad, weights


def _garbage(dtype):
    """A bucket gradient whose old values must not show through an overwrite."""
    out = np.full(N_BUCKETS, np.nan, dtype=dtype)
    out[::3] = 1e30
    return out


def _workspace(backend, grad, layer_hash, partial_rows=None):
    if layer_hash.sharded:
        return None
    block_rows = backend.scatter_block_rows(N_IN, N_OUT, N_BUCKETS)
    if partial_rows is not None:  # fewer partial sums than blocks: several waves
        return block_rows, np.empty((partial_rows, N_BUCKETS), dtype=grad.dtype)
    return backend.scatter_workspace(grad.shape[0], block_rows, N_BUCKETS, grad.dtype)


def _scatter(backend, layer_hash, grad, out, finish, *, row_start=0, indexed=False, scratch=None):
    assert not (indexed and row_start), "an index tile covers the matrix from row 0"
    if scratch is None:
        scratch = _workspace(backend, grad, layer_hash)
    if indexed:
        index = np.empty(grad.shape, dtype=np.uint32)
        backend.bucket_index_tile(layer_hash, index)
        backend.scatter_indexed(grad, index, out, scratch, layer_hash=layer_hash, finish=finish)
    else:
        backend.scatter_bucket_grad(
            layer_hash, grad, out, scratch, row_start=row_start, finish=finish
        )


def _sums(backend, layer_hash, grad, **kwargs):
    out = np.zeros(N_BUCKETS, dtype=grad.dtype)
    _scatter(backend, layer_hash, grad, out, None, **kwargs)
    return out


def _finished(sums, finish):
    out = sums.copy()
    finish.apply(out)
    return out


#: Unsharded, and 5 shards under both layouts.
SHARDINGS = [(1, "cyclic"), (5, "cyclic"), (5, "contiguous")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("sharding", SHARDINGS)
@pytest.mark.parametrize("indexed", [False, True])
@pytest.mark.parametrize("decay, divisor", [(1e-4, 64), (0.37, 3.0), (0.0, 7)])
def test_fused_finish_gives_the_formulas_bits(dtype, hashing, sharding, indexed, decay, divisor):
    backend = CPUBackend()
    layer_hash = _layer_hash(hashing, *sharding)
    grad, weights = _arrays(dtype)
    finish = GradientFinish(weights, decay, divisor)
    sums = _sums(backend, layer_hash, grad, indexed=indexed)
    expected = _finished(sums, finish)
    assert not np.array_equal(expected, sums)  # the finish changes every path's result
    out = _garbage(dtype)
    _scatter(backend, layer_hash, grad, out, finish, indexed=indexed)
    assert_array_equal(out, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("partial_rows", [1, 2])
def test_fused_finish_over_several_waves_of_partial_sums(dtype, hashing, partial_rows):
    # One or two partial-sum vectors for the tile's blocks: the first wave
    # overwrites, the last finishes.
    backend = CPUBackend()
    layer_hash = _layer_hash(hashing, 1)
    grad, weights = _arrays(dtype)
    scratch = _workspace(backend, grad, layer_hash, partial_rows)
    assert N_IN > scratch[0] * partial_rows  # more blocks than partial sums
    finish = GradientFinish(weights, 0.25, 5)
    expected = _finished(_sums(backend, layer_hash, grad), finish)
    out = _garbage(dtype)
    _scatter(backend, layer_hash, grad, out, finish, scratch=scratch)
    assert_array_equal(out, expected)


@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("layout", ["cyclic", "contiguous"])
@pytest.mark.parametrize("rows", [(0, 1), (2, 4), (2, 9), (30, 37), (5, 5)])
def test_a_tile_of_some_shards_finishes_every_bucket(hashing, layout, rows):
    # The shards without rows in the tile are overwritten too: decay * w / divisor.
    # (Cyclic: rows 0:1 and 2:4 miss most shards; contiguous: all but the last
    # row ranges miss some. 5:5 is an empty tile. An index tile is read as rows
    # from 0, the layer's whole matrix: not here.)
    backend = CPUBackend()
    layer_hash = _layer_hash(hashing, 5, layout)
    start, stop = rows
    full_grad, weights = _arrays(np.float32)
    grad = np.ascontiguousarray(full_grad[start:stop])
    finish = GradientFinish(weights, 0.5, 3)
    expected = _finished(_sums(backend, layer_hash, grad, row_start=start), finish)
    out = _garbage(np.float32)
    _scatter(backend, layer_hash, grad, out, finish, row_start=start)
    assert_array_equal(out, expected)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("n_shards", [1, 5])
def test_scalars_numpy_widens_take_the_formulas_with_their_bits(n_shards):
    # NumPy 2 computes a float32 array with a float64 NumPy scalar in float64
    # (an alpha from np.logspace, a float64 sum of sample weights), each step
    # rounded back when stored: the formulas run after the kernels' sums.
    backend = CPUBackend()
    layer_hash = _layer_hash("element", n_shards)
    grad, weights = _arrays(np.float32)
    for finish in (
        GradientFinish(weights, np.float64(0.1), 3),
        GradientFinish(weights, 0.1, np.float64(3.3)),
        GradientFinish(weights, 0.1, np.int64(7)),
    ):
        widened = any(
            np.result_type(np.float32, v) != np.float32 for v in (finish.decay, finish.divisor)
        )
        assert (finish.kernel_scalars(np.float32) is None) == widened  # NumPy 1: not widened
        expected = _finished(_sums(backend, layer_hash, grad), finish)
        out = _garbage(np.float32)
        _scatter(backend, layer_hash, grad, out, finish)
        assert_array_equal(out, expected)


def test_kernel_scalars_take_python_numbers_in_the_arrays_dtype():
    weights = np.ones(3, dtype=np.float32)
    decay, divisor = GradientFinish(weights, 0.1, 256).kernel_scalars(np.float32)
    assert decay.dtype == divisor.dtype == np.float32
    assert decay == np.float32(0.1) and divisor == 256
    assert GradientFinish(weights, 0.1, np.float32(2.5)).kernel_scalars(np.float32) is not None
    # Not a plain number (a 0-d array, as a device's sum of sample weights): the formulas.
    assert GradientFinish(weights, 0.1, np.array(3.0)).kernel_scalars(np.float32) is None


@pytest.mark.parametrize("n_shards", [1, 5])
def test_weights_of_another_length_are_refused(n_shards):
    backend = CPUBackend()
    layer_hash = _layer_hash("element", n_shards)
    grad, _ = _arrays(np.float32)
    finish = GradientFinish(np.ones(N_BUCKETS - 1, dtype=np.float32), 0.1, 2)
    with pytest.raises(ValueError, match="finish.weights must have the bucket gradient's shape"):
        _scatter(backend, layer_hash, grad, np.zeros(N_BUCKETS, np.float32), finish)


def test_the_kernels_refuse_weights_they_would_read_past():
    # The Numba wrappers check what they are handed: the kernels do not bound-check.
    grad, _ = _arrays(np.float32)
    out = np.zeros(N_BUCKETS, np.float32)
    scratch = _workspace(CPUBackend(), grad, _layer_hash("element", 1))
    for weights in (np.ones(N_BUCKETS - 1, np.float32), np.ones(N_BUCKETS, np.float64)):
        finish = (weights, np.float32(0.1), np.float32(2))
        with pytest.raises(ValueError, match="finish's weights must have"):
            scatter_bucket_grad(grad, np.uint64(1), np.uint64(2), True, 0, out, *scratch, 0, finish)


def test_a_finish_is_not_compared_by_value():
    finish = GradientFinish(np.ones(3), 0.1, 2)
    assert finish == finish and finish != GradientFinish(np.ones(3), 0.1, 2)


def _layer(backend, n_shards, tile_bytes):
    return HashedLayer(
        backend,
        N_IN,
        N_OUT,
        LAYER_SEED,
        True,
        np.float32,
        tile_bytes,
        n_buckets=N_BUCKETS,
        n_shards=n_shards,
    )


@pytest.mark.parametrize("n_shards", [1, 5])
@pytest.mark.parametrize("max_tile_bytes", [2**20, 4 * N_OUT * 8])
def test_layer_bucket_grad_finishes_one_tile_or_several(n_shards, max_tile_bytes, monkeypatch):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((16, N_IN)).astype(np.float32)
    D = rng.standard_normal((16, N_OUT)).astype(np.float32)
    weights = rng.standard_normal(N_BUCKETS).astype(np.float32)
    finish = GradientFinish(weights, 1e-3, 16)
    backend = CPUBackend()
    sums = _layer(backend, n_shards, max_tile_bytes).bucket_grad(A, D, _garbage(np.float32))
    expected = _finished(sums, finish)
    layer = _layer(backend, n_shards, max_tile_bytes)
    one_tile = len(layer.tiles) == 1
    assert one_tile == (max_tile_bytes == 2**20)
    if one_tile:  # the kernels write the finish: the formulas never run
        monkeypatch.setattr(GradientFinish, "apply", None)
    assert_array_equal(layer.bucket_grad(A, D, _garbage(np.float32), finish), expected)


def test_a_device_backend_applies_the_finish_after_its_sums():
    device = NumPyDeviceBackend()
    layer_hash = _layer_hash("block", 5)
    grad, weights = _arrays(np.float32)
    finish = GradientFinish(device.to_device(weights), 0.5, 3)
    expected = _finished(_sums(CPUBackend(), layer_hash, grad), GradientFinish(weights, 0.5, 3))
    out = device.to_device(_garbage(np.float32))
    device.scatter_bucket_grad(layer_hash, device.to_device(grad), out, None, finish=finish)
    assert_array_equal(device.to_host(out), expected)
