"""Sharded hashing (issue 18): the specification, its test vectors, the Numba kernels.

``docs/hashing.md`` ("Sharded hashing") is the specification; the NumPy
``hash_pairs`` and ``_reference`` implement it; the Numba kernels are checked
against them bit for bit, the scatter in the order of additions it documents.
"""

import os
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from _gradients import loss_and_grad_function
from _hash_vectors import SHARD_VECTORS, sharded_layer_hash
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sk_hashednets import (
    HASH_SPEC_VERSION,
    HashedMLPClassifier,
    HashedMLPRegressor,
    ModelFileError,
    load,
    save,
)
from sk_hashednets._hashed_layer import HashedLayer
from sk_hashednets._kernels import _reference as ref
from sk_hashednets._kernels._backend import LayerHash
from sk_hashednets._kernels._cpu import CPUBackend
from sk_hashednets._kernels._hashing import (
    AUTO_MIN_SHARD_BUCKETS,
    AUTO_MIN_SHARDS,
    AUTO_SHARD_BUCKETS,
    auto_shards,
    hash_pairs,
)
from sk_hashednets._layout import first_layer_shard_shares
from sk_hashednets._multilayer_perceptron import _pack

CPU = CPUBackend()
HASHINGS = ("element", "block")
#: Version 3's layout first, then version 2's.
LAYOUTS = ("cyclic", "contiguous")


def _hashing(block):
    return "block" if block else "element"


def _shard_rows(shard, n_rows, n_shards, layout):
    """The rows of ``shard``, by the document's words: every S-th row, or a block of rows."""
    if layout == "cyclic":
        return range(shard, n_rows, n_shards)
    return range(shard * n_rows // n_shards, (shard + 1) * n_rows // n_shards)


def test_doc_vectors_cover_edge_cases():
    for layout in LAYOUTS:
        vectors = [v[1:] for v in SHARD_VECTORS if v[0] == layout]
        Ss = {v[4] for v in vectors}
        assert 1 in Ss and any(v[4] == v[3] for v in vectors)  # S = 1 and S = K
        assert {v[6] for v in vectors} == {0, 1}
        assert max(v[1] for v in vectors) > 2**32 - 8  # rows near the top of the range
        assert max(v[3] for v in vectors) == 2**32 - 1
    # The two layouts' tables differ where the shards differ.
    cyclic = {v[1:8]: v[-2:] for v in SHARD_VECTORS if v[0] == "cyclic"}
    contiguous = {v[1:8]: v[-2:] for v in SHARD_VECTORS if v[0] == "contiguous"}
    assert cyclic[(0, 9, 1, 1000, 4, 2**32 - 1, 0)] != contiguous[(0, 9, 1, 1000, 4, 10, 0)]


@pytest.mark.parametrize("vector", SHARD_VECTORS, ids=str)
def test_doc_vectors_numpy_spec(vector):
    layout, seed, i, j, k, s, n_rows, block, shard, first, k_s, bucket, sign = vector
    # The shard and its buckets by the formulas of the document, in Python ints.
    period = s if layout == "cyclic" else n_rows
    assert shard == ((i % period + 1) * s - 1) // period
    assert i in _shard_rows(shard, max(n_rows, i + 1), s, layout)
    assert (first, k_s) == (shard * k // s, (shard + 1) * k // s - shard * k // s)
    got = hash_pairs(seed, i, j, k, _hashing(block), n_shards=s, n_rows=n_rows, shard_layout=layout)
    assert (int(got[0]), int(got[1])) == (bucket, sign)
    if layout == "cyclic" and s <= i + 1:  # any n_rows above i: the same bucket
        got = hash_pairs(seed, i, j, k, _hashing(block), n_shards=s, n_rows=i + 1)
        assert (int(got[0]), int(got[1])) == (bucket, sign)
    # The unsharded hash with the shard's K_s buckets, offset by its first bucket.
    local, local_sign = hash_pairs(seed, i, j, k_s, _hashing(block))
    assert (first + int(local), int(local_sign)) == (bucket, sign)


@pytest.mark.parametrize(
    "vector", [v for v in SHARD_VECTORS if v[4] <= 2**31 and v[3] < 2**17], ids=str
)
def test_doc_vectors_numba_index_tile(vector):
    layout, seed, i, j, k, s, n_rows, block, _, _, _, bucket, sign = vector
    layer_hash = LayerHash.for_layer(
        seed,
        sign_hash=True,
        hashing=_hashing(block),
        n_buckets=k,
        n_shards=s,
        n_rows=n_rows,
        shard_layout=layout,
    )
    index = np.empty((1, j + 1), dtype=np.uint32)
    CPU.bucket_index_tile(layer_hash, index, row_start=i)
    entry = int(index[0, j])
    assert (entry & (2**31 - 1), -1 if entry >> 31 else 1) == (bucket, sign)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("hashing", HASHINGS)
def test_every_shard_reads_only_its_own_buckets(hashing, layout):
    n_rows, n_cols, k, s = 37, 100, 300, 7
    bucket, _ = hash_pairs(
        11, np.arange(n_rows)[:, None], np.arange(n_cols)[None, :], k, hashing, s, n_rows, layout
    )
    for shard in range(s):
        rows = _shard_rows(shard, n_rows, s, layout)
        assert len(rows) in (n_rows // s, n_rows // s + 1)  # balanced in both layouts
        lo, hi = shard * k // s, (shard + 1) * k // s
        shard_buckets = bucket[list(rows)]
        assert shard_buckets.min() >= lo and shard_buckets.max() < hi
        # Every bucket of the shard is read (n_cols * rows >> K_s): the range is used whole.
        assert len(np.unique(shard_buckets)) == hi - lo


def test_the_layouts_differ_only_in_which_rows_a_shard_takes():
    i, j = np.arange(40)[:, None], np.arange(30)[None, :]
    for hashing in HASHINGS:
        cyclic = hash_pairs(3, i, j, 800, hashing, 8, 40, "cyclic")
        contiguous = hash_pairs(3, i, j, 800, hashing, 8, 40, "contiguous")
        assert not np.array_equal(cyclic[0], contiguous[0])
        assert_array_equal(cyclic[1], contiguous[1])  # the sign is the unsharded one
        # Row 0 is in shard 0 in both layouts, and row 39 in shard 7.
        assert_array_equal(cyclic[0][[0, 39]], contiguous[0][[0, 39]])
    with pytest.raises(ValueError, match="shard layout must be 'cyclic' or 'contiguous'"):
        hash_pairs(3, i, j, 800, "element", 8, 40, "strided")


def test_one_shard_is_the_unsharded_hash():
    i, j = np.arange(20)[:, None], np.arange(33)[None, :]
    for hashing in HASHINGS:
        expected = hash_pairs(5, i, j, 97, hashing)
        got = hash_pairs(5, i, j, 97, hashing, n_shards=1, n_rows=20)
        assert_array_equal(got[0], expected[0])
        assert_array_equal(got[1], expected[1])


#: The seed of the sharded hashes built here.
SEED = 2**32 - 3


#: (n_in, n_out, K, S): shards of unequal rows and buckets, S = n_in, S = K.
SHAPES = [(45, 37, 500, 7), (16, 40, 300, 16), (30, 21, 9, 9), (64, 129, 4096, 3)]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("hashing", HASHINGS)
@pytest.mark.parametrize("sign_hash", [True, False])
@pytest.mark.parametrize("n_in, n_out, n_buckets, n_shards", SHAPES)
def test_materialize_matches_reference_in_any_tiles(
    hashing, sign_hash, n_in, n_out, n_buckets, n_shards, layout
):
    layer_hash = sharded_layer_hash(
        hashing, sign_hash, n_buckets, n_shards, n_in, layout, seed=SEED
    )
    w = np.random.default_rng(0).standard_normal(n_buckets)
    expected = ref.materialize(
        w,
        int(layer_hash.seed),
        n_in,
        n_out,
        sign_hash,
        hashing=hashing,
        n_shards=n_shards,
        shard_layout=layout,
    )
    whole = np.empty((n_in, n_out))
    CPU.materialize_tile(layer_hash, w, whole)
    assert_array_equal(whole, expected, strict=True)
    # Tiles that start inside shards and inside blocks of block hashing.
    for r0, r1, c0, c1 in [(3, 11, 5, 21), (n_in - 4, n_in, 0, n_out), (1, 2, n_out - 3, n_out)]:
        tile = np.empty((r1 - r0, c1 - c0))
        CPU.materialize_tile(layer_hash, w, tile, row_start=r0, col_start=c0)
        assert_array_equal(tile, expected[r0:r1, c0:c1], strict=True)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("hashing", HASHINGS)
@pytest.mark.parametrize("n_in, n_out, n_buckets, n_shards", SHAPES)
def test_index_tile_gathers_the_reference(hashing, n_in, n_out, n_buckets, n_shards, layout):
    layer_hash = sharded_layer_hash(hashing, True, n_buckets, n_shards, n_in, layout, seed=SEED)
    w = np.random.default_rng(1).standard_normal(n_buckets).astype(np.float32)
    index = np.empty((n_in, n_out), dtype=np.uint32)
    CPU.bucket_index_tile(layer_hash, index)
    out = np.empty((n_in, n_out), dtype=np.float32)
    CPU.gather_tile(w, index, out)
    shard_by_shard = np.empty_like(out)  # the rows visited shard after shard: the same
    CPU.gather_tile(w, index, shard_by_shard, layer_hash=layer_hash)
    assert_array_equal(shard_by_shard, out, strict=True)
    expected = ref.materialize(
        w,
        int(layer_hash.seed),
        n_in,
        n_out,
        True,
        hashing=hashing,
        n_shards=n_shards,
        shard_layout=layout,
    )
    assert_array_equal(out, expected, strict=True)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("hashing", HASHINGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sign_hash", [True, False])
@pytest.mark.parametrize("n_in, n_out, n_buckets, n_shards", SHAPES)
def test_scatter_is_the_row_order_sum_in_any_tiles(
    hashing, dtype, sign_hash, n_in, n_out, n_buckets, n_shards, layout
):
    layer_hash = sharded_layer_hash(
        hashing, sign_hash, n_buckets, n_shards, n_in, layout, seed=SEED
    )
    rng = np.random.default_rng(2)
    grad = rng.standard_normal((n_in, n_out)).astype(dtype)
    start = rng.standard_normal(n_buckets).astype(dtype)  # accumulates into what is there
    expected = start.copy()
    ref.bucket_grad_in_row_order(
        grad, int(layer_hash.seed), expected, sign_hash, 0, hashing, n_shards, n_in, layout
    )
    # Any row tiles, aligned on nothing (within a window of the cyclic layout,
    # across two, across many), and no scratch space.
    tiles = ([0, n_in], [0, 1, 5, 6, n_in - 2, n_in], [0, n_in // 2, n_in], [0, 2, 4, n_in])
    for bounds in tiles:
        got = start.copy()
        for r0, r1 in zip(bounds[:-1], bounds[1:]):
            tile = np.ascontiguousarray(grad[r0:r1])
            CPU.scatter_bucket_grad(layer_hash, tile, got, None, row_start=r0)
        assert_array_equal(got, expected, strict=True)
    # From the bucket index (a training layer that keeps it): the same bits, no scratch.
    index = np.empty((n_in, n_out), dtype=np.uint32)
    CPU.bucket_index_tile(layer_hash, index)
    got = start.copy()
    CPU.scatter_indexed(grad, index, got, None, layer_hash=layer_hash)
    assert_array_equal(got, expected, strict=True)
    # And the float64 reference sum, to rounding.
    total = ref.bucket_grad(
        grad, int(layer_hash.seed), n_buckets, sign_hash, 0, hashing, n_shards, n_in, layout
    )
    np.testing.assert_allclose(got - start, total, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("hashing", HASHINGS)
def test_a_sharded_training_layer_keeps_its_index_with_the_same_bits(hashing):
    n_in, n_out, n_buckets = 37, 23, 101
    layers = [
        HashedLayer(
            CPU,
            n_in,
            n_out,
            7,
            True,
            np.float32,
            hashing=hashing,
            n_buckets=n_buckets,
            keep_index=keep,
            n_shards=5,
        )
        for keep in (False, True)
    ]
    assert [layer.keeps_index for layer in layers] == [False, True]
    rng = np.random.default_rng(3)
    weights = rng.standard_normal(n_buckets).astype(np.float32)
    A = rng.standard_normal((6, n_in)).astype(np.float32)
    D = rng.standard_normal((6, n_out)).astype(np.float32)
    hashed, indexed = (np.empty(n_buckets, dtype=np.float32) for _ in layers)
    layers[0].bucket_grad(A, D, hashed)
    layers[1].bucket_grad(A, D, indexed)
    assert_array_equal(indexed, hashed, strict=True)
    assert_array_equal(layers[1].dot(A, weights), layers[0].dot(A, weights), strict=True)


_THREADS_SCRIPT = """
import sys
import numba
import numpy as np
from sk_hashednets._kernels._backend import LayerHash
from sk_hashednets._kernels._cpu import CPUBackend

results = {}
for hashing, layout in [("element", "cyclic"), ("block", "cyclic"), ("block", "contiguous")]:
    for n_in, n_out, n_buckets, n_shards in [(300, 70, 4000, 40), (257, 33, 999, 5)]:
        layer_hash = LayerHash.for_layer(
            9, sign_hash=True, hashing=hashing, n_buckets=n_buckets,
            n_shards=n_shards, n_rows=n_in, shard_layout=layout,
        )
        grad = np.random.default_rng(4).standard_normal((n_in, n_out)).astype(np.float32)
        for n_threads in (1, 2, 3, 7):
            numba.set_num_threads(n_threads)
            out = np.zeros(n_buckets, dtype=np.float32)
            CPUBackend().scatter_bucket_grad(layer_hash, grad, out, None)
            results[f"{hashing}-{layout}-{n_in}-{n_threads}"] = out
            index = np.empty(grad.shape, dtype=np.uint32)
            CPUBackend().bucket_index_tile(layer_hash, index)
            out = np.zeros(n_buckets, dtype=np.float32)
            CPUBackend().scatter_indexed(grad, index, out, None, layer_hash=layer_hash)
            results[f"{hashing}-{layout}-{n_in}-index{n_threads}"] = out
np.savez(sys.argv[1], **results)
"""


def _run_in_child(script, max_threads, tmp_path):
    """Run ``script`` (which saves an .npz to ``argv[1]``) with up to ``max_threads`` Numba threads.

    Numba's thread count is capped by NUMBA_NUM_THREADS, read at import: a
    child process runs on that many threads whatever the number of cores here.
    """
    path = tmp_path / "results.npz"
    env = {**os.environ, "NUMBA_NUM_THREADS": str(max_threads)}
    completed = subprocess.run(
        [sys.executable, "-c", script, str(path)], env=env, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    with np.load(path) as results:
        return dict(results)


def test_scatter_independent_of_thread_count(tmp_path):
    results = _run_in_child(_THREADS_SCRIPT, 7, tmp_path)
    keys = sorted({name.rsplit("-", 1)[0] for name in results})
    assert len(keys) == 6
    for key in keys:
        for n_threads in (1, 2, 3, 7):
            one = results[f"{key}-1"]
            assert_array_equal(results[f"{key}-{n_threads}"], one, strict=True)
            assert_array_equal(results[f"{key}-index{n_threads}"], one, strict=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_shards": 2}, "n_rows, the rows of the virtual matrix, is needed"),
        ({"n_shards": 11, "n_rows": 10}, r"n_shards must be in \[1, min\(n_rows, n_buckets\)\]"),
        ({"n_shards": 0, "n_rows": 10}, r"n_shards must be in"),
        ({"n_shards": 2, "n_rows": 2**32}, r"n_rows must be in \[1, 2\*\*32\)"),
    ],
)
def test_layer_hash_refuses_impossible_shards(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LayerHash.for_layer(1, sign_hash=True, hashing="element", n_buckets=100, **kwargs)


def test_hash_pairs_refuses_rows_beyond_n_rows():
    with pytest.raises(ValueError, match="below n_rows=10"):
        hash_pairs(1, 10, 0, 100, n_shards=2, n_rows=10)


def test_auto_shards_depend_on_shape_and_buckets_only():
    assert auto_shards(784, 1000) == 1  # fewer than 2 * 512 buckets: one shard
    assert auto_shards(784, 2 * AUTO_MIN_SHARD_BUCKETS) == 2
    assert auto_shards(1000, 1250) == 2  # 1000x10 at 1/8
    assert auto_shards(784, 16 * AUTO_MIN_SHARD_BUCKETS - 1) == 15
    assert auto_shards(784, 98000) == AUTO_MIN_SHARDS == 16  # 784x1000 at 1/8
    assert auto_shards(784, 12250) == 16  # 784x1000 at 1/64
    assert auto_shards(784, 16 * AUTO_SHARD_BUCKETS) == 16
    assert auto_shards(784, 16 * AUTO_SHARD_BUCKETS + 1) == 17  # a shard within 32768 buckets
    assert auto_shards(4096, 4096 * 4096 // 8) == 64
    assert auto_shards(4096, 4096 * 4096 // 64) == 16
    assert auto_shards(3, 10**6) == 3  # capped by the rows
    assert auto_shards(1, 10**6) == 1


# ----------------------------------------------------------------------------
# The estimators' hash_shards
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def _classifier(**kwargs):
    params = dict(hidden_layer_sizes=(40,), max_iter=3, compression=0.5, random_state=0)
    return HashedMLPClassifier(**{**params, **kwargs})


def test_hash_shards_resolve_per_layer(digits):
    X, y = digits
    assert _classifier().fit(X, y).hash_shards_ == [1, 1]
    # 64-40-10 at 1/2: 1280 and 200 buckets; 7 shards, capped by 7 <= rows and buckets.
    assert _classifier(hash_shards=7).fit(X, y).hash_shards_ == [7, 7]
    with pytest.warns(UserWarning, match="of the first layer's 64 hash shards"):
        # 64 shards of 64 digit pixels: a pixel a shard, the empty ones' shards idle.
        assert _classifier(hash_shards=100).fit(X, y).hash_shards_ == [64, 40]
    big = HashedMLPRegressor(hidden_layer_sizes=(300,), max_iter=1, compression=1.0)
    big.set_params(hash_shards="auto").fit(np.zeros((4, 300)), np.zeros(4))
    assert big.hash_shards_ == [auto_shards(300, 90000), 1] == [16, 1]


@pytest.mark.parametrize("hash_shards", [0, -1, "two", 1.5])
def test_hash_shards_are_validated(digits, hash_shards):
    X, y = digits
    with pytest.raises(ValueError, match="hash_shards"):
        _classifier(hash_shards=hash_shards).fit(X, y)


def test_a_sharded_network_learns_another_function_than_the_unsharded(digits):
    X, y = digits
    unsharded = _classifier(max_iter=20).fit(X, y)
    sharded = _classifier(max_iter=20, hash_shards=7).fit(X, y)
    assert not np.allclose(sharded.predict_proba(X), unsharded.predict_proba(X))
    # Digits, 20 epochs: 0.870 sharded, 0.878 unsharded.
    assert sharded.score(X, y) > unsharded.score(X, y) - 0.03


def test_a_fit_warns_of_first_layer_shards_whose_inputs_are_silent(digits):
    X, y = digits
    # 8 x 8 digits and 8 shards: shard s takes image column s, and column 0 is all
    # but empty, and so is column 7 (7 shards: 0.79 of an even share at least).
    with pytest.warns(UserWarning, match=r"2 of the first layer's 8 hash shards \(0, 7\) read"):
        _classifier(hash_shards=8).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        _classifier(hash_shards=7).fit(X, y)
        _classifier(hash_shards=None).fit(X, y)
        _classifier(hash_shards=8).fit(np.zeros_like(X), y)  # no energy at all: nothing to say
    # Images padded to 32 x 32 (sparse too), 32 shards: the border columns' shards.
    padded = np.pad(X.reshape(-1, 8, 8), ((0, 0), (12, 12), (12, 12))).reshape(len(X), -1)
    for data in (padded, sp.csr_matrix(padded)):
        with pytest.warns(UserWarning, match=r"(\d+) of the first layer's 32 hash shards") as w:
            _classifier(hash_shards=32).fit(data, y)
        assert int(str(w[0].message).split()[0]) >= 24  # columns 0-12 and 20-31 hold nothing


def test_shard_shares_are_not_judged_on_few_samples_nor_on_overflowing_data(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        _classifier(hash_shards=8).fit(X[:40], y[:40])  # below IDLE_SHARD_MIN_SAMPLES
    assert first_layer_shard_shares(np.full((3, 4), 1e200), 2, "cyclic") is None
    dense = first_layer_shard_shares(X, 8, "cyclic")
    for sparse in (sp.csr_matrix(X), sp.csc_matrix(X)):
        np.testing.assert_allclose(first_layer_shard_shares(sparse, 8, "cyclic"), dense)


def test_a_partial_fit_stream_is_judged_once_it_has_enough_samples(digits):
    # A first batch below IDLE_SHARD_MIN_SAMPLES is not judged alone: its energy
    # is summed with the next calls' until they have enough, then judged once.
    X, y = digits
    clf = _classifier(hash_shards=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf.partial_fit(X[:40], y[:40], classes=np.unique(y))  # 40 samples: not judged yet
    assert clf._idle_shard_energy[1] == 40
    silent = r"2 of the first layer's 8 hash shards \(0, 7\) read"
    with pytest.warns(UserWarning, match=silent) as w:
        clf.partial_fit(X[40:80], y[40:80])  # 80 samples: judged
    assert w[0].filename == __file__  # the warning points at the caller's line
    assert not hasattr(clf, "_idle_shard_energy")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf.partial_fit(X[80:120], y[80:120])  # judged once: no second warning
        # A new fit starts a new count: its 40 samples, not the stream's too.
        refit = _classifier(hash_shards=8)
        refit.partial_fit(X[:40], y[:40], classes=np.unique(y))
        warnings.simplefilter("ignore", ConvergenceWarning)
        refit.fit(X[:40], y[:40])
    assert refit._idle_shard_energy[1] == 40

    # The calls' energy is summed: two batches that each leave half the shards
    # silent, but not the same half, make an even stream.
    rng = np.random.default_rng(0)
    low, high = rng.normal(size=(40, 16)), rng.normal(size=(40, 16))
    low[:, np.arange(16) % 8 >= 4] = 0  # features of shards 0-3 only
    high[:, np.arange(16) % 8 < 4] = 0  # features of shards 4-7 only
    labels = np.arange(40) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        even = _classifier(hash_shards=8)
        even.partial_fit(low, labels, classes=[0, 1])
        even.partial_fit(high, labels)
    assert not hasattr(even, "_idle_shard_energy")  # judged, and found even
    lopsided = _classifier(hash_shards=8)
    lopsided.partial_fit(low, labels, classes=[0, 1])
    with pytest.warns(UserWarning, match=r"4 of the first layer's 8 hash shards \(4, 5, 6, 7\)"):
        lopsided.partial_fit(low, labels)


def test_shard_shares_follow_the_layout():
    X = np.zeros((3, 12))
    X[:, :3] = 1.0  # the first three features carry all the energy
    assert_array_equal(first_layer_shard_shares(X, 3, "cyclic"), [1.0, 1.0, 1.0])
    assert_array_equal(first_layer_shard_shares(X, 3, "contiguous"), [3.0, 0.0, 0.0])
    assert first_layer_shard_shares(np.zeros((3, 12)), 3, "cyclic") is None


@pytest.mark.parametrize("version, layout", [(3, "cyclic"), (2, "contiguous")])
@pytest.mark.parametrize("hashing", HASHINGS)
def test_backprop_matches_the_sharded_reference(hashing, version, layout):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((12, 9)), np.arange(12) % 3
    est = HashedMLPClassifier(
        hidden_layer_sizes=(21, 35),
        solver="lbfgs",
        alpha=0.01,
        max_iter=2,
        compression=0.3,
        hashing=hashing,
        hash_shards=4,
        random_state=0,
    ).fit(X, y)
    assert est.hash_shards_ == [4, 4, 4] and est.hash_spec_version_ == HASH_SPEC_VERSION == 3
    est.hash_spec_version_ = version  # the same buckets, read by that version's hash
    Y = est._label_binarizer.transform(y).astype(np.float64)
    theta = _pack(est.bucket_weights_, est.intercepts_)
    loss, grad = loss_and_grad_function(est, X, Y, None)(theta)
    ref_loss, ref_buckets, ref_intercepts = ref.loss_and_grads(
        X,
        Y,
        est.bucket_weights_,
        est.intercepts_,
        est.hash_seeds_,
        True,
        "relu",
        est.out_activation_,
        "log_loss",
        est.alpha,
        hashing=hashing,
        n_shards=est.hash_shards_,
        shard_layout=layout,
    )
    assert loss == pytest.approx(ref_loss, rel=1e-10)
    np.testing.assert_allclose(grad, _pack(ref_buckets, ref_intercepts), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("hashing", HASHINGS)
def test_save_load_and_joblib_keep_the_shards(digits, tmp_path, hashing):
    X, y = digits
    model = _classifier(hash_shards=5, hashing=hashing).fit(X, y)
    expected = model.predict_proba(X)
    save(model, tmp_path / "model.skh")
    loaded = load(tmp_path / "model.skh")
    assert loaded.hash_shards_ == [5, 5] and loaded.hash_spec_version_ == HASH_SPEC_VERSION
    assert_array_equal(loaded.predict_proba(X), expected, strict=True)
    joblib.dump(model, tmp_path / "model.joblib")
    assert_array_equal(joblib.load(tmp_path / "model.joblib").predict_proba(X), expected)
    # Training on from the loaded file gives the bits of training on in memory.
    more = model.set_params(warm_start=True, max_iter=1).fit(X, y)
    again = loaded.set_params(warm_start=True, max_iter=1).fit(X, y)
    for a, b in zip(again.bucket_weights_, more.bucket_weights_):
        assert_array_equal(a, b, strict=True)


def test_a_file_without_shards_of_hash_version_2_is_refused(digits, tmp_path):
    X, y = digits
    model = _classifier(hash_shards=3).fit(X, y)
    del model.hash_shards_
    save(model, tmp_path / "model.skh")
    with pytest.raises(ModelFileError, match="hash_shards_ must hold one int >= 1 per layer"):
        load(tmp_path / "model.skh")


def test_a_hash_version_1_model_keeps_loading_and_its_bits(digits, tmp_path):
    # A model of version 1 has no hash_shards_; its hash is the unsharded one.
    X, y = digits
    model = _classifier().fit(X, y)
    expected = model.predict_proba(X)
    model.hash_spec_version_ = 1
    del model.hash_shards_
    save(model, tmp_path / "v1.skh")
    loaded = load(tmp_path / "v1.skh")
    assert loaded.hash_spec_version_ == 1 and not hasattr(loaded, "hash_shards_")
    assert_array_equal(loaded.predict_proba(X), expected, strict=True)
    loaded.set_params(warm_start=True, max_iter=1).fit(X, y)  # trains on, one shard a layer
    with pytest.raises(ValueError, match=r"was fitted with \[1, 1\]"):
        loaded.set_params(hash_shards=2).fit(X, y)


def test_a_hash_version_2_model_keeps_its_contiguous_shards(digits, tmp_path):
    # A sharded model saved by a release of version 2: its shards are blocks of rows.
    X, y = digits
    model = _classifier(hash_shards=5).fit(X, y)
    cyclic = model.predict_proba(X)
    model.hash_spec_version_ = 2
    contiguous = model.predict_proba(X)
    assert np.abs(contiguous - cyclic).max() > 0.05  # another network from the same buckets
    save(model, tmp_path / "v2.skh")
    loaded = load(tmp_path / "v2.skh")
    assert loaded.hash_spec_version_ == 2 and loaded.hash_shards_ == [5, 5]
    assert_array_equal(loaded.predict_proba(X), contiguous, strict=True)
    # Trained on, it keeps version 2 and its layout: the bits of training on in memory.
    again = loaded.set_params(warm_start=True, max_iter=1).fit(X, y)
    more = model.set_params(warm_start=True, max_iter=1).fit(X, y)
    assert again.hash_spec_version_ == more.hash_spec_version_ == 2
    for a, b in zip(again.bucket_weights_, more.bucket_weights_):
        assert_array_equal(a, b, strict=True)
    loaded.partial_fit(X, y)
    assert loaded.hash_spec_version_ == 2
    # A new fit records this package's version.
    assert loaded.set_params(warm_start=False).fit(X, y).hash_spec_version_ == 3


def test_a_model_of_an_unknown_hash_version_is_refused(digits):
    X, y = digits
    model = _classifier(hash_shards=5).fit(X, y)
    model.hash_spec_version_ = 4
    with pytest.raises(ValueError, match="hash specification version 4"):
        model.predict(X)


def test_warm_start_refuses_changed_shards(digits):
    X, y = digits
    model = _classifier(hash_shards=4).fit(X, y)
    with pytest.raises(ValueError, match=r"hash_shards=2 now gives \[2, 2\].*\[4, 4\]"):
        model.set_params(warm_start=True, hash_shards=2).fit(X, y)
    with pytest.raises(ValueError, match="hash_shards=None"):
        model.set_params(hash_shards=None).partial_fit(X, y)


_FIT_THREADS_SCRIPT = """
import sys
import numba
import numpy as np
from sklearn.datasets import load_digits
from sk_hashednets import HashedMLPClassifier

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
results = {}
for hashing in ("element", "block"):
    for n_threads in (1, 3):
        numba.set_num_threads(n_threads)
        clf = HashedMLPClassifier(
            hidden_layer_sizes=(64,), max_iter=2, hash_shards=6, hashing=hashing,
            max_tile_bytes=4096, random_state=0,
        ).fit(X, y)
        for k, w in enumerate(clf.bucket_weights_):
            results[f"{hashing}-{k}-{n_threads}"] = w
np.savez(sys.argv[1], **results)
"""


def test_a_sharded_fit_gives_the_same_bits_on_any_threads_and_tiles(tmp_path):
    # max_tile_bytes=4096: row tiles of 16 rows, which start inside shards of 10 or 11 rows.
    results = _run_in_child(_FIT_THREADS_SCRIPT, 3, tmp_path)
    X, y = load_digits(return_X_y=True)
    for hashing in HASHINGS:
        whole = HashedMLPClassifier(
            hidden_layer_sizes=(64,),
            max_iter=2,
            hash_shards=6,
            hashing=hashing,
            random_state=0,
        ).fit((X / 16.0).astype(np.float32), y)
        for k in range(2):
            one = results[f"{hashing}-{k}-1"]
            assert_array_equal(results[f"{hashing}-{k}-3"], one, strict=True)
            # One tile, in this process: the same bits as row tiles of 16 rows.
            assert_array_equal(whole.bucket_weights_[k], one, strict=True)


def test_bucket_counts_of_a_sharded_model_stay_in_each_shard(digits):
    from sk_hashednets.plotting import bucket_counts

    X, y = digits
    model = _classifier(hash_shards=6).fit(X, y)  # 64-40-10 at 1/2: 1280 buckets, 6 shards
    counts = bucket_counts(model, layer=0)
    for shard in range(6):
        rows = len(range(shard, 64, 6))  # rows shard, shard + 6, ...: 11 or 10 of them
        buckets = slice(shard * 1280 // 6, (shard + 1) * 1280 // 6)
        assert counts[buckets].sum() == rows * 40  # every entry of the shard's rows, no other
