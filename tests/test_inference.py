"""The prediction plan (``_inference``, issue 21): agreement, invalidation, threads, memory.

The "old path" below is prediction as it was before the plan: the layers'
``HashedLayer.dot`` (materialise tile by tile, then BLAS) on every call.
"""

import io
import pickle
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import joblib
import numba
import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from _hash_vectors import sharded_layer_hash
from sklearn.datasets import load_digits
from test_devices import numpy_device  # noqa: F401 - a fixture

from sk_hashednets import HashedMLPClassifier, HashedMLPRegressor, save
from sk_hashednets._base import ACTIVATIONS
from sk_hashednets._inference import _PLANS, DIRECT_MAX_BATCH
from sk_hashednets._kernels import get_backend
from sk_hashednets._kernels._cpu import CPUBackend
from sk_hashednets._kernels._numba_predict import TABLE_CHUNK_COLUMNS, block_table_nbytes
from sk_hashednets._kernels._reference import materialize
from sk_hashednets._kernels._vector_run import (
    LANES,
    lanes_fma,
    lanes_fma_wrapped,
    signed_run_fma,
    store_lanes,
    zero_lanes,
)

X_ALL, Y_ALL = load_digits(return_X_y=True)
X_ALL = X_ALL[:400] / 16
Y_ALL = Y_ALL[:400]
# Hidden layers wider than one chunk of the direct kernel (64 columns), not a
# multiple of a hashing block (16), and a last layer of 10.
ARCH = dict(hidden_layer_sizes=(100, 70), max_iter=3, random_state=0, compression=0.2)


def _old_path(model, X):
    """The network's output as ``_forward_pass_fast`` computed it before the plan."""
    layers = model._hashed_layers(get_backend("cpu"), model.bucket_weights_[0].dtype)
    activation = X
    for i, layer in enumerate(layers):
        activation = layer.dot(activation, model.bucket_weights_[i])
        activation += model.intercepts_[i]
        if i != len(layers) - 1:
            ACTIVATIONS[model.activation](activation)
    ACTIVATIONS[model.out_activation_](activation)
    return activation


def _fit(dtype=np.float32, **params):
    return HashedMLPClassifier(**{**ARCH, **params}).fit(X_ALL.astype(dtype), Y_ALL)


def _batches(X):
    """Batches that take the direct kernel (1, under block hashing) and the panels (more)."""
    assert DIRECT_MAX_BATCH["block"] >= 1
    return [X[:1], X[:7], X[:32], X[:33], X]


# ----------------------------------------------------------------------------
# Agreement with the old path
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("cache", [None, 0])
@pytest.mark.parametrize("max_tile_bytes", [2**26, 3000])
def test_predictions_agree_with_the_old_path(hashing, dtype, sparse, cache, max_tile_bytes):
    params = dict(hashing=hashing, max_tile_bytes=max_tile_bytes)
    if cache is not None:
        params["inference_cache_bytes"] = cache
    clf = _fit(dtype, **params)
    atol = 1e-5 if dtype == np.float32 else 1e-12
    for X in _batches(X_ALL.astype(dtype)):
        expected = _old_path(clf, X)
        X_in = sp.csr_matrix(X) if sparse else X
        got = clf.predict_proba(X_in)
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
        np.testing.assert_allclose(clf.predict_log_proba(X_in), np.log(got), rtol=1e-6)
    assert clf.score(X_ALL.astype(dtype), Y_ALL) == np.mean(clf.predict(X_ALL) == Y_ALL)


@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("cache", [0, 3000])  # lean: hashed runs; 3000: layer 0 has tables
def test_a_sharded_model_predicts_small_batches_from_its_buckets(hashing, cache):
    # The direct kernels read each row's shard of buckets: no panels for small
    # batches. (Element hashing builds its tables but predicts through panels,
    # DIRECT_MAX_BATCH["element"] being 0; its kernel is checked below.)
    clf = _fit(hashing=hashing, hash_shards=4, inference_cache_bytes=cache)
    assert list(clf.hash_shards_[:2]) == [4, 4]
    for X in _batches(X_ALL.astype(np.float32)):
        np.testing.assert_allclose(clf.predict_proba(X), _old_path(clf, X), rtol=0, atol=1e-5)
    layers = _PLANS[clf].layers
    assert all(layer.direct is not None for layer in layers[:2])  # the sharded layers
    tables = cache > 0 and hashing == "block"
    assert layers[0].direct_kernel == ("block tables" if tables else hashing)


def test_kept_matrices_give_the_old_paths_bits():
    """Untiled layers kept by the plan multiply as the old path did: the same bits."""
    clf = _fit()
    for X in _batches(X_ALL.astype(np.float32)):
        np.testing.assert_array_equal(clf.predict_proba(X), _old_path(clf, X))


def test_float64_input_to_a_float32_model_computes_as_before():
    clf = _fit(np.float32, inference_cache_bytes=0)
    for X in _batches(X_ALL):  # float64
        expected = _old_path(clf, X)
        assert expected.dtype == np.float64
        np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=0, atol=1e-6)


def test_regressor_agrees_with_the_old_path():
    reg = HashedMLPRegressor(**ARCH, inference_cache_bytes=0, hashing="block")
    reg.fit(X_ALL.astype(np.float32), Y_ALL / 10)
    for X in _batches(X_ALL.astype(np.float32)):
        np.testing.assert_allclose(reg.predict(X), _old_path(reg, X).ravel(), atol=1e-5)


# ----------------------------------------------------------------------------
# The direct kernel against the plain-NumPy reference
# ----------------------------------------------------------------------------


#: Unsharded, and 5 shards under both layouts (``docs/hashing.md``): with 7
#: buckets a shard holds 1 or 2, and every block run wraps round its shard.
SHARDINGS = [(1, "cyclic"), (5, "cyclic"), (5, "contiguous")]


def _layer_hash(seed, sign_hash, hashing, n_buckets, n_in, sharding):
    n_shards, layout = sharding
    return sharded_layer_hash(hashing, sign_hash, n_buckets, n_shards, n_in, layout, seed=seed)


def _reference(w, seed, n_in, n_out, sign_hash, hashing, sharding):
    """The virtual matrix by the NumPy specification."""
    n_shards, layout = sharding
    return materialize(
        w,
        seed,
        n_in,
        n_out,
        sign_hash=sign_hash,
        hashing=hashing,
        n_shards=n_shards,
        shard_layout=layout,
    )


@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("n_buckets", [7, 300])  # 7 < 16: block runs wrap around
@pytest.mark.parametrize("sign_hash", [True, False])
@pytest.mark.parametrize("sharding", SHARDINGS)
def test_direct_kernel_matches_the_reference(hashing, n_buckets, sign_hash, sharding):
    rng = np.random.RandomState(0)
    n_in, n_out, seed = 37, 150, 123456789
    w = rng.randn(n_buckets)
    A = rng.randn(5, n_in)
    A[:, [3, 20]] = 0  # rows of W that the kernel skips
    W = _reference(w, seed, n_in, n_out, sign_hash, hashing, sharding)
    backend = CPUBackend()
    layer_hash = _layer_hash(seed, sign_hash, hashing, w.size, n_in, sharding)
    tables = backend.direct_tables(layer_hash, n_in, n_out)
    out = np.empty((5, n_out))
    backend.direct_matmul(layer_hash, np.ascontiguousarray(A.T), w, tables, out)
    np.testing.assert_allclose(out, A @ W, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("sharding", SHARDINGS)
def test_direct_kernel_gives_the_same_bits_whatever_the_threads(hashing, sharding):
    rng = np.random.RandomState(0)
    n_in, n_out, seed = 300, 1000, 99
    w, A = rng.randn(5000).astype(np.float32), rng.randn(3, n_in).astype(np.float32)
    backend = CPUBackend()
    layer_hash = _layer_hash(seed, True, hashing, w.size, n_in, sharding)
    tables = backend.direct_tables(layer_hash, n_in, n_out)
    before = numba.get_num_threads()
    outputs = []
    try:
        for threads in range(1, before + 1):
            numba.set_num_threads(threads)
            out = np.empty((3, n_out), np.float32)
            backend.direct_matmul(layer_hash, np.ascontiguousarray(A.T), w, tables, out)
            outputs.append(out)
    finally:
        numba.set_num_threads(before)
    for out in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0])


def _table_product(A, w, seed, n_out, sign_hash, sharding=(1, "cyclic")):
    """``A @ W`` by the block-table kernel, and its tables."""
    backend = CPUBackend()
    n_in = A.shape[1]
    layer_hash = _layer_hash(seed, sign_hash, "block", w.size, n_in, sharding)
    tables = backend.direct_tables(
        layer_hash, n_in, n_out, max_bytes=block_table_nbytes(n_in, n_out)
    )
    assert tables.kernel == "block tables"
    out = np.empty((A.shape[0], n_out), np.result_type(A, w))
    backend.direct_matmul(layer_hash, np.ascontiguousarray(A.T), w, tables, out)
    return out, tables


@pytest.mark.parametrize("n_buckets", [7, 300])  # 7: every run wraps; 300: some near the end
@pytest.mark.parametrize("sign_hash", [True, False])
@pytest.mark.parametrize(
    "a_dtype, w_dtype, sharding",
    # Every dtype pair unsharded; the shards (their bounds a compilation of
    # their own per dtype pair) in float32.
    [(np.float32, np.float32, s) for s in SHARDINGS]
    + [(np.float64, np.float64, SHARDINGS[0]), (np.float64, np.float32, SHARDINGS[0])],
)
@pytest.mark.parametrize("batch", [1, 5])
def test_block_table_kernel_matches_the_reference(
    n_buckets, sign_hash, a_dtype, w_dtype, batch, sharding
):
    rng = np.random.RandomState(0)
    # Two chunks of TABLE_CHUNK_COLUMNS, the second partial, and a partial last run.
    n_in, n_out, seed = 37, TABLE_CHUNK_COLUMNS + 75, 123456789
    w = rng.randn(n_buckets).astype(w_dtype)
    A = rng.randn(batch, n_in).astype(a_dtype)
    A[:, [3, 20]] = 0  # rows of W that the kernel skips
    W = _reference(w, seed, n_in, n_out, sign_hash, "block", sharding)
    out, tables = _table_product(A, w, seed, n_out, sign_hash, sharding)
    dtype = np.result_type(a_dtype, w_dtype)
    assert out.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, A @ W, rtol=tol, atol=tol)
    firsts, ends = tables.bounds
    assert (firsts is None) == (sharding[0] == 1)  # unsharded: all the buckets, no bounds
    if firsts is None:
        firsts, ends = 0, n_buckets
    assert (tables.starts + 16 > ends).any()  # some runs wrap round their rows' buckets
    assert ((firsts <= tables.starts) & (tables.starts < ends)).all()  # within the shard
    assert sign_hash == bool(tables.signs.any())


@numba.njit(fastmath={"contract"})
def _scalar_run(acc, c, w, start, a, bits):
    """The loop that :func:`signed_run_fma` replaces, with the same fused multiply-adds."""
    for t in range(LANES):
        acc[c + t] += (-a if (bits >> t) & 1 else a) * w[start + t]


@numba.njit
def _vector_run(acc, c, w, start, a, bits):
    signed_run_fma(acc, c, w, start, a, bits)


@pytest.mark.parametrize(
    "acc_dtype, w_dtype",
    [(np.float32, np.float32), (np.float64, np.float64), (np.float64, np.float32)],
)
def test_the_vector_run_is_the_scalar_loop_bit_for_bit(acc_dtype, w_dtype):
    rng = np.random.RandomState(0)
    w = rng.randn(100).astype(w_dtype)
    w.flags.writeable = False  # as the plan's buckets are
    for bits in [0, 0xFFFF, 0x8001, 0x5A5A, *rng.randint(0, 2**16, size=20)]:
        acc = rng.randn(3 * LANES).astype(acc_dtype)
        start, c, a = int(rng.randint(0, 100 - LANES + 1)), int(rng.randint(0, 2 * LANES + 1)), 0.7
        expected, got = acc.copy(), acc.copy()
        _scalar_run(expected, c, w, start, acc_dtype(a), bits)
        _vector_run(got, c, w, start, acc_dtype(a), bits)
        np.testing.assert_array_equal(got, expected, strict=True)
        # Exactly the 16 lanes of the run, each with the sign of its bit.
        changed = np.flatnonzero(got != acc)
        assert set(changed) <= set(range(c, c + LANES))
        signs = np.where([(bits >> t) & 1 for t in range(LANES)], -1, 1)
        np.testing.assert_allclose(
            got[c : c + LANES] - acc[c : c + LANES],
            signs * a * w[start : start + LANES].astype(acc_dtype),
            rtol=1e-5,
            atol=1e-6,
        )


@numba.njit(fastmath={"contract"})
def _scalar_column(out, w, starts, a, bits):
    """A run column summed by the scalar loop, bucket ``(start + t) % len(w)`` for lane ``t``."""
    for r in range(starts.shape[0]):
        for t in range(LANES):
            v = w[(starts[r] + t) % w.shape[0]]
            out[t] += (-a[r] if (bits[r] >> t) & 1 else a[r]) * v


@numba.njit
def _lanes_column(out, w, starts, a, bits):
    lanes = zero_lanes(out)
    for r in range(starts.shape[0]):
        if starts[r] + LANES <= w.shape[0]:
            lanes = lanes_fma(lanes, w, starts[r], a[r], bits[r])
        else:
            lanes = lanes_fma_wrapped(lanes, w, starts[r], a[r], bits[r])
    store_lanes(out, 0, lanes)


@pytest.mark.parametrize(
    "acc_dtype, w_dtype",
    [(np.float32, np.float32), (np.float64, np.float64), (np.float64, np.float32)],
)
@pytest.mark.parametrize("n_buckets", [7, 100])  # 7: every run wraps around
def test_a_column_in_lanes_is_the_scalar_loop_bit_for_bit(acc_dtype, w_dtype, n_buckets):
    rng = np.random.RandomState(1)
    w = rng.randn(n_buckets).astype(w_dtype)
    w.flags.writeable = False
    n_rows = 50
    starts = rng.randint(0, n_buckets, size=n_rows).astype(np.int64)
    bits = rng.randint(0, 2**16, size=n_rows).astype(np.int64)
    a = rng.randn(n_rows).astype(acc_dtype)
    expected, got = np.zeros(LANES, acc_dtype), np.full(LANES, np.nan, acc_dtype)
    _scalar_column(expected, w, starts, a, bits)
    _lanes_column(got, w, starts, a, bits)
    np.testing.assert_array_equal(got, expected, strict=True)
    wraps = starts + LANES > n_buckets  # both kinds of run, where n_buckets allows
    assert wraps.any() and wraps.all() == (n_buckets == 7)


def test_block_table_kernel_gives_the_same_bits_whatever_the_threads():
    rng = np.random.RandomState(0)
    w, A = rng.randn(5000).astype(np.float32), rng.randn(3, 300).astype(np.float32)
    n_out = 3 * TABLE_CHUNK_COLUMNS - 40
    before = numba.get_num_threads()
    outputs = []
    try:
        for threads in range(1, before + 1):
            numba.set_num_threads(threads)
            for batch in (1, 3):
                outputs.append(_table_product(A[:batch], w, 99, n_out, True)[0])
    finally:
        numba.set_num_threads(before)
    for i, out in enumerate(outputs[2:]):
        np.testing.assert_array_equal(out, outputs[i % 2])
    # One row alone or among others: the same products (the sign on the input or the weight).
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])


def test_tables_count_against_the_cache_budget():
    # Layer 0 (64 x 100): its matrix (25,600 bytes) is not kept, its tables
    # (64 x 7 runs x 6 = 2,688 bytes) fit; what is left (312) fits no more.
    clf = _fit(hashing="block", inference_cache_bytes=3000)
    for X in _batches(X_ALL.astype(np.float32)):
        np.testing.assert_allclose(clf.predict_proba(X), _old_path(clf, X), rtol=0, atol=1e-5)
    plan = _PLANS[clf]
    assert [layer.direct_kernel for layer in plan.layers] == ["block tables", "block", "block"]
    assert [layer.matrix is None for layer in plan.layers] == [True, True, True]
    assert plan.layers[0].table_nbytes == block_table_nbytes(64, 100) == 2688
    assert clf.memory_footprint()["plan"] == plan.nbytes >= 2688
    # Lean mode (no budget): no tables, the runs are hashed at each call.
    clf.set_params(inference_cache_bytes=0).predict(X_ALL[:1])
    assert [layer.direct_kernel for layer in _PLANS[clf].layers] == ["block"] * 3
    assert all(layer.table_nbytes == 0 for layer in _PLANS[clf].layers)


# ----------------------------------------------------------------------------
# The checks of a call
# ----------------------------------------------------------------------------


def test_the_common_inputs_checks_refuse_what_validation_refuses():
    clf = _fit()
    X = X_ALL[:3].astype(np.float32)
    np.testing.assert_array_equal(clf.predict_proba(X), _old_path(clf, X))
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[_old_path(clf, X).argmax(axis=1)])
    bad = X.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(bad)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :10])
    with sklearn.config_context(assume_finite=True):
        clf.predict(X)  # nothing checked, nothing refused
    pd = pytest.importorskip("pandas")
    named = _fit().fit(pd.DataFrame(X_ALL, columns=[f"f{i}" for i in range(64)]), Y_ALL)
    with pytest.warns(UserWarning, match="feature names"):
        named.predict(X)


# ----------------------------------------------------------------------------
# The plan follows the model
# ----------------------------------------------------------------------------


def _assert_follows(clf, X=X_ALL[:40]):
    X = X.astype(clf.bucket_weights_[0].dtype)
    np.testing.assert_allclose(clf.predict_proba(X), _old_path(clf, X), rtol=0, atol=1e-5)


@pytest.mark.parametrize("cache", [None, 0])
def test_plan_follows_fit_partial_fit_and_set_params(cache):
    params = {} if cache is None else {"inference_cache_bytes": cache}
    clf = _fit(**params)
    first = clf.predict_proba(X_ALL[:40])
    clf.partial_fit(X_ALL.astype(np.float32), Y_ALL)  # trains the read-only arrays: thawed
    assert not np.array_equal(clf.predict_proba(X_ALL[:40]), first)
    _assert_follows(clf)
    clf.set_params(random_state=1).fit(X_ALL.astype(np.float32), Y_ALL)
    _assert_follows(clf)
    clf.set_params(activation="tanh")
    _assert_follows(clf)
    clf.activation = "logistic"  # even without set_params
    _assert_follows(clf)
    clf.set_params(inference_cache_bytes=0, max_tile_bytes=1000)
    _assert_follows(clf)


def test_plan_sees_new_arrays_assigned():
    clf = _fit()
    clf.predict(X_ALL[:5])
    clf.bucket_weights_[0] = clf.bucket_weights_[0] * 2  # a new array in the list
    _assert_follows(clf)
    clf.intercepts_[1] = clf.intercepts_[1] + 1
    _assert_follows(clf)
    clf.bucket_weights_ = [w[::-1].copy() for w in clf.bucket_weights_]  # a new list
    _assert_follows(clf)
    clf.intercepts_ = [b - 1 for b in clf.intercepts_]
    _assert_follows(clf)


def test_in_place_changes_are_refused_or_seen():
    clf = _fit()
    assert clf.bucket_weights_[0].flags.writeable  # only trained: nothing frozen
    clf.predict(X_ALL[:5])
    with pytest.raises(ValueError, match="read-only"):
        clf.bucket_weights_[0][0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        clf.intercepts_[0] += 1
    # A user who makes an array writeable again is seen.
    clf.bucket_weights_[1].setflags(write=True)
    clf.bucket_weights_[1] *= -1
    _assert_follows(clf)
    assert not clf.bucket_weights_[1].flags.writeable


def test_a_view_assigned_is_copied_so_that_no_write_goes_unseen():
    clf = _fit()
    base = np.concatenate([clf.bucket_weights_[0], np.zeros(3, np.float32)])
    clf.bucket_weights_[0] = base[:-3]
    _assert_follows(clf)
    assert clf.bucket_weights_[0].base is None and not clf.bucket_weights_[0].flags.writeable
    base[:] = 0  # no longer the model's memory
    _assert_follows(clf)


# ----------------------------------------------------------------------------
# Never pickled or saved; nothing for a model that is only trained
# ----------------------------------------------------------------------------


def _pickled(obj, protocol=pickle.HIGHEST_PROTOCOL):
    return pickle.dumps(obj, protocol=protocol)


def test_plan_is_never_pickled_or_saved(tmp_path):
    clf = _fit()
    assert clf not in _PLANS and clf.memory_footprint()["plan"] == 0
    # Protocol 4: protocol 5 writes a read-only array a few bytes shorter.
    size, saved = len(_pickled(clf, protocol=4)), io.BytesIO()
    save(clf, saved)
    expected = clf.predict_proba(X_ALL)
    footprint = clf.memory_footprint()
    assert footprint["plan"] >= sum(n_in * n_out * 4 for n_in, n_out in [(64, 100), (100, 70)])
    assert footprint["indexes"] == 0  # fit keeps no bucket index
    assert footprint["total"] == footprint["parameters"] + footprint["plan"]
    assert len(_pickled(clf, protocol=4)) == size
    after = io.BytesIO()
    save(clf, after)
    assert len(after.getvalue()) == len(saved.getvalue())
    joblib.dump(clf, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    assert loaded not in _PLANS and loaded.memory_footprint()["plan"] == 0
    np.testing.assert_array_equal(loaded.predict_proba(X_ALL), expected)
    assert not any("plan" in name for name in vars(clf))
    # Arrays unpickled from read-only ones (protocol 5) train on.
    for model in (loaded, pickle.loads(_pickled(clf))):
        model.partial_fit(X_ALL.astype(np.float32), Y_ALL)
        _assert_follows(model)


# ----------------------------------------------------------------------------
# Threads
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"inference_cache_bytes": 0, "hashing": "block"}])
def test_eight_threads_give_the_bits_of_serial_calls(params):
    clf = _fit(**params)
    batches = [X_ALL[i : i + n].astype(np.float32) for i, n in enumerate([1, 5, 32, 33, 200] * 4)]
    serial_clf = pickle.loads(_pickled(clf))
    expected = [serial_clf.predict_proba(X) for X in batches]
    start = threading.Barrier(8)

    def predict(X, wait):
        if wait:
            start.wait()
        return clf.predict_proba(X)

    # The first eight calls race to build the plan, then all predict at once.
    waits = [True] * 8 + [False] * (len(batches) - 8)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(predict, batches, waits))
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


# ----------------------------------------------------------------------------
# Memory of a call beyond the cache
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("n_rows", [1, 100])
def test_a_lean_call_holds_no_whole_virtual_matrix(n_rows):
    X = np.random.RandomState(0).rand(n_rows, 64)
    y = np.arange(n_rows) % 3
    tile = 64 * 2**10
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(1000, 1000), max_iter=1, inference_cache_bytes=0, max_tile_bytes=tile
    )
    clf.fit(np.vstack([X, X]), np.concatenate([y, y]))
    clf.predict(X)  # the plan and the kernels, first
    matrix = 1000 * 1000 * 8
    tracemalloc.start()
    clf.predict(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    activations = 4 * n_rows * 1000 * 8
    assert peak < tile + activations + 32 * 2**10 < matrix


# ----------------------------------------------------------------------------
# The device path: buckets stay on the device
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("cache", [None, 0])
def test_device_plan_moves_no_buckets_after_the_first_call(numpy_device, cache):  # noqa: F811
    params = {} if cache is None else {"inference_cache_bytes": cache}
    backend = numpy_device()
    X = X_ALL.astype(np.float32)
    clf = HashedMLPClassifier(**ARCH, **params, device="cuda").fit(X, Y_ALL)
    cpu = HashedMLPClassifier(**ARCH, **params, device="cpu").fit(X, Y_ALL)
    first = clf.predict_proba(X)
    np.testing.assert_allclose(first, cpu.predict_proba(X), rtol=0, atol=1e-5)
    backend.to_device_shapes.clear()
    for X_batch in (X[:1], X[:40], X):
        np.testing.assert_allclose(
            clf.predict_proba(X_batch), cpu.predict_proba(X_batch), rtol=0, atol=1e-5
        )
    assert backend.to_device_shapes == [(1, 64), (40, 64), (400, 64)]  # the input only
    kept = clf.memory_footprint()["plan"]
    assert kept >= clf.memory_footprint()["parameters"]  # device copies of the buckets
    clf.partial_fit(X, Y_ALL)
    backend.to_device_shapes.clear()
    clf.predict(X[:1])
    assert len(backend.to_device_shapes) > 1  # a new state: a new plan, copied once
