"""What the GPU test modules need first: CuPy and a visible CUDA device, or a skip saying which."""

import pytest


def require_gpu():
    """CuPy, or a module-level skip with the reason (as in CI, which has no GPU).

    Returns
    -------
    cupy : module
    """
    cp = pytest.importorskip(
        "cupy", reason="CuPy is not installed (pip install 'sk_hashednets[gpu]')"
    )
    try:
        n_devices = cp.cuda.runtime.getDeviceCount()
    except cp.cuda.runtime.CUDARuntimeError:
        n_devices = 0
    if n_devices == 0:
        pytest.skip("no CUDA device is visible", allow_module_level=True)
    return cp
