"""The helpers of the MNIST study (``studies/mnist_compression.py``), without MNIST.

The shifted training images, the report's series, and which recorded results
a change of settings retires.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

STUDY = Path(__file__).resolve().parents[1] / "studies" / "mnist_compression.py"


def _study():
    spec = importlib.util.spec_from_file_location(STUDY.stem, STUDY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dy, dx", [(1, 0), (-1, 0), (0, 1), (0, -1), (2, -3)])
def test_the_teachers_shifted_images_move_every_pixel(dy, dx):
    study = _study()
    images = np.arange(2 * 784, dtype=np.float32).reshape(2, 784) + 1
    moved = study.shifted(images, dy, dx).reshape(2, 28, 28)
    square = images.reshape(2, 28, 28)
    for r in range(28):
        for c in range(28):
            source = (r - dy, c - dx)
            expected = (
                square[:, source[0], source[1]]
                if (0 <= source[0] < 28 and 0 <= source[1] < 28)
                else 0
            )
            np.testing.assert_array_equal(moved[:, r, c], expected)


def test_shifted_training_set_keeps_each_image_with_its_label():
    study = _study()
    rng = np.random.default_rng(0)
    images = rng.random((6, 784), dtype=np.float32)
    labels = np.arange(6)
    X, y = study.with_shifts(images, labels)
    copies = 1 + len(study.SHIFTS)
    assert X.shape == (copies * 6, 784) and X.dtype == images.dtype
    np.testing.assert_array_equal(X[:6], images)
    for k, (dy, dx) in enumerate(study.SHIFTS, start=1):
        np.testing.assert_array_equal(X[6 * k : 6 * (k + 1)], study.shifted(images, dy, dx))
    np.testing.assert_array_equal(y, np.tile(labels, copies))


def test_report_keeps_the_shifted_series_apart(tmp_path, capsys, monkeypatch):
    study = _study()
    base = {
        "model": "hashed",
        "compression": 1 / 8,
        "hidden": 1000,
        "stored_params": 100260,
        "file_bytes": 2048,
        "fit_seconds": 1.0,
        "epochs": 3,
        "settings": study.SETTINGS,
    }
    results = [
        # Written before ``--data`` existed: the original images.
        {**base, "seed": 0, "test_accuracy": 98.0},
        {**base, "seed": 1, "test_accuracy": 98.2, "data": "original"},
        {**base, "seed": 0, "test_accuracy": 99.0, "data": "shifted"},
        {**base, "seed": 1, "test_accuracy": 99.2, "data": "shifted"},
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    monkeypatch.setattr("sys.argv", ["mnist_compression.py", "report"])
    study.report(study.argparse.Namespace(results=path, plot=None))
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 1/8")]
    assert len(rows) == 2
    assert "| 60,000 |" in rows[0] and "98.10 ± 0.10 | 2 |" in rows[0]
    assert "| 60,000 + shifts |" in rows[1] and "99.10 ± 0.10 | 2 |" in rows[1]


def test_a_changed_setting_retires_only_the_results_that_depend_on_it(monkeypatch):
    study = _study()
    results = [
        {"model": model, "data": data, "settings": study.SETTINGS}
        for model in ("hashed", "dense", "distilled")
        for data in ("original", "shifted")
    ]
    recorded = study.SETTINGS

    def change(**settings):
        # As the results file holds them: JSON, tuples as lists.
        monkeypatch.setattr(study, "SETTINGS", json.loads(json.dumps({**recorded, **settings})))

    assert all(study._current(r) for r in results)
    # A new distillation setting: the students are trained again, nothing else.
    change(distill={**study.DISTILL, "distill_weight": 0.7})
    assert [study._current(r) for r in results] == [True, True, True, True, False, False]
    # New shifts for the shifted series retire that series only.
    change(shifts=[[2, 0]])
    assert [study._current(r) for r in results] == [True, False, True, False, True, False]
    # A new HASHED (COMMON is part of it) retires everything.
    change(hashed={**study.HASHED, "max_iter": 7})
    assert not any(study._current(r) for r in results)


def test_results_from_before_shifts_were_recorded_apart_keep_their_shifts():
    study = _study()
    old = {k: v for k, v in study.SETTINGS.items() if k != "shifts"}

    # The shifted series then used the teacher's shifts, recorded as "teacher_shifts".
    def result(teacher_shifts):
        settings = {**old, "teacher_shifts": teacher_shifts}
        return {"model": "hashed", "data": "shifted", "settings": settings}

    assert study._current(result(study.SETTINGS["shifts"]))
    assert not study._current(result([[0, 1]]))
