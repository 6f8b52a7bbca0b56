"""Numba's threading layer: TBB where the ``tbb`` wheel is installed, else a quiet OpenMP.

Numba picks its threading layer when a parallel kernel first runs: TBB if it
can load ``libtbb``, else OpenMP. The ``tbb`` wheel (a dependency on x86-64)
puts ``libtbb.so.12`` in ``<prefix>/lib``, which the dynamic loader does not
search inside a virtual environment, so Numba silently falls back to OpenMP
there. GNU OpenMP's idle threads spin, and on a machine with few cores they
fight OpenBLAS's spinning threads: a small hashed fit then takes 20 times as
long (``docs/memory.md`` has the figures).

:func:`configure` runs once, when the package is imported, before any kernel:

1. unless ``NUMBA_THREADING_LAYER`` names another layer ("omp" or
   "workqueue"), it loads the wheel's ``libtbb`` by its path, globally, so
   that Numba's TBB layer finds it;
2. if TBB could not be loaded, it sets ``OMP_WAIT_POLICY=PASSIVE`` (unless
   set already): OpenMP's idle threads then sleep instead of spinning.

Nothing is changed that the user set, and a layer Numba has already chosen
stays as it is.
"""

import ctypes
import os
import sys
from importlib import metadata

#: File name of the TBB runtime that Numba's TBB layer links to, by platform.
_TBB_LIBRARY = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib", "win32": "tbb12.dll"}


#: Values of ``NUMBA_THREADING_LAYER`` that rule TBB out.
_NOT_TBB = ("omp", "workqueue")


def _tbb_library_path():
    """Path of the ``tbb`` wheel's runtime library, or None."""
    name = _TBB_LIBRARY.get(sys.platform)
    try:
        files = metadata.distribution("tbb").files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if name is not None and file.name == name:
            path = file.locate()
            if os.path.exists(path):
                return os.fspath(path)
    return None


def _load_tbb():
    """Load the ``tbb`` wheel's runtime globally; whether it loaded."""
    path = _tbb_library_path()
    if path is None:
        return False
    try:
        ctypes.CDLL(path, mode=getattr(ctypes, "RTLD_GLOBAL", 0))
    except OSError:
        return False
    return True


def configure():
    """Prefer the TBB threading layer; else keep OpenMP's idle threads from spinning.

    Returns
    -------
    tbb_loaded : bool
        Whether this call made TBB's runtime available to Numba.
    """
    chosen = os.environ.get("NUMBA_THREADING_LAYER", "default").strip().lower()
    tbb_loaded = chosen not in _NOT_TBB and _load_tbb()
    if not tbb_loaded:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return tbb_loaded
