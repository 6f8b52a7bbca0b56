"""progress_bar: a tqdm bar that follows training and changes nothing in it."""

import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sk_hashednets import HashedMLPClassifier, HashedMLPRegressor, _progress


class RecordingBar:
    """Stands in for tqdm: records what training reports to the bar."""

    bars = []

    def __init__(self, total, desc, unit, **kwargs):
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self.postfix = None
        self.closed = False
        RecordingBar.bars.append(self)

    def update(self, n=1):
        self.n += n

    def set_postfix(self, **kwargs):
        self.postfix = kwargs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True


@pytest.fixture
def recording(monkeypatch):
    RecordingBar.bars = []
    monkeypatch.setattr(_progress, "_tqdm", lambda: RecordingBar)
    return RecordingBar.bars


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:600] / 16).astype(np.float32), y[:600]


def test_epoch_bars_follow_the_samples_and_the_loss(digits, recording):
    X, y = digits
    clf = HashedMLPClassifier(
        hidden_layer_sizes=(16,), max_iter=4, batch_size=64, progress_bar=True, random_state=0
    ).fit(X, y)
    assert [bar.desc for bar in recording] == ["epoch 1/4", "epoch 2/4", "epoch 3/4", "epoch 4/4"]
    for bar, epoch_loss in zip(recording, clf.loss_curve_):
        assert bar.closed and bar.unit == "samples"
        assert bar.n == bar.total == len(X)
        # The running loss at the end of an epoch is the epoch's loss.
        assert bar.postfix["loss"] == pytest.approx(epoch_loss, rel=1e-12)

    clf.partial_fit(X, y)
    assert recording[-1].desc == "partial_fit" and recording[-1].n == len(X)


def test_lbfgs_bar_counts_iterations(digits, recording):
    X, y = digits
    reg = HashedMLPRegressor(
        hidden_layer_sizes=(8,), solver="lbfgs", max_iter=15, progress_bar=True, random_state=0
    ).fit(X, y.astype(float))
    (bar,) = recording
    assert bar.desc == "L-BFGS" and bar.unit == "iter" and bar.total == 15 and bar.closed
    assert bar.n == reg.n_iter_
    assert bar.postfix["loss"] == pytest.approx(reg.loss_)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_bar_changes_nothing_in_training(digits, solver, capsys):
    X, y = digits
    kwargs = {"hidden_layer_sizes": (16,), "max_iter": 3, "solver": solver, "random_state": 0}
    plain = HashedMLPClassifier(**kwargs).fit(X, y)
    shown = HashedMLPClassifier(**kwargs, progress_bar=True).fit(X, y)
    for attribute in ("bucket_weights_", "intercepts_"):
        for a, b in zip(getattr(plain, attribute), getattr(shown, attribute)):
            np.testing.assert_array_equal(a, b)
    err = capsys.readouterr().err
    assert ("epoch 1/3" if solver == "adam" else "L-BFGS") in err


def test_missing_tqdm_fails_before_training(digits, monkeypatch):
    X, y = digits
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    clf = HashedMLPClassifier(hidden_layer_sizes=(4,), max_iter=2, progress_bar=True)
    with pytest.raises(ImportError, match=r'pip install "sk_hashednets\[progress\]"'):
        clf.fit(X, y)
    assert not hasattr(clf, "bucket_weights_")
    clf.set_params(progress_bar=False).fit(X, y)
