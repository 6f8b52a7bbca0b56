"""``RawModule`` of the fake CuPy: CUDA C++ compiled by g++ with ``cuda_emulation.h``.

The source is compiled as it is given, with the emulation header force-included
and, appended, one launcher per ``extern "C" __global__`` kernel; the shared
library is cached by the hash of all of it. Each kernel's C signature is parsed
from the preprocessed source, and every launch argument is checked against it
(kind and width of each scalar, dtype of each array) before the launch, which
CuPy does not do: it passes the bytes it is given.
"""

import ctypes
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

HEADER = Path(__file__).resolve().parents[1] / "cuda_emulation" / "cuda_emulation.h"
GXX = shutil.which("g++")


def _unavailable():
    if GXX is None:
        return "g++ (which compiles the kernels for the CUDA emulation) is not on PATH"
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"the CUDA emulation runs on x86-64 only, not {platform.machine()}"
    return None


#: Why the emulation cannot run here, or None.
UNAVAILABLE = _unavailable()
CACHE = Path(tempfile.gettempdir()) / "sk_hashednets_fake_cupy"
COMPILE = ["-std=c++20", "-O2", "-fPIC", "-shared", "-Wall", "-Werror"]

#: Every launch: (kernel name, grid, block, shared_mem), for tests to inspect.
LAUNCHES = []

# C scalar types (LP64) and the NumPy dtypes whose bytes they take.
SCALARS = {
    "bool": np.bool_,
    "signed char": np.int8,
    "char": np.int8,
    "unsigned char": np.uint8,
    "short": np.int16,
    "unsigned short": np.uint16,
    "int": np.int32,
    "signed int": np.int32,
    "unsigned int": np.uint32,
    "unsigned": np.uint32,
    "long": np.int64,
    "long long": np.int64,
    "unsigned long": np.uint64,
    "unsigned long long": np.uint64,
    "size_t": np.uint64,
    "float": np.float32,
    "double": np.float64,
}
_CTYPES = {
    np.dtype(np.bool_): ctypes.c_bool,
    np.dtype(np.int8): ctypes.c_int8,
    np.dtype(np.uint8): ctypes.c_uint8,
    np.dtype(np.int16): ctypes.c_int16,
    np.dtype(np.uint16): ctypes.c_uint16,
    np.dtype(np.int32): ctypes.c_int32,
    np.dtype(np.uint32): ctypes.c_uint32,
    np.dtype(np.int64): ctypes.c_int64,
    np.dtype(np.uint64): ctypes.c_uint64,
    np.dtype(np.float32): ctypes.c_float,
    np.dtype(np.float64): ctypes.c_double,
}
# What the preprocessor leaves of the CUDA keywords when parsing.
MARKERS = ["-D__global__=__sk_global__", "-D__shared__=__sk_shared__"] + [
    f"-D{k}=" for k in ("__device__", "__host__", "__forceinline__")
]


class KernelLaunchError(RuntimeError):
    """A launch that the emulation refused or that failed while it ran."""


class Param:
    """One kernel parameter: its C type, and the dtype of its value or of its pointee."""

    def __init__(self, text, typedefs):
        self.text = " ".join(text.split())
        match = re.fullmatch(r"(.*?)\s*(\**)\s*(\w+)", self.text)
        if match is None:
            raise ValueError(f"cannot parse the kernel parameter {text!r}")
        base, stars, self.name = match.groups()
        words = [w for w in base.split() if w not in ("const", "volatile", "__restrict__")]
        self.const = "const" in base.split()
        ctype = " ".join(words)
        while ctype in typedefs:
            ctype = typedefs[ctype]
        self.pointer = len(stars) == 1
        if len(stars) > 1 or (ctype not in SCALARS and ctype != "void"):
            raise ValueError(f"the emulation does not pass {self.text!r}")
        self.ctype = ctype
        self.dtype = None if ctype == "void" else np.dtype(SCALARS[ctype])

    def check(self, value, ndarray, kernel):
        """Refuse ``value`` unless it is what this parameter takes, at its width."""
        where = f"argument {self.name!r} ({self.text}) of kernel {kernel}"
        if self.pointer:
            if not isinstance(value, ndarray):
                raise TypeError(f"{where}: expected a device array, got {type(value).__name__}")
            if self.dtype is not None and value.dtype != self.dtype:
                raise TypeError(f"{where}: expected an array of {self.dtype}, got {value.dtype}")
            if not value.flags.c_contiguous:
                raise TypeError(f"{where}: the kernel reads flat memory, got a strided view")
            return ctypes.c_void_p(value.ctypes.data)
        if not isinstance(value, np.generic) or value.dtype != self.dtype:
            got = value.dtype if isinstance(value, np.generic) else type(value).__name__
            raise TypeError(f"{where}: expected a NumPy scalar of {self.dtype}, got {got}")
        return _CTYPES[self.dtype](value.item())


def _typedefs(text):
    return {
        alias: " ".join(original.split())
        for original, alias in re.findall(r"typedef\s+([\w\s]+?)\s+(\w+)\s*;", text)
    }


def _preprocess(code, options):
    defines = [o for o in options if o.startswith("-D")]
    result = subprocess.run(
        [GXX, "-E", "-P", "-x", "c++", *MARKERS, *defines, "-"],
        input=code,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise KernelLaunchError(f"preprocessing the kernel source failed:\n{result.stderr}")
    return result.stdout


def parse_kernels(code, options=()):
    """The ``extern "C" __global__`` kernels of a source, and its dynamic shared arrays.

    Returns
    -------
    kernels : dict
        Kernel name -> list of :class:`Param`.
    shared : list of (str, str)
        Element type and name of every ``extern __shared__ T name[]``.
    """
    text = _preprocess(code, options)
    typedefs = _typedefs(text)
    kernels = {}
    for name, params in re.findall(
        r'extern\s+"C"\s+__sk_global__\s+void\s+(\w+)\s*\(([^)]*)\)', text
    ):
        kernels[name] = [Param(p, typedefs) for p in params.split(",") if p.strip()]
    shared = re.findall(r"extern\s+__sk_shared__\s+([\w\s]+?)\s+(\w+)\s*\[\s*\]", text)
    n_shared = len(re.findall(r"__sk_shared__", text))
    if n_shared != len(shared):
        raise KernelLaunchError("the emulation has dynamic (extern) __shared__ arrays only")
    return kernels, sorted(set(shared), key=lambda s: s[1])


def _launchers(kernels, shared):
    lines = [f"alignas(16) {t} {n}[sk_emu::max_shared_bytes / sizeof({t})];" for t, n in shared]
    buffers = ", ".join(f"reinterpret_cast<unsigned char *>({n})" for _, n in shared)
    for name, params in kernels.items():
        fields = "".join(f"    {p.text};\n" for p in params)
        call = ", ".join(f"a.{p.name}" for p in params)
        declared = "".join(f", {p.text}" for p in params)
        values = ", ".join(p.name for p in params)
        lines.append(
            f"namespace {{ struct sk_args_{name} {{\n{fields}}}; }}\n"
            f'extern "C" const char *sk_launch_{name}(\n'
            f"        unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,\n"
            f"        unsigned bz, unsigned long long shared{declared}) {{\n"
            f"    sk_args_{name} args{{{values}}};\n"
            f"    return sk_emu::launch(\n"
            f"        dim3{{gx, gy, gz}}, dim3{{bx, by, bz}}, shared, {{{buffers}}},\n"
            f"        [](void *p) {{\n"
            f"            auto &a = *static_cast<sk_args_{name} *>(p);\n"
            f"            {name}({call});\n"
            f"        }},\n"
            f"        &args);\n"
            f"}}"
        )
    return "\n".join(lines) + "\n"


def compile_module(code, options=()):
    """The shared library of ``code`` with its launchers, compiled once per source."""
    kernels, shared = parse_kernels(code, options)
    source = code + "\n// ---- launchers of the CUDA emulation ----\n" + _launchers(kernels, shared)
    defines = [o for o in options if o.startswith("-D")]
    key = hashlib.sha256(
        "\0".join([source, HEADER.read_text(), *COMPILE, *defines]).encode()
    ).hexdigest()[:24]
    library = CACHE / f"{key}.so"
    if not library.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        source_path = CACHE / f"{key}.{os.getpid()}.cu"
        source_path.write_text(source)
        partial = CACHE / f"{key}.{os.getpid()}.so"
        result = subprocess.run(
            [
                GXX,
                *COMPILE,
                *defines,
                "-include",
                str(HEADER),
                "-x",
                "c++",
                str(source_path),
                "-o",
                str(partial),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        source_path.unlink()
        if result.returncode:
            raise KernelLaunchError(f"compiling the kernel source failed:\n{result.stderr}")
        os.replace(partial, library)
    return ctypes.CDLL(str(library)), kernels


def _dims(value, what):
    if not isinstance(value, tuple) or not 1 <= len(value) <= 3:
        raise TypeError(f"{what} must be a tuple of 1 to 3 ints, got {value!r}")
    if not all(isinstance(v, int) and v >= 1 for v in value):
        raise ValueError(f"{what} must hold positive ints, got {value!r}")
    return value + (1,) * (3 - len(value))


class EmulatedKernel:
    """A kernel of a compiled module, called as ``cupy.RawKernel`` is."""

    def __init__(self, library, name, params, ndarray):
        self.name = name
        self._params = params
        self._ndarray = ndarray
        self._launch = getattr(library, f"sk_launch_{name}")
        self._launch.restype = ctypes.c_char_p
        self._launch.argtypes = (
            [ctypes.c_uint] * 6
            + [ctypes.c_ulonglong]
            + [ctypes.c_void_p if p.pointer else _CTYPES[p.dtype] for p in params]
        )

    def __call__(self, grid, block, args, *, shared_mem=0):
        grid, block = _dims(grid, "grid"), _dims(block, "block")
        if grid[0] >= 2**31 or max(grid[1:]) > 65535:
            raise ValueError(f"grid {grid} is larger than CUDA allows")
        if not isinstance(args, tuple) or len(args) != len(self._params):
            raise TypeError(
                f"kernel {self.name} takes {len(self._params)} arguments in a tuple, got "
                f"{len(args) if isinstance(args, tuple) else type(args).__name__}"
            )
        if not isinstance(shared_mem, int) or shared_mem < 0:
            raise TypeError(f"shared_mem must be a non-negative int, got {shared_mem!r}")
        values = [p.check(a, self._ndarray, self.name) for p, a in zip(self._params, args)]
        LAUNCHES.append((self.name, grid, block, shared_mem))
        error = self._launch(*grid, *block, shared_mem, *values)
        if error is not None:
            raise KernelLaunchError(f"kernel {self.name}{grid}{block}: {error.decode()}")
