"""A test double of the part of CuPy that sk_hashednets uses, on the CPU.

:func:`installed` puts fresh ``cupy`` and ``cupyx`` modules in ``sys.modules``
(and forgets ``sk_hashednets._kernels._cuda``, which binds ``cupy`` when it
is imported) for the time of a ``with`` block, then puts back what was there.
Under it the real ``CUDABackend`` runs unchanged: its kernels are the CUDA
source compiled by g++ with ``tests/cuda_emulation/cuda_emulation.h``
(``_kernels.py``), its arrays NumPy arrays that refuse host arrays
(``_arrays.py``). The modules offer CuPy's names only (``OFFERED``; checked
against CuPy's API in ``tests/test_fake_cupy.py``).
"""

import contextlib
import sys
import types

import numpy as np

from . import _arrays, _kernels
from ._kernels import LAUNCHES, UNAVAILABLE, KernelLaunchError

__all__ = ["LAUNCHES", "UNAVAILABLE", "OFFERED", "KernelLaunchError", "installed", "modules"]


class RawModule:
    """Plays ``cupy.RawModule``: compiles ``code`` for the CPU (see ``_kernels``)."""

    def __init__(self, code=None, options=()):
        if not isinstance(code, str):
            raise TypeError("the fake RawModule compiles source code given as code=str")
        if not isinstance(options, tuple) or not all(
            isinstance(o, str) and o.startswith("-") for o in options
        ):
            raise TypeError(f"options must be a tuple of compiler flags, got {options!r}")
        self._library, self._kernels = _kernels.compile_module(code, options)

    def get_function(self, name):
        if name not in self._kernels:
            raise KeyError(f'no extern "C" __global__ kernel {name!r} in the module')
        return _kernels.EmulatedKernel(self._library, name, self._kernels[name], _arrays.ndarray)


#: Module name -> the names it offers (each one of CuPy's).
OFFERED = {
    "cupy": [
        *"__version__ ndarray RawModule cuda asarray asnumpy ascontiguousarray empty zeros".split(),
        *"zeros_like finfo get_default_memory_pool".split(),
        *"float32 float64 int8 int32 int64 uint32 uint64".split(),
        *_arrays.ELEMENTWISE,
    ],
    "cupy.cuda": "Device MemoryPool set_allocator runtime memory".split(),
    "cupy.cuda.runtime": "getDeviceCount memGetInfo CUDARuntimeError".split(),
    "cupy.cuda.memory": ["OutOfMemoryError"],
    "cupyx": ["scipy"],
    "cupyx.scipy": ["special"],
    "cupyx.scipy.special": ["expit"],
}


def modules():
    """Fresh fake ``cupy`` and ``cupyx`` modules (and submodules), by name."""
    _arrays.STATE = _arrays._State()
    namespace = vars(np) | vars(_arrays) | _arrays.ELEMENTWISE
    namespace |= {"__version__": "14.0.0+fake", "RawModule": RawModule}
    made = {name: types.ModuleType(name) for name in OFFERED}
    for name, names in OFFERED.items():
        for attribute in names:
            child = made.get(f"{name}.{attribute}")
            setattr(made[name], attribute, child if child is not None else namespace[attribute])
    return made


@contextlib.contextmanager
def installed():
    """The fake CuPy in ``sys.modules`` inside the block, what was there before after it."""
    fake = modules()
    names = [*fake, "sk_hashednets._kernels._cuda"]
    saved = {name: sys.modules.get(name) for name in names}
    package = sys.modules.get("sk_hashednets._kernels")
    saved_cuda = getattr(package, "_cuda", None)
    sys.modules.pop("sk_hashednets._kernels._cuda", None)
    sys.modules.update(fake)
    try:
        yield fake["cupy"]
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        package = sys.modules.get("sk_hashednets._kernels")
        if package is not None:
            if saved_cuda is None:
                vars(package).pop("_cuda", None)
            else:
                package._cuda = saved_cuda
        LAUNCHES.clear()
