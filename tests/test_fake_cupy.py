"""The CuPy test double and the CUDA emulation under it (``tests/fake_cupy``).

The double must offer only what CuPy has, refuse the launches that would
corrupt on a GPU (a scalar of the wrong width, an array of the wrong dtype),
emulate what the kernels rely on (barriers, dynamic shared memory, atomics,
grid-stride loops), and leave nothing behind when it is uninstalled.
"""

import importlib.util
import inspect
import sys

import fake_cupy
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    fake_cupy.UNAVAILABLE is not None, reason=str(fake_cupy.UNAVAILABLE)
)

#: CuPy's API where the double offers it, from CuPy's reference
#: (docs.cupy.dev/en/stable/reference: routines, cupy.RawModule, cupy.RawKernel,
#: cupy.cuda.Device, cupy.cuda.MemoryPool, cupy.cuda.runtime, cupyx.scipy.special).
CUPY_DOCS = {
    "cupy": {
        *"__version__ ndarray RawModule cuda asarray asnumpy ascontiguousarray empty zeros".split(),
        *"zeros_like finfo get_default_memory_pool".split(),
        *"float32 float64 int8 int32 int64 uint32 uint64".split(),
        *"clip concatenate dot exp log matmul max maximum sum tanh where".split(),
    },
    "cupy.cuda": {"Device", "MemoryPool", "set_allocator", "runtime", "memory"},
    "cupy.cuda.runtime": {"getDeviceCount", "memGetInfo", "CUDARuntimeError"},
    "cupy.cuda.memory": {"OutOfMemoryError"},
    "cupyx": {"scipy"},
    "cupyx.scipy": {"special"},
    "cupyx.scipy.special": {"expit"},
}
#: Parameters of CuPy's callables that the double also takes (same source).
CUPY_PARAMETERS = {
    ("cupy", "RawModule"): set(
        "code path options backend translate_cucomplex enable_cooperative_groups "
        "name_expressions jitify".split()
    ),
    ("cupy.cuda", "MemoryPool.set_limit"): {"size", "fraction"},
    ("cupy.cuda", "set_allocator"): {"allocator"},
    ("cupy.cuda", "Device"): {"device"},
}
#: RawKernel.__call__(grid, block, args, *, shared_mem=0, ...).
KERNEL_CALL = {"grid", "block", "args", "shared_mem", "stream", "enable_cooperative_groups"}

TEST_KERNELS = r"""
typedef unsigned int u32;
extern "C" __global__ void rotate(const float *x, u32 n, float *out) {
    extern __shared__ float tile[];
    u32 t = threadIdx.x;
    if (t < n) tile[t] = x[blockIdx.x * n + t];
    __syncthreads();
    if (t < n) out[blockIdx.x * n + t] = tile[(t + 1) % n];
}
extern "C" __global__ void rotate_without_barrier(const float *x, u32 n, float *out) {
    extern __shared__ float tile[];
    u32 t = threadIdx.x;
    if (t < n) tile[t] = x[blockIdx.x * n + t];
    if (t < n) out[blockIdx.x * n + t] = tile[(t + 1) % n];
}
extern "C" __global__ void half_barrier(float *out) {
    if (threadIdx.x % 2) __syncthreads();
    out[threadIdx.x] = 1.0f;
}
extern "C" __global__ void overflow(u32 n) {
    extern __shared__ unsigned char bytes[];
    if (threadIdx.x == 0) bytes[n] = 1;
}
extern "C" __global__ void positions(long long *out) {
    long long block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    long long thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    out[block * blockDim.x * blockDim.y * blockDim.z + thread] = 1000 * block + thread;
}
extern "C" __global__ void count(double *total, int *hits, u32 *lowest) {
    atomicAdd(total, 0.5);
    atomicAdd(hits, 1);
    atomicMin(lowest, 1000u - blockIdx.x * blockDim.x - threadIdx.x);
}
"""


@pytest.fixture
def cp():
    with fake_cupy.installed() as cp:
        yield cp


@pytest.fixture
def module(cp):
    return cp.RawModule(code=TEST_KERNELS)


def _offered(modules, name):
    return {a for a in vars(modules[name]) if not a.startswith("__") or a == "__version__"}


def test_the_double_offers_only_what_cupys_documentation_lists():
    modules = fake_cupy.modules()
    for name, documented in CUPY_DOCS.items():
        assert _offered(modules, name) <= documented, name
    for (name, path), documented in CUPY_PARAMETERS.items():
        obj = modules[name]
        for part in path.split("."):
            obj = getattr(obj, part)
        assert set(inspect.signature(obj).parameters) - {"self"} <= documented, path
    call = inspect.signature(fake_cupy._kernels.EmulatedKernel.__call__).parameters
    assert set(call) - {"self"} <= KERNEL_CALL


@pytest.mark.skipif(importlib.util.find_spec("cupy") is None, reason="CuPy is not installed")
def test_the_double_offers_only_what_the_installed_cupy_has():
    import cupy

    assert "fake" not in cupy.__version__
    modules = fake_cupy.modules()
    real = {"cupy": cupy}
    for name in CUPY_DOCS:
        if name not in real:
            parent, _, child = name.rpartition(".")
            real[name] = getattr(real[parent], child) if parent else importlib.import_module(name)
        missing = {a for a in _offered(modules, name) if not hasattr(real[name], a)}
        assert not missing, f"{name} lacks {missing}"


def test_launch_arguments_are_checked_against_the_c_signature(cp):
    from sk_hashednets._kernels import _cuda

    kernel = _cuda._kernel("materialize_tile_f32")
    w, out = cp.zeros(16, np.float32), cp.empty((2, 3), np.float32)
    args = [
        w,
        np.uint32(16),
        np.uint32(1),
        np.uint32(2),
        np.int32(1),
        np.int32(0),
        np.uint32(1),
        np.uint32(1),
        np.uint64(0),
        np.uint64(0),
        np.int64(2),
        np.int64(3),
        out,
    ]
    kernel((1,), (32,), tuple(args))
    wrong = [
        (1, np.int64(16), r"'n_buckets' \(u32 n_buckets\).*a NumPy scalar of uint32, got int64"),
        (1, 16, "'n_buckets'.*got int"),
        (8, np.int64(0), "'row_start'.*of uint64, got int64"),
        (0, cp.zeros(16, np.float64), "'w' \\(const float \\*w\\).*array of float32, got float64"),
        (0, np.zeros(16, np.float32), "'w'.*expected a device array, got ndarray"),
        (6, np.int64(1), "'n_shards' \\(u32 n_shards\\).*of uint32, got int64"),
        (12, cp.empty((2, 6), np.float32)[:, ::2], "'out'.*strided view"),
    ]
    for position, value, message in wrong:
        bad = list(args)
        bad[position] = value
        with pytest.raises(TypeError, match=message):
            kernel((1,), (32,), tuple(bad))
    with pytest.raises(TypeError, match="takes 13 arguments"):
        kernel((1,), (32,), tuple(args[:-1]))
    with pytest.raises(TypeError, match="grid must be a tuple"):
        kernel(1, (32,), tuple(args))


def test_barriers_shared_memory_and_indices_are_emulated(cp, module):
    x = cp.asarray(np.arange(2 * 40, dtype=np.float32))
    out = cp.zeros(80, np.float32)
    module.get_function("rotate")((2,), (64,), (x, np.uint32(40), out), shared_mem=40 * 4)
    expected = np.roll(np.arange(80, dtype=np.float32).reshape(2, 40), -1, axis=1).ravel()
    np.testing.assert_array_equal(out.get(), expected)
    # Without the barrier, a thread reads a neighbour's slot before it is written:
    # shared memory starts as NaN, as if left by someone else.
    module.get_function("rotate_without_barrier")(
        (2,), (64,), (x, np.uint32(40), out), shared_mem=40 * 4
    )
    assert np.isnan(out.get()).any()

    positions = cp.zeros(2 * 3 * 2 * 4 * 2 * 2, np.int64)
    module.get_function("positions")((2, 3, 2), (4, 2, 2), (positions,))
    blocks, threads = np.divmod(positions.get(), 1000)
    assert sorted(blocks * 16 + threads) == list(range(positions.size))

    total, hits = cp.zeros(1, np.float64), cp.zeros(1, np.int32)
    lowest = cp.asarray(np.array([2000], dtype=np.uint32))
    module.get_function("count")((3,), (100,), (total, hits, lowest))
    assert (total.get()[0], hits.get()[0], lowest.get()[0]) == (150.0, 300, 701)


def test_what_would_fail_on_a_gpu_fails_in_the_emulation(cp, module):
    with pytest.raises(fake_cupy.KernelLaunchError, match="reached by some threads"):
        module.get_function("half_barrier")((1,), (4,), (cp.zeros(4, np.float32),))
    with pytest.raises(fake_cupy.KernelLaunchError, match="byte 100, past the 100 bytes"):
        module.get_function("overflow")((1,), (1,), (np.uint32(100),), shared_mem=100)
    module.get_function("overflow")((1,), (1,), (np.uint32(99),), shared_mem=100)
    with pytest.raises(fake_cupy.KernelLaunchError, match="above 48 KiB"):
        module.get_function("overflow")((1,), (1,), (np.uint32(0),), shared_mem=48 * 1024 + 1)
    with pytest.raises(fake_cupy.KernelLaunchError, match="1 to 1024 threads"):
        module.get_function("overflow")((1,), (1025,), (np.uint32(0),))
    with pytest.raises(KeyError, match="no_such_kernel"):
        module.get_function("no_such_kernel")


def test_arrays_refuse_host_arrays_and_the_pool_limits_memory(cp):
    a = cp.zeros(4, np.float32)
    assert type(a).__module__ == "cupy" and isinstance(a + 1, cp.ndarray)
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        a + np.ones(4, np.float32)
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        cp.exp(np.ones(4))
    pool = cp.cuda.MemoryPool()
    pool.set_limit(size=1000)
    cp.cuda.set_allocator(pool.malloc)
    b = cp.empty(200, np.float32)
    assert pool.used_bytes() == 800
    with pytest.raises(cp.cuda.memory.OutOfMemoryError, match="allocating 800 bytes"):
        cp.asarray(np.ones(200, np.float32))
    del b
    assert pool.used_bytes() == 0
    cp.asarray(np.ones(200, np.float32))
    assert issubclass(cp.cuda.memory.OutOfMemoryError, MemoryError)


def test_uninstalling_leaves_no_trace():
    from sk_hashednets._kernels import resolve_device

    before = {name: sys.modules.get(name) for name in ("cupy", "cupyx")}
    device_before = resolve_device("auto")
    with fake_cupy.installed() as cp:
        from sk_hashednets._kernels import _cuda

        assert _cuda.cp is cp and resolve_device("auto") == "cuda"
    assert {name: sys.modules.get(name) for name in ("cupy", "cupyx")} == before
    assert resolve_device("auto") == device_before
    loaded = sys.modules.get("sk_hashednets._kernels._cuda")
    assert loaded is None or loaded.cp is not cp
