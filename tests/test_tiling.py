"""The tiled layer (``HashedLayer``): several tiles and panels against one, bit for bit."""

import types

import numpy as np
import pytest
import scipy.sparse as sp
from _hash_vectors import LAYER_SEED
from numpy.testing import assert_allclose, assert_array_equal

from sk_hashednets import _hashed_layer
from sk_hashednets._hashed_layer import HashedLayer
from sk_hashednets._kernels import (
    get_backend,
)
from sk_hashednets._kernels._reference import bucket_grad, materialize

# ----------------------------------------------------------------------------
# HashedLayer: several tiles against one
# ----------------------------------------------------------------------------


def _layers(n_in, n_out, dtype, sign_hash, n_buckets):
    backend = get_backend("cpu")
    kw = dict(n_buckets=n_buckets)
    one_tile = HashedLayer(backend, n_in, n_out, LAYER_SEED, sign_hash, dtype, **kw)
    indexed = HashedLayer(backend, n_in, n_out, LAYER_SEED, sign_hash, dtype, keep_index=True, **kw)
    # Row tiles hold whole scatter blocks: two blocks a tile, then the least, one.
    block_rows = one_tile.scatter_block_rows
    row_bytes = n_out * np.dtype(dtype).itemsize
    two_blocks = HashedLayer(
        backend, n_in, n_out, LAYER_SEED, sign_hash, dtype, 2 * block_rows * row_bytes + 1, **kw
    )
    one_block = HashedLayer(backend, n_in, n_out, LAYER_SEED, sign_hash, dtype, 1, **kw)
    assert one_tile.single_tile and not one_tile.keeps_index and indexed.keeps_index
    assert 1 < block_rows < n_in // 2
    assert two_blocks.rows_per_tile == 2 * block_rows and one_block.rows_per_tile == block_rows
    for layer in (two_blocks, one_block):
        assert len(layer.tiles) > 2 and all(start % block_rows == 0 for start, _ in layer.tiles)
    return [one_tile, indexed, two_blocks, one_block]


def _layer_data(seed, n_samples, n_in, n_out, n_buckets, dtype, zeros):
    """Buckets, a layer input with a share ``zeros`` of zeros, and an output gradient."""
    rng = np.random.default_rng(seed)
    bucket_weights = rng.standard_normal(n_buckets).astype(dtype)
    A = rng.standard_normal((n_samples, n_in)).astype(dtype)
    A[rng.random(A.shape) < zeros] = 0
    D = rng.standard_normal((n_samples, n_out)).astype(dtype)
    return bucket_weights, A, D


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sign_hash", [True, False])
@pytest.mark.parametrize("sparse_input", [False, True])
def test_hashed_layer_tiles_agree(dtype, sign_hash, sparse_input):
    n_samples, n_in, n_out, n_buckets = 11, 37, 23, 101
    bucket_weights, A, D = _layer_data(5, n_samples, n_in, n_out, n_buckets, dtype, zeros=0.6)
    A_input = sp.csr_matrix(A) if sparse_input else A

    W = materialize(bucket_weights.astype(np.float64), LAYER_SEED, n_in, n_out, sign_hash)
    A64, D64 = A.astype(np.float64), D.astype(np.float64)
    expected_dot = A64 @ W
    expected_dot_t = D64 @ W.T
    expected_grad = bucket_grad(A64.T @ D64, LAYER_SEED, n_buckets, sign_hash)
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    atol = rtol * 10

    dots, dots_t, grads = [], [], []
    for layer in _layers(n_in, n_out, dtype, sign_hash, n_buckets):
        dots.append(layer.dot(A_input, bucket_weights))
        dots_t.append(layer.dot_transposed(D, bucket_weights))
        grads.append(layer.bucket_grad(A_input, D, np.full(n_buckets, np.nan, dtype=dtype)))
    for got_dot, got_dot_t, got_grad in zip(dots, dots_t, grads):
        assert got_dot.dtype == got_dot_t.dtype == got_grad.dtype == dtype
        assert got_dot.shape == (n_samples, n_out) and got_dot_t.shape == (n_samples, n_in)
        assert_allclose(got_dot, expected_dot, rtol=rtol, atol=atol)
        assert_allclose(got_dot_t, expected_dot_t, rtol=rtol, atol=atol)
        assert_allclose(got_grad, expected_grad, rtol=rtol, atol=atol)
    # The kept bucket index changes nothing, bit for bit.
    for got in (dots, dots_t, grads):
        assert_array_equal(got[1], got[0], strict=True)


def _assert_same_products(results):
    """Every layer's three products equal the first layer's, bit for bit."""
    for got in results[1:]:
        for product, expected in zip(got, results[0]):
            assert_array_equal(product, expected, strict=True)


def _products(layer, A, D, bucket_weights):
    grad = layer.bucket_grad(A, D, np.full(layer.n_buckets, np.nan, dtype=layer.dtype))
    return layer.dot(A, bucket_weights), layer.dot_transposed(D, bucket_weights), grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("sparse_input", [False, True])
def test_tile_budget_changes_no_bit(monkeypatch, dtype, hashing, sparse_input):
    # Panels of 256 bytes (32 MiB in the package) make many panels of a small
    # layer; budgets of one panel, of a few, and the untiled layer then give
    # the same bits: the products run panel by panel, whatever the tiles.
    monkeypatch.setattr(_hashed_layer, "PANEL_BYTES", 256)
    n_samples, n_in, n_out, n_buckets = 13, 70, 90, 300
    bucket_weights, A, D = _layer_data(7, n_samples, n_in, n_out, n_buckets, dtype, zeros=0.5)
    A_input = sp.csr_matrix(A) if sparse_input else A
    backend = get_backend("cpu")
    results = []
    for tile_bytes in (None, 256, 700, 3000):
        kw = {} if tile_bytes is None else {"tile_bytes": tile_bytes}
        layer = HashedLayer(
            backend,
            n_in,
            n_out,
            LAYER_SEED,
            True,
            dtype,
            hashing=hashing,
            n_buckets=n_buckets,
            keep_index=True,
            **kw,
        )
        assert len(layer.row_panels) > 2 and len(layer.column_panels) > 2
        assert layer.single_tile == (tile_bytes is None)
        results.append(_products(layer, A_input, D, bucket_weights))
    assert results[0][0].dtype == dtype
    _assert_same_products(results)


@pytest.mark.parametrize("n_in, n_out", [(1, 3), (2, 5)])
def test_one_row_over_the_budget_still_multiplies_by_columns(n_in, n_out):
    # A row over the budget makes one row tile (the whole matrix) but several
    # column tiles: A @ W must use the whole matrix's columns, not the tiles'.
    rng = np.random.default_rng(9)
    bucket_weights = rng.standard_normal(7)
    A = rng.standard_normal((4, n_in))
    layer = HashedLayer(
        get_backend("cpu"), n_in, n_out, LAYER_SEED, True, np.float64, 8, n_buckets=7
    )
    assert layer.single_tile and len(layer.column_tiles) == n_out
    W = materialize(bucket_weights, LAYER_SEED, n_in, n_out, True)
    assert_allclose(layer.dot(A, bucket_weights), A @ W, rtol=1e-13)


def test_panel_products_on_another_array_module_write_views_by_assignment():
    # CuPy's matmul is not trusted with a strided ``out``: a column panel is
    # assigned, a contiguous row panel goes through matmul(out=...).
    calls = []

    def matmul(a, b, out):
        assert out.flags.c_contiguous, "matmul was handed a strided out"
        calls.append(out.shape)
        return np.matmul(a, b, out=out)

    other_xp = types.SimpleNamespace(matmul=matmul)
    rng = np.random.default_rng(10)
    A, W = rng.standard_normal((4, 6)), rng.standard_normal((6, 8))
    Z = np.zeros((4, 8))
    _hashed_layer._matmul_into(other_xp, A, W[:, 2:5], Z[:, 2:5])
    assert calls == []
    assert_allclose(Z[:, 2:5], A @ W[:, 2:5], rtol=1e-14)
    G = np.zeros((6, 8))
    _hashed_layer._matmul_into(other_xp, W[2:4], W.T @ W, G[2:4])
    assert calls == [(2, 8)]
    assert_allclose(G[2:4], W[2:4] @ (W.T @ W), rtol=1e-13)


def test_tile_budget_changes_no_bit_at_the_package_panel():
    # A 64 MiB float64 matrix: two 32 MiB panels each way; tiles of one panel
    # (budgets of 32 and of 48 MiB) against the untiled matrix.
    n_samples, n_in, n_out, n_buckets = 8, 2048, 4096, 2**16
    assert _hashed_layer.PANEL_BYTES == 32 * 2**20
    bucket_weights, A, D = _layer_data(8, n_samples, n_in, n_out, n_buckets, np.float64, zeros=0)
    backend = get_backend("cpu")
    results = []
    for tile_bytes in (128 * 2**20, 48 * 2**20, 32 * 2**20):
        layer = HashedLayer(
            backend, n_in, n_out, LAYER_SEED, True, np.float64, tile_bytes, n_buckets=n_buckets
        )
        assert len(layer.row_panels) == len(layer.column_panels) == 2
        assert len(layer.tiles) == (1 if tile_bytes == 128 * 2**20 else 2)
        results.append(_products(layer, A, D, bucket_weights))
    _assert_same_products(results)


def test_hashed_layer_reuses_tile_of_last_dot():
    rng = np.random.default_rng(6)
    layer = HashedLayer(get_backend("cpu"), 9, 6, LAYER_SEED, True, np.float64, n_buckets=20)
    bucket_weights = rng.standard_normal(20)
    A, D = rng.standard_normal((4, 9)), rng.standard_normal((4, 6))
    layer.dot(A, bucket_weights)
    W = materialize(bucket_weights, LAYER_SEED, 9, 6)
    assert_allclose(layer.dot_transposed(D, bucket_weights, reuse_tile=True), D @ W.T)
