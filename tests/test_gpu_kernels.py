"""The CUDA backend's kernels against the CPU's, on a GPU.

Skipped, with the reason, where CuPy or a CUDA device is missing (as in CI):
``tests/test_cuda_sources.py`` checks the same sources there, compiled by nvcc.
"""

import numpy as np
import pytest
from _gpu import require_gpu

cp = require_gpu()

from sk_hashednets._kernels._backend import LayerHash  # noqa: E402
from sk_hashednets._kernels._cpu import CPUBackend  # noqa: E402
from sk_hashednets._kernels._cuda import CUDABackend  # noqa: E402
from sk_hashednets._kernels._hashing import hash_pairs  # noqa: E402

CPU, GPU = CPUBackend(), CUDABackend()
SEED = 2**32 - 7


@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("n_buckets", [1, 15, 1000, 2**32 - 1])
def test_device_hash_equals_numpy_spec(hashing, n_buckets):
    rng = np.random.default_rng(0)
    i = rng.integers(0, 2**32, 100_000, dtype=np.uint64)
    j = rng.integers(0, 2**32, 100_000, dtype=np.uint64)
    layer_hash = LayerHash.for_layer(SEED, sign_hash=True, hashing=hashing, n_buckets=n_buckets)
    bucket, sign = GPU.hash_pairs(layer_hash, cp.asarray(i), cp.asarray(j))
    expected_bucket, expected_sign = hash_pairs(SEED, i, j, n_buckets, hashing)
    np.testing.assert_array_equal(cp.asnumpy(bucket).astype(np.int64), expected_bucket)
    np.testing.assert_array_equal(cp.asnumpy(sign), expected_sign)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("sign_hash", [True, False])
# A tile far inside a matrix of more than 2**32 entries, and one at the origin.
@pytest.mark.parametrize("row_start, col_start", [(0, 0), (3_000_000_000, 70_001)])
def test_tiles_identical_to_cpu(dtype, hashing, sign_hash, row_start, col_start):
    w = np.random.default_rng(1).standard_normal(997).astype(dtype)
    layer_hash = LayerHash.for_layer(SEED, sign_hash=sign_hash, hashing=hashing, n_buckets=997)
    at = dict(row_start=row_start, col_start=col_start)
    expected = np.empty((37, 91), dtype=dtype)
    CPU.materialize_tile(layer_hash, w, expected, **at)
    out = cp.empty((37, 91), dtype=dtype)
    GPU.materialize_tile(layer_hash, cp.asarray(w), out, **at)
    np.testing.assert_array_equal(cp.asnumpy(out), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hashing", ["element", "block"])
# 997 buckets sum in shared memory, 100_003 in global memory.
@pytest.mark.parametrize("n_buckets", [997, 100_003])
def test_bucket_gradients_match_cpu(dtype, hashing, n_buckets):
    grad = np.random.default_rng(2).standard_normal((300, 517)).astype(dtype)
    layer_hash = LayerHash.for_layer(SEED, sign_hash=True, hashing=hashing, n_buckets=n_buckets)
    expected = np.zeros(n_buckets, dtype=dtype)
    got = cp.zeros(n_buckets, dtype=dtype)
    for backend, grad_tile, out in ((CPU, grad.copy(), expected), (GPU, cp.asarray(grad), got)):
        block_rows = backend.scatter_block_rows(300, 517, n_buckets)
        scratch = backend.scatter_workspace(300, block_rows, n_buckets, dtype)
        backend.scatter_bucket_grad(layer_hash, grad_tile, out, scratch, row_start=5)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(cp.asnumpy(got), expected, rtol=rtol, atol=rtol * 10)
