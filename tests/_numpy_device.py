"""A pretend GPU for the device code path, on the CPU: NumPy plays CuPy.

``DeviceArray`` is a NumPy array that behaves like a CuPy one where it matters
for the estimators' device path: it refuses to meet a host ``numpy.ndarray``
in an operation, an index or an assignment (CuPy raises ``TypeError`` there
too), and reductions give 0-d arrays, not scalars. ``NumPyDeviceBackend``
implements the backend protocol (``sk_hashednets._kernels._backend.Backend``)
as ``CUDABackend`` does, less its optional ``hash_pairs``: it runs the CPU's
Numba kernels on the arrays' memory, updates the parameters by the formulas as
on a GPU, and counts what crosses between "host" and "device". With
it, a CPU test drives every line of the estimators' device path: a host array
that reaches the device unconverted, or a device array left in the fitted
state, shows up as an error or a wrong type.
"""

import numpy as np

from sk_hashednets._kernels._backend import Backend, finished_after
from sk_hashednets._kernels._cpu import CPUBackend
from sk_hashednets._kernels._updates import adam_formula, sgd_formula


class DeviceOutOfMemoryError(MemoryError):
    """Plays ``cupy.cuda.memory.OutOfMemoryError`` (also a MemoryError subclass)."""


def _is_host_array(x):
    return isinstance(x, np.ndarray) and not isinstance(x, DeviceArray)


def _refuse_host(values, where):
    for x in values:
        if isinstance(x, (list, tuple)):
            _refuse_host(x, where)
        elif _is_host_array(x):
            raise TypeError(f"a host numpy.ndarray of shape {x.shape} met device arrays in {where}")


def _plain(x):
    if isinstance(x, DeviceArray):
        return x.view(np.ndarray)
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    return x


def _on_device(result, cls):
    if isinstance(result, tuple):
        return tuple(_on_device(r, cls) for r in result)
    if isinstance(result, (np.ndarray, np.generic)):
        return np.asarray(result).view(cls)  # CuPy gives 0-d arrays, not scalars
    return result


class DeviceArray(np.ndarray):
    """A NumPy array that plays a CuPy array (see the module docstring)."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _refuse_host(inputs + (out or ()), f"np.{ufunc.__name__}.{method}")
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*_plain(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _on_device(result, type(self))

    def __array_function__(self, func, types, args, kwargs):
        _refuse_host(list(args) + list(kwargs.values()), f"np.{func.__name__}")
        result = func(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()})
        return _on_device(result, type(self))

    def __getitem__(self, key):
        _refuse_host(key if isinstance(key, tuple) else (key,), "an index")
        return super().__getitem__(_plain(key))

    def __setitem__(self, key, value):
        _refuse_host((key if isinstance(key, tuple) else (key,)) + (value,), "an assignment")
        super().__setitem__(_plain(key), _plain(value))


class NumPyDeviceBackend(Backend):
    """The backend protocol on ``DeviceArray``s, as ``CUDABackend`` implements it.

    Parameters
    ----------
    free_memory : int, default=2**40
        What :meth:`free_memory` reports: small values force chunked data.
    fail_after : int or None, default=None
        Raise ``DeviceOutOfMemoryError`` from the ``fail_after``-th tile
        materialisation on (an out-of-memory error in the middle of a fit).
    """

    name = "cuda"
    xp = np
    is_host = False
    out_of_memory_errors = (DeviceOutOfMemoryError,)

    def __init__(self, free_memory=2**40, fail_after=None):
        self._free_memory = free_memory
        self.fail_after = fail_after
        self.materialized = 0
        self.to_device_shapes = []
        self.to_host_shapes = []

    def empty(self, shape, dtype):
        return np.empty(shape, dtype=dtype).view(DeviceArray)

    def to_device(self, a):
        if isinstance(a, DeviceArray):
            return a
        a = np.asarray(a)
        self.to_device_shapes.append(a.shape)
        return np.array(a, order="C").view(DeviceArray)  # a copy, as a transfer makes

    def to_host(self, a):
        if not isinstance(a, DeviceArray):
            return a
        self.to_host_shapes.append(a.shape)
        host = np.array(a.view(np.ndarray))
        return host[()] if host.ndim == 0 else host

    def free_memory(self):
        return self._free_memory

    def scatter_block_rows(self, n_in, n_out, n_buckets):
        # The CPU's, so that the CPU kernels called below see tiles aligned as
        # on the CPU and sum in the same order.
        return CPUBackend().scatter_block_rows(n_in, n_out, n_buckets)

    def scatter_workspace(self, rows_per_tile, block_rows, n_buckets, dtype):
        return None

    def materialize_tile(self, layer_hash, bucket_weights, out, *, row_start=0, col_start=0):
        _refuse_host((bucket_weights, out), "materialize_tile")
        self.materialized += 1
        if self.fail_after is not None and self.materialized >= self.fail_after:
            raise DeviceOutOfMemoryError("Out of memory allocating 1,048,576 bytes")
        CPUBackend().materialize_tile(
            layer_hash,
            _plain(bucket_weights),
            _plain(out),
            row_start=row_start,
            col_start=col_start,
        )

    def scatter_bucket_grad(
        self, layer_hash, grad_tile, bucket_grad, scratch, *, row_start=0, finish=None
    ):
        assert scratch is None, "the device backend asks for no scratch tile"
        _refuse_host((grad_tile, bucket_grad), "scatter_bucket_grad")
        cpu = CPUBackend()
        n_rows, n_out = grad_tile.shape
        # The layer's block rows (a last tile's fewer rows make one block either way).
        block_rows = cpu.scatter_block_rows(n_rows, n_out, bucket_grad.shape[0])
        with finished_after(finish, bucket_grad):  # as the CUDA backend: not fused
            cpu.scatter_bucket_grad(
                layer_hash,
                _plain(grad_tile),
                _plain(bucket_grad),
                cpu.scatter_workspace(n_rows, block_rows, bucket_grad.shape[0], bucket_grad.dtype),
                row_start=row_start,
            )

    def sgd_update(self, param, velocity, grad, learning_rate, momentum, nesterov):
        _refuse_host((param, velocity, grad), "sgd_update")
        sgd_formula(param, velocity, grad, learning_rate, momentum, nesterov)

    def adam_update(self, param, m, v, grad, learning_rate, beta_1, beta_2, epsilon):
        _refuse_host((param, m, v, grad), "adam_update")
        adam_formula(param, m, v, grad, learning_rate, beta_1, beta_2, epsilon)
