"""Arrays, memory and the device of the fake CuPy.

``ndarray`` is the NumPy stand-in's ``DeviceArray`` (it refuses to meet a host
array) whose type says it comes from ``cupy``, as the package checks. Memory
that ``empty``, ``zeros``, ``asarray`` and ``ascontiguousarray`` allocate goes
through the current allocator (a ``MemoryPool``'s ``malloc``), so that a pool's
limit raises ``OutOfMemoryError`` as CuPy's does; results of operations are not
counted.
"""

import functools
import weakref

import numpy as np
import scipy.special
from _numpy_device import DeviceArray, _on_device, _refuse_host

#: What the fake device reports: few multiprocessors, so that grids stay small.
MULTIPROCESSOR_COUNT = 1
DEVICE_MEMORY = 16 * 2**30
DEVICE_COUNT = 1


class ndarray(DeviceArray):  # noqa: N801 (CuPy's name)
    """A device array: NumPy memory that refuses host arrays (see ``_numpy_device``)."""

    __module__ = "cupy"  # the package tells CuPy input by its type's module

    def get(self):
        """A host (NumPy) copy, as ``cupy.ndarray.get``."""
        return np.array(self.view(np.ndarray))


class CUDARuntimeError(RuntimeError):
    """Plays ``cupy.cuda.runtime.CUDARuntimeError``."""


class OutOfMemoryError(MemoryError):
    """Plays ``cupy.cuda.memory.OutOfMemoryError``."""

    def __init__(self, size, total, limit=0):
        super().__init__(
            f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes, "
            f"limit set to: {limit:,} bytes)."
        )


class _Memory:
    """A block of device memory, given back to its pool when the array dies."""

    def __init__(self, pool, size):
        self.size = size
        weakref.finalize(self, pool._release, size)


class MemoryPool:
    """Plays ``cupy.cuda.MemoryPool``: counts bytes, honours a limit, caches nothing."""

    def __init__(self):
        self._used = 0
        self._limit = 0

    def malloc(self, size):
        """Memory of ``size`` bytes, or ``OutOfMemoryError`` beyond the limit or the device."""
        limit = self._limit or DEVICE_MEMORY
        if self._used + size > limit:
            raise OutOfMemoryError(size, self._used, self._limit)
        self._used += size
        return _Memory(self, size)

    def _release(self, size):
        self._used -= size

    def set_limit(self, size=None, fraction=None):
        """Limit the bytes the pool may hold (0 or None: no limit)."""
        if fraction is not None:
            size = int(fraction * DEVICE_MEMORY)
        self._limit = size or 0

    def get_limit(self):
        return self._limit

    def used_bytes(self):
        return self._used

    def free_bytes(self):
        return 0

    def total_bytes(self):
        return self._used

    def free_all_blocks(self):
        """Nothing to free: the fake pool keeps no free blocks."""


class _State:
    """The current allocator and the default pool, fresh at each install."""

    def __init__(self):
        self.pool = MemoryPool()
        self.allocator = self.pool.malloc


STATE = _State()


def get_default_memory_pool():
    return STATE.pool


def set_allocator(allocator=None):
    STATE.allocator = allocator if allocator is not None else STATE.pool.malloc


def _allocate(shape, dtype):
    host = np.empty(shape, dtype=dtype)
    a = host.view(ndarray)
    a._memory = STATE.allocator(host.nbytes)  # views keep it alive through .base
    return a


def empty(shape, dtype=float):
    return _allocate(shape, dtype)


def zeros(shape, dtype=float):
    a = _allocate(shape, dtype)
    a.view(np.ndarray)[...] = 0
    return a


def zeros_like(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"cupy.zeros_like takes a cupy.ndarray, got {type(a).__name__}")
    return zeros(a.shape, a.dtype if dtype is None else dtype)


def asarray(a, dtype=None):
    """``a`` on the device: copied from the host, converted, or ``a`` itself."""
    if isinstance(a, ndarray) and (dtype is None or a.dtype == np.dtype(dtype)):
        return a
    host = np.asarray(a.view(np.ndarray) if isinstance(a, ndarray) else a, dtype=dtype)
    out = _allocate(host.shape, host.dtype)
    out.view(np.ndarray)[...] = host
    return out


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"cupy.ascontiguousarray takes a cupy.ndarray, got {type(a).__name__}")
    if a.flags.c_contiguous and (dtype is None or a.dtype == np.dtype(dtype)):
        return a
    out = _allocate(a.shape, a.dtype if dtype is None else dtype)
    out.view(np.ndarray)[...] = a.view(np.ndarray)
    return out


def asnumpy(a):
    """A host copy of a device array; a host array as it is."""
    return a.get() if isinstance(a, ndarray) else np.asarray(a)


def device_function(func, name):
    """``func`` on device arrays only: a host array among its arguments is a TypeError."""

    @functools.wraps(func)
    def on_device(*args, **kwargs):
        _refuse_host(list(args) + list(kwargs.values()), f"cupy.{name}")
        result = func(*args, **kwargs)
        return result if isinstance(result, ndarray) else _on_device(result, ndarray)

    return on_device


ELEMENTWISE = {
    name: device_function(getattr(np, name), name)
    for name in (
        "clip",
        "concatenate",
        "dot",
        "exp",
        "log",
        "matmul",
        "max",
        "maximum",
        "sum",
        "tanh",
        "where",
    )
}
expit = device_function(scipy.special.expit, "expit")


def getDeviceCount():  # noqa: N802 (CUDA's name)
    return DEVICE_COUNT


def memGetInfo():  # noqa: N802 (CUDA's name)
    """(free, total) bytes of the fake device."""
    return DEVICE_MEMORY - STATE.pool.used_bytes(), DEVICE_MEMORY


class Device:
    """Plays ``cupy.cuda.Device``: one device, with a few multiprocessors."""

    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    def _check(self):
        if not 0 <= self.id < DEVICE_COUNT:
            raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")

    @property
    def attributes(self):
        self._check()
        return {
            "MultiProcessorCount": MULTIPROCESSOR_COUNT,
            "MaxThreadsPerBlock": 1024,
            "MaxSharedMemoryPerBlock": 48 * 1024,
        }

    @property
    def compute_capability(self):
        self._check()
        return "90"

    def use(self):
        self._check()

    def synchronize(self):
        self._check()

    def __enter__(self):
        self.use()
        return self

    def __exit__(self, *exc_info):
        return None
