"""The helpers of the sharded-hashing MNIST study (``studies/mnist_shards.py``), without MNIST."""

import argparse
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

# Tiny data: the study's batch of 128 is clipped to the 60 images.
pytestmark = pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning")
STUDY = Path(__file__).resolve().parents[1] / "studies" / "mnist_shards.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location(STUDY.stem, STUDY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((60, 784), dtype=np.float32), np.arange(60) % 10


def test_models_take_the_compression_study_settings(study):
    for name, hash_shards in (("sharded", "auto"), ("element", None)):
        params = study.make_model(name, 1 / 64, 2).get_params()
        assert params["hash_shards"] == hash_shards
        assert params["dropout"] == study.study.DROPOUT[64] == 0.2
        assert params["random_state"] == 2 and params["compression"] == 1 / 64
        assert all(params[k] == v for k, v in study.study.HASHED.items())
    assert study.SETTINGS == {k: study.study.SETTINGS[k] for k in ("hashed", "dropout")}


def test_occupancy_counts_every_virtual_weight_once(study, data):
    X, y = data
    small = {"hidden_layer_sizes": (30,)}
    sharded = study.hash_model("sharded", 1 / 8, 0, X, y, **small)
    element = study.hash_model("element", 1 / 8, 0, X, y, **small)
    assert sharded.hash_shards_ == [5, 1] and element.hash_shards_ == [1, 1]  # 2940 buckets
    for model in (sharded, element):
        layers = study.occupancy(model)
        for layer, (n_in, n_out) in zip(layers, [(784, 30), (30, 10)]):
            assert layer["buckets"] * layer["mean"] == pytest.approx(n_in * n_out)
            assert layer["min"] <= layer["mean"] <= layer["max"]
            assert layer["max_over_mean"] == pytest.approx(layer["max"] / layer["mean"])
    # The one-epoch fit has the hash of a longer fit on other data.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        longer = study.make_model("sharded", 1 / 8, 0, max_iter=2, **small).fit(X[::-1], y[::-1])
    assert study.occupancy(longer) == study.occupancy(sharded)


def _result(model, compression, seed, accuracy, shards):
    occupancy = [
        {"layer": 0, "shards": shards[0], "buckets": 98000 if compression == 1 / 8 else 12250},
        {"layer": 1, "shards": shards[1], "buckets": 1250 if compression == 1 / 8 else 157},
    ]
    for layer, n_entries in zip(occupancy, (784000, 10000)):
        layer.update(mean=n_entries / layer["buckets"], max=30)
        layer["max_over_mean"] = 30 / layer["mean"]
    return {
        "model": model,
        "hash_spec_version": 3,
        "compression": compression,
        "seed": seed,
        "test_accuracy": accuracy,
        "hash_shards_": shards,
        "occupancy": occupancy,
        "fit_seconds": 100.0,
        "epochs": 50,
    }


def test_a_result_counts_while_settings_and_auto_shards_hold(study):
    sharded = {**_result("sharded", 1 / 8, 0, 98.4, [16, 2]), "settings": study.SETTINGS}
    assert study.current(sharded)
    assert not study.current({**sharded, "hash_shards_": [3, 1]})  # an earlier "auto"
    # Version 2's contiguous shards (results before the version was recorded): reported apart.
    version_2 = {k: v for k, v in sharded.items() if k != "hash_spec_version"}
    assert study.hash_version(version_2) == 2
    assert not study.current(version_2) and study.current(version_2, version=2)
    element = {**_result("element", 1 / 8, 0, 98.4, [1, 1]), "settings": study.SETTINGS}
    assert study.current(element)
    other = {**study.SETTINGS, "dropout": {**study.SETTINGS["dropout"], "8": 0.3}}
    assert not study.current({**element, "settings": other})


def test_summary_and_differences(study):
    results = [
        _result("sharded", 1 / 8, 0, 98.5, [16, 2]),
        _result("sharded", 1 / 8, 1, 98.3, [16, 2]),
        _result("element", 1 / 8, 0, 98.4, [1, 1]),
        {**_result("element", 1 / 8, 1, 98.2, [1, 1]), "source": "mnist_compression"},
        _result("sharded", 1 / 64, 0, 97.0, [16, 1]),
        _result("element", 1 / 64, 0, 97.3, [1, 1]),
    ]
    diff = study.differences(results + [_result("element", 1 / 64, 1, 90.0, [1, 1])])
    assert diff[1 / 8][0] == [0, 1] and diff[1 / 8][1] == pytest.approx(0.1)
    assert diff[1 / 64][0] == [0] and diff[1 / 64][1] == pytest.approx(-0.3)  # seed 1 unpaired
    rows = study.summary_rows(results)
    assert [row.split(" | ")[:3] for row in rows] == [
        ["| 1/8", "element", "98.30 ± 0.10"],
        ["| 1/8", "sharded", "98.40 ± 0.10"],
        ["| 1/64", "element", "97.30 ± 0.00"],
        ["| 1/64", "sharded", "97.00 ± 0.00"],
    ]
    assert "16 / 98000 / 30 / 8.0 / 3.75" in rows[1]
    assert rows[0].endswith("| mnist_compression, mnist_shards |")


def test_report_puts_only_version_2_sharded_results_in_their_rows(study, tmp_path, capsys):
    path = tmp_path / "results.json"
    version_2 = {**_result("sharded", 1 / 8, 5, 98.0, [16, 2]), "settings": study.SETTINGS}
    del version_2["hash_spec_version"]
    element = {**_result("element", 1 / 8, 5, 99.5, [1, 1]), "settings": study.SETTINGS}
    for result in (element, version_2):  # the report reads the file from its end
        study.study._append_result(path, result)
    args = argparse.Namespace(
        results=path, element_results=None, mnist=None, compressions=[8], seeds=[5]
    )
    study.report(args)
    lines = capsys.readouterr().out.splitlines()
    previous = [line for line in lines if line.startswith("| 1/8 | sharded, version 2")]
    assert len(previous) == 1 and "98.00" in previous[0] and "99.50" not in previous[0]
    assert any(line.startswith("| 1/8 | element | 99.50") for line in lines)
