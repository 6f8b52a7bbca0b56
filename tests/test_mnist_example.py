"""The MNIST example runs (on a small slice) and trains what the study trains.

``examples/plot_mnist_compression.py`` is shown in the documentation, not run at
its build (it needs the MNIST files and an hour); this runs it at a small scale
on the real files, and checks that its settings are those of
``benchmarks/mnist_compression.py``, whose figures ``docs/results.md`` shows.
"""

import importlib.util
import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"


def _module(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    return _module(ROOT / "examples" / "plot_mnist_compression.py")


def test_settings_are_the_studys(example):
    study = _module(ROOT / "benchmarks" / "mnist_compression.py")
    assert example.HASHED == study.HASHED
    assert example.COMMON == study.COMMON
    assert example.DROPOUT == study.DROPOUT
    assert example.COMPRESSIONS == [1 / c for c in [1, 2, 4, 8, 16, 32, 64]]
    # The example's width rule is the study's.
    for compression in example.COMPRESSIONS:
        width, n_stored = study.equivalent_width(compression)
        assert example.equivalent_width(n_stored) == width


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST files not found in {MNIST}")
def test_runs_on_a_slice_of_mnist(example, tmp_path):
    output = tmp_path / "figure.png"
    args = example.parse_args(
        [
            "--mnist",
            str(MNIST),
            "--n-train",
            "3000",
            "--max-iter",
            "3",
            "--compressions",
            "8",
            "64",
            "--output",
            str(output),
        ]
    )
    rows = example.run(args)
    assert [round(1 / r[0]) for r in rows] == [8, 64]
    for _, n_hashed, acc_hashed, _, n_dense, acc_dense, _ in rows:
        # Same stored parameters, to within one hidden unit of the dense network.
        assert abs(n_hashed - n_dense) <= 784 + 1 + 10
        # 3000 images and 3 epochs: far from the study's figures, far above chance.
        assert 70 < acc_hashed <= 100 and 30 < acc_dense <= 100
    example.plot(rows, output)
    assert output.stat().st_size > 10_000


@pytest.mark.parametrize("dy, dx", [(1, 0), (-1, 0), (0, 1), (0, -1), (2, -3)])
def test_the_teachers_shifted_images_move_every_pixel(dy, dx):
    study = _module(ROOT / "benchmarks" / "mnist_compression.py")
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
    study = _module(ROOT / "benchmarks" / "mnist_compression.py")
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
    study = _module(ROOT / "benchmarks" / "mnist_compression.py")
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
    study = _module(ROOT / "benchmarks" / "mnist_compression.py")
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
    study = _module(ROOT / "benchmarks" / "mnist_compression.py")
    old = {k: v for k, v in study.SETTINGS.items() if k != "shifts"}
    # The shifted series then used the teacher's shifts, recorded as "teacher_shifts".
    def result(teacher_shifts):
        settings = {**old, "teacher_shifts": teacher_shifts}
        return {"model": "hashed", "data": "shifted", "settings": settings}

    assert study._current(result(study.SETTINGS["shifts"]))
    assert not study._current(result([[0, 1]]))
