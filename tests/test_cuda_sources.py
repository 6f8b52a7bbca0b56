"""The CUDA sources, checked without a GPU.

CI has ``nvcc`` but no GPU. So the kernels are compiled to PTX for Hopper
(sm_90), so that a syntax or type error cannot land unseen, and the hash
helpers, which are ``__host__ __device__``, are compiled for the CPU into a
small shared library and checked bit for bit against the NumPy specification:
the document's test vectors (sharded ones included) and random pairs up to
2**32 - 1. The tests skip with a reason where ``nvcc`` is missing.
"""

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _hash_vectors import BLOCK_VECTORS, ELEMENT_VECTORS, SHARD_VECTORS

from sk_hashednets._kernels._hashing import SIGN_SEED_XOR, hash_pairs, shard_period

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "sk_hashednets" / "_kernels" / "cuda" / "hashed_kernels.cu"
NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc (the CUDA compiler) is not on PATH")

ENTRIES = [
    "hash_pairs",
    *(
        f"{kernel}_{suffix}"
        for kernel in ("materialize_tile", "scatter_global", "scatter_shared", "scatter_shards")
        for suffix in ("f32", "f64")
    ),
]

HARNESS = r"""
#include "{source}"
extern "C" void host_hash_pairs(const u32 *i, const u32 *j, long long n, u32 seed,
                                u32 n_buckets, int block, u32 n_shards, u32 shard_period,
                                u32 *bucket, signed char *sign) {{
    u32 sign_seed = seed ^ {sign_seed_xor}u;
    for (long long t = 0; t < n; ++t) {{
        u32 b, neg;
        sk_hash_sharded(block, seed, sign_seed, i[t], j[t], n_buckets, n_shards, shard_period,
                        &b, &neg);
        bucket[t] = b;
        sign[t] = neg ? -1 : 1;
    }}
}}
"""


def _run(command):
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stderr}"
    return result


def test_kernels_compile_to_ptx_for_sm90(tmp_path):
    ptx = tmp_path / "hashed_kernels.ptx"
    _run([NVCC, "-ptx", "-arch=sm_90", "-Werror", "all-warnings", "-o", ptx, SOURCE])
    text = ptx.read_text()
    for entry in ENTRIES:
        assert f".entry {entry}(" in text, f"kernel {entry} missing from the PTX"


@pytest.fixture(scope="module")
def host_hash(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cuda_host")
    harness = directory / "harness.cu"
    harness.write_text(HARNESS.format(source=SOURCE, sign_seed_xor=SIGN_SEED_XOR))
    library = directory / "libsk_hash.so"
    _run([NVCC, "-shared", "-Xcompiler", "-fPIC", "-o", library, harness])
    lib = ctypes.CDLL(str(library))
    u32_p = np.ctypeslib.ndpointer(np.uint32, flags="C_CONTIGUOUS")
    lib.host_hash_pairs.argtypes = [
        u32_p,
        u32_p,
        ctypes.c_longlong,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint32,
        ctypes.c_uint32,
        u32_p,
        np.ctypeslib.ndpointer(np.int8, flags="C_CONTIGUOUS"),
    ]

    def host_hash(seed, i, j, n_buckets, hashing, n_shards=1, shard_period=1):
        i = np.ascontiguousarray(i, dtype=np.uint32)
        j = np.ascontiguousarray(j, dtype=np.uint32)
        bucket = np.empty(i.size, dtype=np.uint32)
        sign = np.empty(i.size, dtype=np.int8)
        block = hashing == "block"
        lib.host_hash_pairs(
            i, j, i.size, seed, n_buckets, block, n_shards, shard_period, bucket, sign
        )
        return bucket.astype(np.int64), sign

    return host_hash


def test_cuda_hash_reproduces_the_documents_test_vectors(host_hash):
    assert len(ELEMENT_VECTORS) >= 12 and len(BLOCK_VECTORS) >= 6
    for seed, i, j, k, *_, bucket, sign in ELEMENT_VECTORS:
        assert host_hash(seed, [i], [j], k, "element") == ([bucket], [sign])
    for seed, i, j, k, *_, bucket, sign in BLOCK_VECTORS:
        assert host_hash(seed, [i], [j], k, "block") == ([bucket], [sign])
    for layout, seed, i, j, k, s, n_rows, block, *_, bucket, sign in SHARD_VECTORS:
        hashing = "block" if block else "element"
        period = shard_period(layout, n_rows, s)
        assert host_hash(seed, [i], [j], k, hashing, s, period) == ([bucket], [sign])


@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("n_buckets", [1, 7, 15, 16, 1000, 2**31 + 11, 2**32 - 1])
def test_cuda_hash_equals_numpy_spec_on_random_pairs(host_hash, hashing, n_buckets):
    rng = np.random.default_rng(n_buckets)
    i = rng.integers(0, 2**32, 5000, dtype=np.uint64)
    j = rng.integers(0, 2**32, 5000, dtype=np.uint64)
    i[:3], j[:3] = [0, 2**32 - 1, 2**31], [2**32 - 1, 0, 2**31 + 5]
    for seed in (0, 12345, 2**32 - 1):
        bucket, sign = host_hash(seed, i, j, n_buckets, hashing)
        expected_bucket, expected_sign = hash_pairs(seed, i, j, n_buckets, hashing)
        np.testing.assert_array_equal(bucket, expected_bucket)
        np.testing.assert_array_equal(sign, expected_sign)


@pytest.mark.parametrize("layout", ["cyclic", "contiguous"])
@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize(
    "n_rows, n_buckets, n_shards", [(23, 101, 5), (1000, 7, 7), (2**32 - 1, 2**32 - 1, 65_536)]
)
def test_cuda_sharded_hash_equals_numpy_spec_on_random_pairs(
    host_hash, hashing, n_rows, n_buckets, n_shards, layout
):
    rng = np.random.default_rng(n_rows)
    i = rng.integers(0, n_rows, 5000, dtype=np.uint64)
    j = rng.integers(0, 2**32, 5000, dtype=np.uint64)
    i[:2] = [0, n_rows - 1]
    period = shard_period(layout, n_rows, n_shards)
    bucket, sign = host_hash(12345, i, j, n_buckets, hashing, n_shards, period)
    expected_bucket, expected_sign = hash_pairs(
        12345, i, j, n_buckets, hashing, n_shards, n_rows, layout
    )
    np.testing.assert_array_equal(bucket, expected_bucket)
    np.testing.assert_array_equal(sign, expected_sign)
