"""The MNIST example runs (on a small slice) and trains what the study trains.

``examples/plot_mnist_compression.py`` is shown in the documentation, not run at
its build (it needs the MNIST files and an hour); this runs it at a small scale
on the real files, and checks that its settings are those of
``studies/mnist_compression.py``, whose figures ``docs/results.md`` shows.
"""

import importlib.util
from pathlib import Path

import matplotlib
import pytest
from _mnist import MNIST

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]


def _module(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    return _module(ROOT / "examples" / "plot_mnist_compression.py")


def test_settings_are_the_studys(example):
    study = _module(ROOT / "studies" / "mnist_compression.py")
    assert example.HASHED == study.HASHED
    assert example.COMMON == study.COMMON
    assert example.DROPOUT == study.DROPOUT
    assert example.COMPRESSIONS == [1 / c for c in [1, 2, 4, 8, 16, 32, 64]]
    # The example's width rule is the study's.
    for compression in example.COMPRESSIONS:
        width, n_stored = study.equivalent_width(compression)
        assert example.equivalent_width(n_stored) == width


@pytest.mark.slow
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
