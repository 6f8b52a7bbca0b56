"""What the GPU test modules run on: a CUDA device, or the CPU through the CuPy double.

With CuPy and a visible CUDA device, the tests run there, on real CuPy.
Without one (as in CI), they run on the CPU through ``tests/fake_cupy``: the
real ``CUDABackend``, unchanged, with its kernels compiled by g++ under
``tests/cuda_emulation/cuda_emulation.h``. With neither (no device, and no
g++ or not x86-64), the module is skipped with both reasons.
"""

import importlib
import importlib.util
import types

import pytest


def _cuda_device():
    """Real CuPy if it sees a CUDA device, else None; and why not."""
    if importlib.util.find_spec("cupy") is None:
        return None, "CuPy is not installed (pip install 'sk_hashednets[gpu]')"
    try:
        import cupy
    except ImportError as error:
        return None, f"CuPy fails to import ({error})"
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as error:
        return None, f"CuPy sees no CUDA device ({error})"
    return (cupy, "") if n_devices else (None, "CuPy sees no CUDA device")


REAL_CUPY, NO_DEVICE = _cuda_device()


def where_gpu_tests_run():
    """One line for the test report's header: what the GPU test modules run on."""
    if REAL_CUPY is not None:
        return f"GPU tests: on the CUDA device, CuPy {REAL_CUPY.__version__}"
    import fake_cupy

    if fake_cupy.UNAVAILABLE:
        return f"GPU tests: skipped ({NO_DEVICE}, and {fake_cupy.UNAVAILABLE})"
    return f"GPU tests: on the CPU, through the CuPy double and the CUDA emulation ({NO_DEVICE})"


def require_gpu_or_emulation():
    """At a GPU test module's top: a module-level skip, with the reasons, if it cannot run."""
    if REAL_CUPY is None:
        import fake_cupy

        if fake_cupy.UNAVAILABLE:
            pytest.skip(f"{NO_DEVICE}, and {fake_cupy.UNAVAILABLE}", allow_module_level=True)


@pytest.fixture(scope="module")
def cuda():
    """The device the module's tests run on.

    Yields
    ------
    cuda : SimpleNamespace
        ``cp`` (CuPy, or its double), ``backend`` (a ``CUDABackend``),
        ``emulated`` (True on the CPU) and ``launches`` (the double's launch
        records, else None).
    """
    if REAL_CUPY is not None:
        yield _namespace(REAL_CUPY, emulated=False, launches=None)
        return
    import fake_cupy

    with fake_cupy.installed() as cp:
        yield _namespace(cp, emulated=True, launches=fake_cupy.LAUNCHES)


def _namespace(cp, emulated, launches):
    cuda_module = importlib.import_module("sk_hashednets._kernels._cuda")
    return types.SimpleNamespace(
        cp=cp, backend=cuda_module.CUDABackend(), emulated=emulated, launches=launches
    )
