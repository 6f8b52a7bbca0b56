"""Hash specification, reference implementation and compute backends.

The estimators never import Numba or CuPy: they ask :func:`resolve_device`
which device to use and :func:`get_backend` for its backend object (a
:class:`~sk_hashednets._kernels._backend.Backend`), and call its methods with
each layer's :class:`~sk_hashednets._kernels._backend.LayerHash`. This
package is the one place that looks for CuPy: here, and in the CUDA backend
it imports when a CUDA device is asked for; :func:`is_device_array`,
:func:`array_module` and :func:`expit_function` answer for the rest of the
package.
"""

import sys

import numpy as np
from scipy.special import expit

from . import _threading

# Before any Numba kernel runs (see _threading's docstring).
_threading.configure()

from ._backend import Backend, GradientFinish, LayerHash, finished_after  # noqa: E402
from ._hashing import BLOCK_SIZE, HASH_SPEC_VERSION, HASHINGS, hash_pairs, sign_seed  # noqa: E402

__all__ = [
    "BLOCK_SIZE",
    "HASHINGS",
    "HASH_SPEC_VERSION",
    "Backend",
    "GradientFinish",
    "LayerHash",
    "array_module",
    "expit_function",
    "finished_after",
    "get_backend",
    "hash_pairs",
    "is_device_array",
    "resolve_device",
    "sign_seed",
]

_INSTALL = 'pip install "sk_hashednets[gpu]"'


def _import_cupy():
    """CuPy, or an ImportError that says how to install it."""
    try:
        import cupy
    except ImportError as error:
        raise ImportError(
            f"device='cuda' needs CuPy, which is not installed or failed to import "
            f"({error}). Install it with {_INSTALL} (CuPy for CUDA 12, with the CUDA "
            "libraries it needs), or use device='cpu' or device='auto'."
        ) from error
    return cupy


def _count_cuda_devices(cupy):
    """Number of CUDA devices CuPy sees, and why none when it sees none."""
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as error:
        # No driver, a driver older than CuPy's CUDA, or no device at all.
        return 0, str(error)
    return count, "the CUDA runtime reports 0 devices"


def resolve_device(device):
    """Name of the device that ``device`` designates on this machine.

    Parameters
    ----------
    device : {"cpu", "cuda", "auto"}

    Returns
    -------
    device : {"cpu", "cuda"}
        "auto" resolves to "cuda" when CuPy imports and sees a CUDA device,
        else to "cpu".

    Raises
    ------
    ImportError
        If ``device="cuda"`` and CuPy is not installed (or fails to import).
    RuntimeError
        If ``device="cuda"`` and CuPy sees no CUDA device.
    """
    if device == "cpu":
        return "cpu"
    if device == "auto":
        try:
            cupy = _import_cupy()
        except ImportError:
            return "cpu"
        return "cuda" if _count_cuda_devices(cupy)[0] > 0 else "cpu"
    if device == "cuda":
        cupy = _import_cupy()
        count, reason = _count_cuda_devices(cupy)
        if count == 0:
            raise RuntimeError(
                f"device='cuda' found CuPy {cupy.__version__} but no CUDA device it can "
                f"use ({reason}). Check the NVIDIA driver (nvidia-smi) and "
                f"CUDA_VISIBLE_DEVICES; if CuPy does not match the driver's CUDA version, "
                f"reinstall it with {_INSTALL}. Or use device='cpu' or device='auto'."
            )
        return "cuda"
    raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}.")


def get_backend(device):
    """Backend object for a resolved device name.

    Parameters
    ----------
    device : {"cpu", "cuda"}
        As returned by :func:`resolve_device`.

    Returns
    -------
    backend : Backend
        A ``CPUBackend`` or a ``CUDABackend``.
    """
    if device == "cpu":
        from ._cpu import CPUBackend

        return CPUBackend()
    if device == "cuda":
        from ._cuda import CUDABackend

        return CUDABackend()
    raise ValueError(f"No backend for device {device!r}.")


def is_device_array(x):
    """Whether ``x`` is a CuPy array or sparse matrix.

    Told by the package its type comes from, so that no CuPy is imported to
    answer: a CuPy array cannot exist unless CuPy is.

    Parameters
    ----------
    x : object

    Returns
    -------
    is_device : bool
    """
    return type(x).__module__.partition(".")[0] in ("cupy", "cupyx")


def array_module(x):
    """The array module of ``x``: CuPy for a CuPy array, else NumPy.

    For code that is given arrays but no backend; the estimators pass their
    backend's ``xp`` instead.

    Parameters
    ----------
    x : array

    Returns
    -------
    xp : module
    """
    return sys.modules["cupy"] if is_device_array(x) else np


def expit_function(xp):
    """The logistic sigmoid ufunc of an array module.

    ``scipy.special.expit`` is a NumPy ufunc: it does not take CuPy arrays,
    whose module has its own (``cupyx.scipy.special.expit``).

    Parameters
    ----------
    xp : module
        NumPy, or CuPy.

    Returns
    -------
    expit : ufunc
    """
    if xp is np:
        return expit
    from cupyx.scipy.special import expit as cupy_expit

    return cupy_expit
