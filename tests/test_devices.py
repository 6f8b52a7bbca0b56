"""``device=``: the choice of device, its errors, and the device code path, without a GPU.

The estimators' device path differs from the CPU path only through the backend
object. Here a NumPy stand-in for the CUDA backend (``tests/_numpy_device.py``)
drives that path on the CPU: it must train exactly as the CPU does, take its
data to the "device" once per fit, give NumPy results and leave only NumPy
arrays in the fitted model. CuPy's absence, a CuPy that sees no device, and an
out-of-memory error are simulated. ``tests/test_gpu_estimators.py`` runs the
real thing where a GPU is present.
"""

import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
from _numpy_device import DeviceArray, NumPyDeviceBackend
from sklearn.datasets import load_digits, make_multilabel_classification, make_regression
from sklearn.linear_model import LogisticRegression

import sk_hashednets._multilayer_perceptron as mlp_module
from sk_hashednets import HashedMLPClassifier, HashedMLPRegressor, load, save
from sk_hashednets._kernels import get_backend, resolve_device

X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)
X_DIGITS = X_DIGITS[:240] / 16
Y_DIGITS = Y_DIGITS[:240]


# ----------------------------------------------------------------------------
# Choosing the device, and the errors when CuPy or a GPU is missing
# ----------------------------------------------------------------------------


def _fake_cupy(count=0, error=None):
    """A module that plays CuPy on a machine with ``count`` devices (or a runtime error)."""

    class CUDARuntimeError(RuntimeError):
        pass

    def get_device_count():
        if error is not None:
            raise CUDARuntimeError(error)
        return count

    runtime = types.SimpleNamespace(
        getDeviceCount=get_device_count, CUDARuntimeError=CUDARuntimeError
    )
    cupy = types.ModuleType("cupy")
    cupy.__version__ = "14.0.0-fake"
    cupy.cuda = types.SimpleNamespace(runtime=runtime)
    return cupy


@pytest.fixture
def no_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # "import cupy" raises ImportError


def _small_data():
    return X_DIGITS[:60], Y_DIGITS[:60]


def test_cuda_without_cupy_fails_at_fit_with_the_install_line(no_cupy):
    clf = HashedMLPClassifier(device="cuda", hidden_layer_sizes=(5,), max_iter=2)  # no error
    with pytest.raises(ImportError, match=r'needs CuPy.*pip install "sk_hashednets\[gpu\]"'):
        clf.fit(*_small_data())
    assert not hasattr(clf, "bucket_weights_")
    with pytest.raises(ImportError, match="needs CuPy"):
        HashedMLPRegressor(device="cuda").partial_fit(X_DIGITS[:20], Y_DIGITS[:20] / 10)


@pytest.mark.parametrize(
    "cupy, reason",
    [
        (_fake_cupy(count=0), "reports 0 devices"),
        (_fake_cupy(error="cudaErrorNoDevice: no CUDA-capable device is detected"), "NoDevice"),
    ],
)
def test_cuda_with_cupy_but_no_gpu_fails_at_fit_and_says_why(monkeypatch, cupy, reason):
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    clf = HashedMLPClassifier(device="cuda", hidden_layer_sizes=(5,), max_iter=2)
    with pytest.raises(RuntimeError, match=rf"found CuPy 14.0.0-fake but no CUDA device.*{reason}"):
        clf.fit(*_small_data())
    with pytest.raises(RuntimeError, match=r'pip install "sk_hashednets\[gpu\]"'):
        clf.fit(*_small_data())
    assert not hasattr(clf, "bucket_weights_")


@pytest.mark.parametrize("cupy", [None, _fake_cupy(count=0), _fake_cupy(error="no driver")])
def test_auto_falls_back_to_the_cpu(monkeypatch, cupy):
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    assert resolve_device("auto") == "cpu"
    clf = HashedMLPClassifier(device="auto", hidden_layer_sizes=(5,), max_iter=2).fit(
        *_small_data()
    )
    assert clf.device_ == "cpu"
    assert clf.device == "auto"  # the constructor argument is not rewritten


def test_auto_picks_the_gpu_when_cupy_sees_one(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(count=2))
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda") == "cuda"
    assert resolve_device("cpu") == "cpu"


@pytest.mark.slow
def test_the_package_imports_and_trains_without_cupy():
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "import sk_hashednets\n"
        "from sk_hashednets import HashedMLPClassifier\n"
        "clf = HashedMLPClassifier(hidden_layer_sizes=(4,), max_iter=2, device='auto')\n"
        "clf.fit([[0.0, 1.0], [1.0, 0.0]] * 5, [0, 1] * 5)\n"
        "assert clf.device_ == 'cpu' and 'cupy' not in sys.modules or sys.modules['cupy'] is None\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_get_backend_refuses_unknown_devices():
    with pytest.raises(ValueError, match="No backend"):
        get_backend("tpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")


# ----------------------------------------------------------------------------
# The device code path, driven by the NumPy stand-in
# ----------------------------------------------------------------------------


@pytest.fixture
def numpy_device(monkeypatch):
    """Make ``device="cuda"`` train on a fresh ``NumPyDeviceBackend``; yields a factory."""
    backends = []

    def use(**kwargs):
        backend = NumPyDeviceBackend(**kwargs)
        backends.append(backend)
        return backend

    real_resolve, real_get = mlp_module.resolve_device, mlp_module.get_backend
    monkeypatch.setattr(
        mlp_module, "resolve_device", lambda d: "cuda" if d == "cuda" else real_resolve(d)
    )
    monkeypatch.setattr(
        mlp_module,
        "get_backend",
        lambda d: (backends[-1] if backends else use()) if d == "cuda" else real_get(d),
    )
    return use


def _host_only(value, where="estimator"):
    """Assert that no DeviceArray hides in ``value`` (lists, dicts, objects' attributes)."""
    if isinstance(value, DeviceArray):
        raise AssertionError(f"a device array was left in {where}")
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _host_only(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            _host_only(v, f"{where}.{k}")
    elif hasattr(value, "__dict__") and type(value).__module__.startswith("sk_hashednets"):
        _host_only(vars(value), where)


def _assert_same_fit(device_model, cpu_model, exact=True):
    assert device_model.device_ == "cuda"
    _host_only(vars(device_model))
    pairs = list(zip(device_model.bucket_weights_, cpu_model.bucket_weights_)) + list(
        zip(device_model.intercepts_, cpu_model.intercepts_)
    )
    for got, expected in pairs:
        assert type(got) is np.ndarray and got.dtype == expected.dtype
        if exact:
            np.testing.assert_array_equal(got, expected)
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    if hasattr(cpu_model, "loss_curve_"):
        np.testing.assert_allclose(
            device_model.loss_curve_, cpu_model.loss_curve_, rtol=0 if exact else 1e-5
        )
    assert device_model.n_iter_ == cpu_model.n_iter_


X32 = X_DIGITS.astype(np.float32)
XR, YR = make_regression(n_samples=120, n_features=12, random_state=0)
XM, YM = make_multilabel_classification(n_samples=100, n_features=10, random_state=0)
SAMPLE_WEIGHT = np.random.RandomState(0).uniform(0.5, 2, len(Y_DIGITS))
BASE = dict(hidden_layer_sizes=(20, 15), random_state=0, max_iter=3, compression=0.25)

CONFIGS = {
    "adam-float32": (HashedMLPClassifier, {}, X32, Y_DIGITS, {}),
    "adam-float64": (HashedMLPClassifier, {}, X_DIGITS, Y_DIGITS, {}),
    "sgd-invscaling": (
        HashedMLPClassifier,
        dict(solver="sgd", learning_rate="invscaling"),
        X_DIGITS,
        Y_DIGITS,
        {},
    ),
    "no-shuffle": (HashedMLPClassifier, dict(shuffle=False, batch_size=64), X32, Y_DIGITS, {}),
    "lbfgs": (HashedMLPClassifier, dict(solver="lbfgs", max_iter=10), X_DIGITS, Y_DIGITS, {}),
    "early-stopping": (
        HashedMLPClassifier,
        dict(early_stopping=True, max_iter=4),
        X32,
        Y_DIGITS,
        {},
    ),
    "dropout-tanh": (HashedMLPClassifier, dict(dropout=0.3, activation="tanh"), X32, Y_DIGITS, {}),
    "logistic-weights": (
        HashedMLPClassifier,
        dict(activation="logistic"),
        X_DIGITS,
        Y_DIGITS,
        {"sample_weight": SAMPLE_WEIGHT},
    ),
    "block-tiled": (
        HashedMLPClassifier,
        dict(hashing="block", max_tile_bytes=400),
        X32,
        Y_DIGITS,
        {},
    ),
    "distillation": (
        HashedMLPClassifier,
        dict(teacher=LogisticRegression(max_iter=300).fit(X_DIGITS, Y_DIGITS)),
        X_DIGITS,
        Y_DIGITS,
        {},
    ),
    "binary-distillation": (
        HashedMLPClassifier,
        dict(teacher=LogisticRegression()),
        X_DIGITS,
        Y_DIGITS % 2,
        {},
    ),
    "multilabel": (HashedMLPClassifier, {}, XM, YM, {}),
    "poisson": (HashedMLPRegressor, dict(loss="poisson"), XR / 100, np.abs(YR) / 100, {}),
    "regressor-lbfgs": (HashedMLPRegressor, dict(solver="lbfgs", max_iter=10), XR, YR / 100, {}),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_device_path_trains_exactly_as_the_cpu(numpy_device, name):
    Estimator, params, X, y, fit_kwargs = CONFIGS[name]
    params = {**BASE, **params}
    backend = numpy_device()
    cpu = Estimator(**params, device="cpu").fit(X, y, **fit_kwargs)
    device = Estimator(**params, device="cuda").fit(X, y, **fit_kwargs)
    _assert_same_fit(device, cpu)
    # The training data went to the device once for the whole fit (early stopping
    # keeps a tenth apart, which goes there at each epoch's validation).
    copies = [s for s in backend.to_device_shapes if s[1:] == X.shape[1:]]
    n_train = len(X) - (24 if params.get("early_stopping") else 0)
    assert copies[0] == (n_train, *X.shape[1:])
    assert copies[1:] == [(24, *X.shape[1:])] * (len(copies) - 1)
    assert len(copies) == 1 + (device.n_iter_ if params.get("early_stopping") else 0)
    for method in ("predict", "predict_proba", "predict_log_proba"):
        if hasattr(cpu, method):
            got, expected = getattr(device, method)(X), getattr(cpu, method)(X)
            assert type(got) is np.ndarray
            np.testing.assert_array_equal(got, expected)
    assert device.score(X, y) == cpu.score(X, y)


@pytest.mark.parametrize("shuffle", [True, False])
def test_device_path_moves_data_in_chunks_when_it_does_not_fit(numpy_device, shuffle):
    X, y = X32, Y_DIGITS
    params = dict(BASE, batch_size=32, max_iter=2, shuffle=shuffle)
    # About 100 rows of float32 features and one-hot labels fit in half of this.
    backend = numpy_device(free_memory=2 * 100 * (64 * 4 + 10))
    device = HashedMLPClassifier(**params, device="cuda").fit(X, y)
    cpu = HashedMLPClassifier(**params, device="cpu").fit(X, y)
    _assert_same_fit(device, cpu)
    chunks = [s for s in backend.to_device_shapes if len(s) == 2 and s[1] == X.shape[1]]
    # Chunks of 96 rows (three whole minibatches): 96 + 96 + 48 per epoch, no whole copy.
    assert chunks[:3] == [(96, 64), (96, 64), (48, 64)]
    assert (len(X), 64) not in chunks
    # Prediction goes in chunks too (of 34 rows here), and gives the same answer
    # up to rounding: BLAS blocks a GEMM of 34 rows differently from one of 240.
    backend.to_device_shapes.clear()
    np.testing.assert_allclose(device.predict_proba(X), cpu.predict_proba(X), rtol=1e-6)
    assert [s for s in backend.to_device_shapes if s[1:] == (64,)] == [(34, 64)] * 7 + [(2, 64)]


def test_device_path_with_sparse_input_densifies_on_the_way(numpy_device):
    X = sp.csr_matrix(X32)
    params = dict(BASE, max_iter=2)
    device = HashedMLPClassifier(**params, device="cuda").fit(X, Y_DIGITS)
    cpu = HashedMLPClassifier(**params, device="cpu").fit(X, Y_DIGITS)
    # Dense GEMMs round differently from sparse ones.
    _assert_same_fit(device, cpu, exact=False)
    np.testing.assert_allclose(device.predict_proba(X), cpu.predict_proba(X), rtol=1e-4)


def test_device_partial_fit_and_warm_start_match_the_cpu(numpy_device):
    params = dict(BASE, warm_start=True, max_iter=2)
    device = HashedMLPClassifier(**params, device="cuda")
    cpu = HashedMLPClassifier(**params, device="cpu")
    for model in (device, cpu):
        model.partial_fit(X32[:120], Y_DIGITS[:120], classes=np.arange(10))
        model.partial_fit(X32[120:], Y_DIGITS[120:])
        model.fit(X32, Y_DIGITS)  # warm start: continues from the buckets and moments
    _assert_same_fit(device, cpu)
    for got, expected in zip(
        device._optimizer.ms + device._optimizer.vs, cpu._optimizer.ms + cpu._optimizer.vs
    ):
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, expected)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_device_warm_start_moves_the_best_parameters_only_where_kept(numpy_device, solver):
    # A model keeps a copy of its best parameters under early stopping only (and
    # for a stochastic solver); the device path moves what the model has. L-BFGS
    # then turned to early_stopping=True warm-starts (it ignores early stopping).
    params = dict(BASE, solver=solver, max_iter=2, warm_start=True)
    device = HashedMLPClassifier(**params, device="cuda").fit(X32, Y_DIGITS)
    cpu = HashedMLPClassifier(**params, device="cpu").fit(X32, Y_DIGITS)
    for model in (device, cpu):
        assert not hasattr(model, "_best_bucket_weights")
        model.set_params(early_stopping=solver == "lbfgs")
        model.fit(X32, Y_DIGITS)
        _host_only(vars(model))
    _assert_same_fit(device, cpu)


def test_device_trained_model_pickles_and_continues_on_the_cpu(numpy_device):
    params = dict(BASE, max_iter=3)
    device = HashedMLPClassifier(**params, device="cuda").fit(X32, Y_DIGITS)
    cpu = HashedMLPClassifier(**params, device="cpu").fit(X32, Y_DIGITS)
    restored = pickle.loads(pickle.dumps(device))
    _host_only(vars(restored))
    restored.set_params(device="cpu")
    np.testing.assert_array_equal(restored.predict_proba(X32), cpu.predict_proba(X32))
    restored.partial_fit(X32, Y_DIGITS)
    cpu.partial_fit(X32, Y_DIGITS)
    assert restored.device_ == "cpu"
    np.testing.assert_array_equal(restored.predict_proba(X32), cpu.predict_proba(X32))


def test_device_trained_model_saves_in_the_safe_format(numpy_device, tmp_path):
    device = HashedMLPClassifier(**BASE, device="cuda").fit(X32, Y_DIGITS)
    save(device, tmp_path / "model.npz")
    loaded = load(tmp_path / "model.npz").set_params(device="cpu")
    np.testing.assert_array_equal(loaded.predict(X32), device.predict(X32))


class _CupyLike:
    """Quacks like a CuPy array for the input conversion: a ``cupy`` module and ``get``."""

    __module__ = "cupy._core.core"

    def __init__(self, array):
        self.array = array

    def get(self):
        return self.array


def test_cupy_arrays_are_accepted_as_input(numpy_device):
    params = dict(BASE, max_iter=2)
    clf = HashedMLPClassifier(**params, device="cuda").fit(
        _CupyLike(X32), _CupyLike(Y_DIGITS), sample_weight=_CupyLike(SAMPLE_WEIGHT)
    )
    ref = HashedMLPClassifier(**params, device="cuda").fit(
        X32, Y_DIGITS, sample_weight=SAMPLE_WEIGHT
    )
    np.testing.assert_array_equal(clf.predict_proba(_CupyLike(X32)), ref.predict_proba(X32))
    clf.partial_fit(_CupyLike(X32), _CupyLike(Y_DIGITS))
    reg = HashedMLPRegressor(**params, device="cuda").partial_fit(_CupyLike(XR), _CupyLike(YR))
    assert type(reg.predict(_CupyLike(XR))) is np.ndarray


def test_out_of_device_memory_is_a_memory_error_that_says_what_to_lower(numpy_device):
    clf = HashedMLPClassifier(**BASE, device="cpu").fit(X32, Y_DIGITS)
    before = [w.copy() for w in clf.bucket_weights_]
    numpy_device(fail_after=5)
    clf.set_params(device="cuda", warm_start=True, batch_size=64)
    with pytest.raises(MemoryError, match=r"max_tile_bytes \(now 67108864.*batch_size \(now 64\)"):
        clf.fit(X32, Y_DIGITS)
    # The model is left as it was, on the host.
    assert clf.device_ == "cpu"
    for got, expected in zip(clf.bucket_weights_, before):
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, expected)
    numpy_device(fail_after=1)
    with pytest.raises(MemoryError, match="device ran out of memory"):
        clf.predict(X32)
