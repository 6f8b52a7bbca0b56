"""Shards on N simulated devices (``benchmarks/shard_simulation.py``, ``docs/scaling.md``).

The simulation keeps each device's arrays apart and moves arrays only through
its counted interconnect. These tests check that it computes what one device
computes (the estimator's steps, the NumPy reference's gradient), the same
bits for any number of devices, and exactly the traffic of the formula that
prints the table of ``docs/scaling.md``.
"""

import copy
import sys
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from sk_hashednets import HashedMLPClassifier
from sk_hashednets._kernels import _reference as ref

ROOT = Path(__file__).resolve().parents[1]
BATCH, STEPS, CLASSES = 8, 3, 4


def _load_simulation():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import shard_simulation
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return shard_simulation


sim = _load_simulation()


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((BATCH * (STEPS + 1), 10))
    y = np.arange(len(X)) % CLASSES
    return X, y, (y[:, None] == np.arange(CLASSES)).astype(np.float64)


_MODELS = {}


def _model(data, dtype=np.float64, hashing="element"):
    """A sharded classifier after one SGD step: the start of every simulation."""
    key = (np.dtype(dtype).name, hashing)
    if key not in _MODELS:
        X, y, _ = data
        model = HashedMLPClassifier(
            hidden_layer_sizes=(16, 12),
            n_buckets=(40, 48, 24),
            hash_shards=5,
            hashing=hashing,
            solver="sgd",
            momentum=0.0,
            learning_rate_init=0.05,
            alpha=1e-3,
            batch_size=BATCH,
            shuffle=False,
            max_iter=1,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X[:BATCH].astype(dtype), y[:BATCH])
        _MODELS[key] = model
    return _MODELS[key]


def _train(model, data, n_devices, dtype=np.float64, steps=STEPS, **kwargs):
    X, _, Y = data
    network = sim.ShardedNetwork.from_estimator(model, n_devices, **kwargs)
    for t in range(1, steps + 1):
        batch = slice(t * BATCH, (t + 1) * BATCH)
        network.step(X[batch].astype(dtype), Y[batch])
    return network


@pytest.mark.parametrize("hashing", ["element", "block"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_any_number_of_devices_trains_to_the_same_bits(data, dtype, solver, hashing):
    model = _model(data, dtype, hashing)
    one = _train(model, data, 1, dtype, solver=solver)
    assert not np.array_equal(one.bucket_weights()[1], model.bucket_weights_[1])
    for n_devices in (2, 3, 4):
        many = _train(model, data, n_devices, dtype, solver=solver)
        for a, b in zip(
            many.bucket_weights() + many.intercepts(), one.bucket_weights() + one.intercepts()
        ):
            assert a.dtype == dtype
            assert_array_equal(a, b)


def test_summing_each_devices_products_first_changes_the_bits(data):
    # What the test above would miss if the order of the sums did not matter.
    model = _model(data)
    one = _train(model, data, 1)
    grouped = _train(model, data, 2, order="devices")
    assert not np.array_equal(grouped.bucket_weights()[1], one.bucket_weights()[1])
    assert_allclose(grouped.bucket_weights()[1], one.bucket_weights()[1], rtol=1e-12)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_the_devices_take_the_estimators_steps(data, dtype, rtol):
    X, y, _ = data
    model = _model(data, dtype)
    network = _train(model, data, 3, dtype)
    follower = copy.deepcopy(model)  # continues from the same state, its optimizer's included
    follower.partial_fit(X[BATCH:].astype(dtype), y[BATCH:])
    for a, b in zip(network.bucket_weights(), follower.bucket_weights_):
        assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
    for a, b in zip(network.intercepts(), follower.intercepts_):
        assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


def test_the_bucket_gradient_is_the_row_order_chain_and_the_references(data):
    X, _, Y = data
    model = _model(data)
    network = _train(model, data, 3, steps=1)
    units = model._layer_units_
    for k, start in enumerate(model.bucket_weights_):
        h = network.layer_hashes[k]
        # Every device's gradient tile, put back in row order, scattered by the NumPy chain.
        tiles = np.empty((units[k], units[k + 1]))
        for dev in network.devices:
            tiles[dev.layers[k].rows] = dev.virtual_grads[k]
        expected = np.zeros_like(start)
        ref.bucket_grad_in_row_order(
            tiles,
            int(h.seed),
            expected,
            h.sign_hash,
            0,
            h.hashing,
            h.n_shards,
            units[k],
            h.shard_layout,
        )
        expected += model.alpha * start
        expected /= BATCH
        got = np.concatenate([dev.layers[k].bucket_grad for dev in network.devices])
        assert_array_equal(got, expected)
    # And the gradient is the textbook one, to rounding.
    _, bucket_grads, _ = ref.loss_and_grads(
        X[BATCH : 2 * BATCH],
        Y[BATCH : 2 * BATCH],
        model.bucket_weights_,
        model.intercepts_,
        model.hash_seeds_,
        model.sign_hash_,
        model.activation,
        "softmax",
        "log_loss",
        model.alpha,
        n_shards=model.hash_shards_,
    )
    for k, g in enumerate(bucket_grads):
        got = np.concatenate([dev.layers[k].bucket_grad for dev in network.devices])
        assert_allclose(got, g, rtol=1e-12, atol=1e-15)


def test_devices_hold_only_their_own_arrays(data):
    model = _model(data, hashing="block")
    network = _train(model, data, 4, steps=1)
    devices = network.devices
    for first, second in combinations(devices, 2):
        for a in first.arrays():
            assert not any(np.shares_memory(a, b) for b in second.arrays())
    units = model._layer_units_
    for k, whole in enumerate(network.bucket_weights()):
        h = network.layer_hashes[k]
        parts = [dev.layers[k] for dev in devices]
        assert [p.bucket_start for p in parts[1:]] == [p.bucket_stop for p in parts[:-1]]
        assert (parts[0].bucket_start, parts[-1].bucket_stop) == (0, h.n_buckets)
        W = ref.materialize(
            whole, int(h.seed), units[k], units[k + 1], h.sign_hash,
            hashing=h.hashing, n_shards=h.n_shards, shard_layout=h.shard_layout,
        )  # fmt: skip
        # The devices own every row once; cyclic, every S-th row (not a block).
        assert_array_equal(np.sort(np.concatenate([p.rows for p in parts])), np.arange(units[k]))
        assert h.shard_layout == "cyclic" and np.any(np.diff(parts[0].rows) > 1)
        for part in parts:
            # Its rows of W, read from its own buckets: the sharded hash's, bit for bit.
            part.materialize()
            assert_array_equal(np.vstack(part.weights), W[part.rows])


@pytest.mark.parametrize("n_devices", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_counted_traffic_is_the_formula_of_the_docs_table(data, n_devices, dtype):
    model = _model(data, dtype)
    network = _train(model, data, n_devices, dtype)
    sent, messages = sim.step_traffic(
        model._layer_units_, model.hash_shards_, n_devices, BATCH, np.dtype(dtype).itemsize
    )
    net = network.interconnect
    assert_array_equal(net.sent_bytes, STEPS * sent)
    assert_array_equal(net.sent_messages, STEPS * messages)
    assert net.received_bytes.sum() == net.sent_bytes.sum()
    assert (n_devices == 1) == (net.sent_bytes.sum() == 0)


def test_the_docs_table_is_the_commands_output():
    text = (ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
    assert "python benchmarks/shard_simulation.py --table" in text
    for line in sim.traffic_table():
        assert line in text, line
    # The shards of hash_shards="auto", as the page words them.
    for units in sim.TABLE_NETWORKS:
        shards = sim.auto_shards_line().split(f"{'-'.join(map(str, units))}: [")[1]
        *rest, last = shards.split("]")[0].split(", ")
        assert f"{', '.join(rest)} and {last}" in " ".join(text.split())


def test_the_balanced_formula_is_the_ring_figure_plus_the_ordered_chain():
    # Balanced (every device n / N units): the busiest device sends, per hidden
    # layer, B n (the chain) + (N - 1) / N B n (the all-gather).
    units, B = (784, 4096, 4096, 10), 256
    sent, _ = sim.step_traffic(units, [8, 8, 8], 8, B, 4)
    assert sent.max() == 2 * (B * 4096 * 4 + 7 * B * 512 * 4) + B * 10 * 4
    assert sim.ring_step_bytes(units, 8, B, 4) == 2 * 7 / 8 * B * (4096 + 4096 + 10) * 4


def test_a_layer_needs_a_shard_per_device(data):
    with pytest.raises(ValueError, match="at least as many shards"):
        sim.ShardedNetwork.from_estimator(_model(data), 6)


def test_a_hash_version_2_model_divides_into_blocks_of_rows(data):
    # Version 2's contiguous shards: each device owns blocks of rows, with the same guarantees.
    X, y, _ = data
    model = copy.deepcopy(_model(data))
    model.hash_spec_version_ = 2
    one = _train(model, data, 1)
    many = _train(model, data, 3)
    for a, b in zip(
        many.bucket_weights() + many.intercepts(), one.bucket_weights() + one.intercepts()
    ):
        assert_array_equal(a, b)
    assert all(np.all(np.diff(dev.layers[0].rows) == 1) for dev in many.devices)
    follower = copy.deepcopy(model)
    follower.partial_fit(X[BATCH:], y[BATCH:])
    assert follower.hash_spec_version_ == 2
    for a, b in zip(many.bucket_weights(), follower.bucket_weights_):
        assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
