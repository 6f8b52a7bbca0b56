"""Every backend implements the protocol of ``sk_hashednets._kernels._backend``.

The CPU backend, the test suite's pretend GPU and the CUDA backend derive from
the protocol's classes, keep every method's signature (names, kinds and
defaults of the parameters), add no public method of their own, and take
their capability flags from the capabilities they implement. The CUDA backend
is checked from its source where CuPy is missing, and imported where it is.
"""

import ast
import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest
from _numpy_device import NumPyDeviceBackend

import sk_hashednets
from sk_hashednets._kernels import get_backend
from sk_hashednets._kernels._backend import (
    Backend,
    BucketIndexing,
    DeviceHashing,
    DirectProducts,
    LayerHash,
)
from sk_hashednets._kernels._cpu import CPUBackend
from sk_hashednets._kernels._hashing import BLOCK_HASHING, ELEMENT_HASHING, sign_seed

PACKAGE = Path(sk_hashednets.__file__).parent
CUDA_SOURCE = PACKAGE / "_kernels" / "_cuda.py"
#: Each optional capability and the flag that announces it.
CAPABILITIES = {
    "indexes_buckets": BucketIndexing,
    "hashes_pairs": DeviceHashing,
    "multiplies_from_buckets": DirectProducts,
}
PROTOCOLS = [Backend, *CAPABILITIES.values()]
EMPTY = inspect.Parameter.empty


def _methods(protocol):
    return {
        name: inspect.signature(getattr(protocol, name)) for name in protocol.__abstractmethods__
    }


def _shape(signature):
    """What a call depends on: each parameter's name, kind and default."""
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def _attributes(protocol):
    return set(vars(protocol).get("__annotations__", {}))


def _check_conforms(name, bases, methods, attributes, flags_in_body):
    """Check a backend class given as what it declares, from its class or its source."""
    protocols = [p for p in PROTOCOLS if p.__name__ in bases]
    assert Backend in protocols, f"{name} does not derive from Backend"
    assert not flags_in_body, f"{name} sets {flags_in_body}: the capabilities set the flags"
    expected = {}
    for protocol in protocols:
        expected.update({m: _shape(s) for m, s in _methods(protocol).items()})
        missing = _attributes(protocol) - attributes
        assert not missing, f"{name} does not set {sorted(missing)}"
    public = {m: shape for m, shape in methods.items() if not m.startswith("_")}
    assert set(public) == set(expected), f"{name}: methods outside the protocol or missing"
    for method, shape in expected.items():
        assert public[method] == shape, f"{name}.{method} has another signature"


def _runtime_declaration(cls):
    attributes = {a for a in dir(cls) if not a.startswith("_")}
    methods = {
        m: _shape(inspect.signature(f))
        for m, f in vars(cls).items()
        if inspect.isfunction(f) and not m.startswith("_")
    }
    # Inherited implementations count too (a base class of the backend's own).
    for base in cls.__mro__[1:]:
        if base in PROTOCOLS or base is object:
            continue
        for m, f in vars(base).items():
            if inspect.isfunction(f) and not m.startswith("_"):
                methods.setdefault(m, _shape(inspect.signature(f)))
    flags = sorted(set(CAPABILITIES) & set(vars(cls)))
    return {b.__name__ for b in cls.__mro__}, methods, attributes, flags


@pytest.mark.parametrize("cls", [CPUBackend, NumPyDeviceBackend])
def test_backend_conforms(cls):
    bases, methods, attributes, flags = _runtime_declaration(cls)
    _check_conforms(cls.__name__, bases, methods, attributes, flags)
    assert not inspect.isabstract(cls)
    for flag, capability in CAPABILITIES.items():
        assert getattr(cls, flag) == issubclass(cls, capability)


def _default(node):
    return EMPTY if node is None else ast.literal_eval(node)


def _ast_shape(function):
    """:func:`_shape` of a function's signature, read from its source."""
    args = function.args
    positional = args.posonlyargs + args.args
    defaults = [EMPTY] * (len(positional) - len(args.defaults)) + args.defaults
    kinds = [inspect.Parameter.POSITIONAL_ONLY] * len(args.posonlyargs)
    kinds += [inspect.Parameter.POSITIONAL_OR_KEYWORD] * len(args.args)
    shape = [
        (arg.arg, kind, default if default is EMPTY else _default(default))
        for arg, kind, default in zip(positional, kinds, defaults)
    ]
    if args.vararg is not None:
        shape.append((args.vararg.arg, inspect.Parameter.VAR_POSITIONAL, EMPTY))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        shape.append((arg.arg, inspect.Parameter.KEYWORD_ONLY, _default(default)))
    if args.kwarg is not None:
        shape.append((args.kwarg.arg, inspect.Parameter.VAR_KEYWORD, EMPTY))
    return shape


def test_cuda_backend_source_conforms():
    # Runs without CuPy: the class is read from its source, not imported.
    tree = ast.parse(CUDA_SOURCE.read_text(encoding="utf-8"))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "CUDABackend"]
    bases = {base.id for base in cls.bases}
    methods = {n.name: _ast_shape(n) for n in cls.body if isinstance(n, ast.FunctionDef)}
    assigned = {t.id for n in cls.body if isinstance(n, ast.Assign) for t in n.targets}
    attributes = assigned | {a for p in PROTOCOLS if p.__name__ in bases for a in dir(p)}
    flags = sorted(set(CAPABILITIES) & assigned)
    _check_conforms("CUDABackend", bases, methods, attributes, flags)
    assert bases == {"Backend", "DeviceHashing"}


def test_cuda_backend_conforms_when_cupy_imports():
    if importlib.util.find_spec("cupy") is None:
        pytest.skip("CuPy is not installed: test_cuda_backend_source_conforms reads the source")
    try:
        from sk_hashednets._kernels._cuda import CUDABackend
    except ImportError as error:  # pragma: no cover - a broken CuPy install
        pytest.skip(f"CuPy does not import: {error}")
    test_backend_conforms(CUDABackend)


def test_ast_shape_reads_signatures_as_inspect_does():
    # The source check is only as good as this reading of a signature.
    source = "def f(self, a, /, b, c=1, *args, d, e='x', f=None, **kw): pass"

    def f(self, a, /, b, c=1, *args, d, e="x", f=None, **kw):
        pass

    (function,) = ast.parse(source).body
    assert _ast_shape(function) == _shape(inspect.signature(f))


def test_get_backend_gives_a_backend():
    backend = get_backend("cpu")
    assert isinstance(backend, Backend) and isinstance(backend, BucketIndexing)
    assert isinstance(backend, DirectProducts) and backend.multiplies_from_buckets
    assert backend.indexes_buckets and not backend.hashes_pairs


# ----------------------------------------------------------------------------
# LayerHash
# ----------------------------------------------------------------------------


def test_layer_hash_casts_once_and_turns_the_scheme_into_the_kernels_mode():
    layer_hash = LayerHash.for_layer(2**32 - 1, sign_hash=1, hashing="block", n_buckets=np.int64(7))
    assert type(layer_hash.seed) is np.uint64 and layer_hash.seed == 2**32 - 1
    assert type(layer_hash.sign_seed) is np.uint64
    assert layer_hash.sign_seed == sign_seed(2**32 - 1)
    assert layer_hash.sign_hash is True
    assert type(layer_hash.n_buckets) is int and layer_hash.n_buckets == 7
    assert layer_hash.mode == BLOCK_HASHING
    element = LayerHash(3, 4, False, "element", 10)
    assert element.mode == ELEMENT_HASHING and element.sign_seed == 4
    with pytest.raises(AttributeError):
        element.seed = 5  # frozen


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(seed=2**32), r"seed must be in \[0, 2\*\*32\)"),
        (dict(seed=-1), r"seed must be in \[0, 2\*\*32\)"),
        (dict(sign_seed=2**32), r"sign_seed must be in \[0, 2\*\*32\)"),
        (dict(hashing="row"), r"hashing must be one of \('element', 'block'\), got 'row'"),
        (dict(n_buckets=0), r"n_buckets must be in \[1, 2\*\*32\)"),
        (dict(n_buckets=2**32), r"n_buckets must be in \[1, 2\*\*32\)"),
    ],
)
def test_layer_hash_rejects_what_the_hash_cannot_take(fields, message):
    valid = dict(seed=1, sign_seed=2, sign_hash=True, hashing="element", n_buckets=10)
    with pytest.raises(ValueError, match=message):
        LayerHash(**{**valid, **fields})


def test_layer_hash_rejects_a_float_seed():
    with pytest.raises(TypeError):
        LayerHash(1.0, 2, True, "element", 10)


@pytest.mark.parametrize("backend", [CPUBackend(), NumPyDeviceBackend()], ids=["cpu", "device"])
def test_backends_refuse_a_bucket_vector_of_another_layer(backend):
    layer_hash = LayerHash.for_layer(1, sign_hash=True, hashing="element", n_buckets=10)
    tile = backend.empty((3, 4), np.float64)
    with pytest.raises(ValueError, match=r"bucket_weights must have shape \(10,\).*got \(9,\)"):
        backend.materialize_tile(layer_hash, backend.to_device(np.zeros(9)), tile)
    scratch = backend.scatter_workspace(3, backend.scatter_block_rows(3, 4, 9), 9, np.float64)
    with pytest.raises(ValueError, match=r"bucket_grad must have shape \(10,\).*got \(9,\)"):
        backend.scatter_bucket_grad(layer_hash, tile, backend.empty(9, np.float64), scratch)


# ----------------------------------------------------------------------------
# CuPy is looked for under _kernels only
# ----------------------------------------------------------------------------


def _docstrings(tree):
    nodes = [tree] + [
        n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.Module))
    ]
    return {
        id(n.body[0].value)
        for n in nodes
        if n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)
    }


def test_cupy_is_looked_for_only_under_kernels():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "_kernels" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in docstrings:
                    names = [node.value]
            if any("cupy" in name for name in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders
