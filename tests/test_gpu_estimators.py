"""The estimators with ``device="cuda"``.

On a GPU where there is one; else on the CPU, through the CuPy double
(``tests/fake_cupy``): the real ``CUDABackend`` and the estimators' device
path on CuPy-shaped arrays, the kernels compiled by g++ with the emulation
header. Skipped, with the reasons, where neither exists. Where they have run:
docs/devices.md.
"""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from _gpu import require_gpu_or_emulation

require_gpu_or_emulation()
pytestmark = pytest.mark.usefixtures("cuda")

from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from sk_hashednets import HashedMLPClassifier, HashedMLPRegressor  # noqa: E402
from sk_hashednets._hashed_layer import HashedLayer  # noqa: E402
from sk_hashednets._kernels._cpu import CPUBackend  # noqa: E402

X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)
X_DIGITS = (X_DIGITS / 16).astype(np.float32)


#: scikit-learn's checks of what a fit learns: they need the default network
#: (100 hidden units) to pass their thresholds, and test_estimators.py runs them
#: on the CPU. On the device, what a fit learns is checked against the CPU here
#: (test_digits_accuracy_matches_the_cpu) and in test_devices.py (the same bits).
LEARNING_CHECKS = {"check_classifiers_train", "check_regressors_train"}


# The checks exercise the device path (transfers, kernels, dtypes, sparse
# input, sample weights, pickling), not a network's capacity: a hidden layer
# of 32 units runs every kernel that one of 100 runs, at a third of the
# emulation's cost. 20 epochs: no check here needs a converged fit.
@parametrize_with_checks(
    [
        HashedMLPClassifier(hidden_layer_sizes=(32,), random_state=0, device="cuda", max_iter=20),
        HashedMLPRegressor(hidden_layer_sizes=(32,), random_state=0, device="cuda", max_iter=20),
    ]
)
def test_sklearn_compatible_estimator_on_the_gpu(estimator, check):
    name = getattr(check, "func", check).__name__
    if name in LEARNING_CHECKS:
        pytest.skip(f"{name} runs on the CPU (test_estimators.py); see LEARNING_CHECKS")
    check(estimator)


def _host_state(model):
    arrays = model.bucket_weights_ + model.intercepts_
    if getattr(model, "_optimizer", None) is not None:
        arrays += getattr(model._optimizer, "ms", []) + getattr(model._optimizer, "vs", [])
        arrays += getattr(model._optimizer, "velocities", [])
    return all(type(a) is np.ndarray for a in arrays)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_digits_accuracy_matches_the_cpu(solver):
    X_train, X_test, y_train, y_test = train_test_split(
        X_DIGITS, Y_DIGITS, test_size=0.25, random_state=0
    )
    # Two hidden layers and few epochs: small enough for the CPU emulation.
    params = dict(
        hidden_layer_sizes=(64, 32), compression=1 / 8, solver=solver, max_iter=15, random_state=0
    )
    cpu = HashedMLPClassifier(**params, device="cpu").fit(X_train, y_train)
    gpu = HashedMLPClassifier(**params, device="cuda").fit(X_train, y_train)
    assert gpu.device_ == "cuda" and _host_state(gpu)
    assert abs(gpu.score(X_test, y_test) - cpu.score(X_test, y_test)) <= 0.01
    assert type(gpu.predict_proba(X_test)) is np.ndarray
    # Same initialisation, same minibatches: one epoch apart, the two differ by
    # float rounding only (over many epochs, training amplifies it).
    cpu.set_params(max_iter=1).fit(X_train, y_train)
    gpu.set_params(max_iter=1).fit(X_train, y_train)
    np.testing.assert_allclose(
        gpu.predict_proba(X_test), cpu.predict_proba(X_test), rtol=1e-3, atol=1e-5
    )


def test_cupy_arrays_are_accepted(cuda):
    cp = cuda.cp
    params = dict(hidden_layer_sizes=(64,), max_iter=5, random_state=0, device="cuda")
    clf = HashedMLPClassifier(**params).fit(cp.asarray(X_DIGITS), cp.asarray(Y_DIGITS))
    ref = HashedMLPClassifier(**params).fit(X_DIGITS, Y_DIGITS)
    pred = clf.predict_proba(cp.asarray(X_DIGITS))
    assert type(pred) is np.ndarray
    np.testing.assert_allclose(pred, ref.predict_proba(X_DIGITS), rtol=1e-4, atol=1e-6)
    X, y = make_regression(n_samples=100, n_features=8, random_state=0)
    reg = HashedMLPRegressor(**params).partial_fit(cp.asarray(X), cp.asarray(y / 100))
    assert type(reg.predict(cp.asarray(X))) is np.ndarray


def test_gpu_model_pickles_and_goes_on_on_the_cpu():
    params = dict(hidden_layer_sizes=(64,), max_iter=5, random_state=0)
    gpu = HashedMLPClassifier(**params, device="cuda").fit(X_DIGITS, Y_DIGITS)
    restored = pickle.loads(pickle.dumps(gpu)).set_params(device="cpu")
    np.testing.assert_allclose(
        restored.predict_proba(X_DIGITS), gpu.predict_proba(X_DIGITS), rtol=1e-4, atol=1e-6
    )
    restored.partial_fit(X_DIGITS, Y_DIGITS)
    assert restored.device_ == "cpu" and _host_state(restored)


@pytest.mark.slow
def test_gpu_model_unpickles_where_there_is_no_cupy():
    gpu = HashedMLPClassifier(
        hidden_layer_sizes=(16,), max_iter=3, random_state=0, device="cuda"
    ).fit(X_DIGITS, Y_DIGITS)
    code = (
        "import pickle, sys\n"
        "sys.modules['cupy'] = None\n"
        "model, X = pickle.loads(sys.stdin.buffer.read())\n"
        "print(model.set_params(device='cpu').predict(X).tolist())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps((gpu, X_DIGITS[:5])), capture_output=True
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == str(gpu.predict(X_DIGITS[:5]).tolist())


def test_out_of_gpu_memory_is_a_memory_error_that_names_the_knobs(cuda):
    cp = cuda.cp
    pool = cp.cuda.MemoryPool()
    pool.set_limit(size=1 << 20)  # 1 MiB: the data alone does not fit
    cp.cuda.set_allocator(pool.malloc)
    try:
        clf = HashedMLPClassifier(hidden_layer_sizes=(512,), device="cuda", max_iter=2)
        with pytest.raises(MemoryError, match="max_tile_bytes.*batch_size"):
            clf.fit(np.tile(X_DIGITS, (4, 1)), np.tile(Y_DIGITS, 4))
        assert not hasattr(clf, "bucket_weights_")
    finally:
        cp.cuda.set_allocator(cp.get_default_memory_pool().malloc)


@pytest.mark.parametrize("tile_bytes", [64 * 2**20, 4096])  # one tile, and many
@pytest.mark.parametrize("hashing", ["element", "block"])
def test_hashed_layer_on_the_gpu_matches_the_cpu(cuda, tile_bytes, hashing):
    cp = cuda.cp
    rng = np.random.default_rng(0)
    n_in, n_out, n_buckets = 300, 517, 10_007
    w = rng.standard_normal(n_buckets).astype(np.float32)
    A = rng.standard_normal((64, n_in)).astype(np.float32)
    D = rng.standard_normal((64, n_out)).astype(np.float32)
    layers = [
        HashedLayer(
            backend, n_in, n_out, 12345, True, np.float32, tile_bytes, hashing, n_buckets=n_buckets
        )
        for backend in (CPUBackend(), cuda.backend)
    ]
    cpu, gpu = layers
    np.testing.assert_allclose(
        cp.asnumpy(gpu.dot(cp.asarray(A), cp.asarray(w))), cpu.dot(A, w), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        cp.asnumpy(gpu.dot_transposed(cp.asarray(D), cp.asarray(w))),
        cpu.dot_transposed(D, w),
        rtol=1e-4,
        atol=1e-4,
    )
    expected = cpu.bucket_grad(A, D, np.empty(n_buckets, np.float32))
    got = gpu.bucket_grad(cp.asarray(A), cp.asarray(D), cp.empty(n_buckets, np.float32))
    np.testing.assert_allclose(cp.asnumpy(got), expected, rtol=1e-4, atol=1e-3)


def test_training_data_goes_to_the_gpu_once_per_fit(cuda, monkeypatch):
    copies = []
    to_device = type(cuda.backend).to_device

    def counting(self, a):
        copies.append(getattr(a, "shape", None))
        return to_device(self, a)

    monkeypatch.setattr(type(cuda.backend), "to_device", counting)
    HashedMLPClassifier(hidden_layer_sizes=(32,), max_iter=4, random_state=0, device="cuda").fit(
        X_DIGITS, Y_DIGITS
    )
    assert copies.count(X_DIGITS.shape) == 1


# An int, and "auto": 64 x 1100 at compression 1/2 is 35200 buckets, 16 shards
# of 2200; 1100 x 10 is 5500 buckets, 10 shards (none of fewer than 512). 16
# shards of the 8 x 8 digits take their empty left and right columns whole:
# the fit warns of it (tests/test_shards.py), both devices alike.
@pytest.mark.filterwarnings("ignore:4 of the first layer's 16 hash shards:UserWarning")
@pytest.mark.parametrize(
    "hash_shards, hidden_layer_sizes, compression, shards",
    [(3, (64, 32), 1 / 8, [3, 3, 3]), ("auto", (1100,), 1 / 2, [16, 10])],
)
def test_sharded_fit_matches_the_cpu(hash_shards, hidden_layer_sizes, compression, shards):
    X, y = X_DIGITS[:300], Y_DIGITS[:300]
    params = dict(
        hidden_layer_sizes=hidden_layer_sizes,
        compression=compression,
        hash_shards=hash_shards,
        max_iter=1,
        random_state=0,
    )
    cpu = HashedMLPClassifier(**params, device="cpu").fit(X, y)
    gpu = HashedMLPClassifier(**params, device="cuda").fit(X, y)
    assert gpu.device_ == "cuda" and _host_state(gpu)
    assert list(gpu.hash_shards_) == list(cpu.hash_shards_) == shards
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), rtol=1e-4, atol=1e-6)
