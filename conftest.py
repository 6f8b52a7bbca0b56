"""pytest configuration shared by the test suite and the doctests of the package."""

import importlib.util

# The CUDA backend imports CuPy at module level; without CuPy its doctest
# collection would fail instead of the GPU tests skipping with their reason.
collect_ignore = []
if importlib.util.find_spec("cupy") is None:
    collect_ignore.append("sk_hashednets/_kernels/_cuda.py")
