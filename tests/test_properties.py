"""Properties of fitted models over random small problems, threads and interrupts.

The property tests draw, with hypothesis, a classifier or regressor with 1 or 2
hidden layers of 1 to 8 units, a compression in (0, 1], with or without the
sign hash, float32 or float64 data, dense or CSR, and a solver; each fit is a
few epochs on 20 to 60 samples. They check that predictions are finite and
well shaped, that pickling round-trips exactly, that the tile budget changes
results only by rounding, and that fits are reproducible bit for bit. Without
hypothesis they skip, visibly; the thread and interrupt tests still run.
"""

import copy
import math
import pickle
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from sk_hashednets import HashedMLPClassifier, HashedMLPRegressor
from sk_hashednets._kernels import get_backend
from sk_hashednets._optimizers import BaseOptimizer

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - the property tests then skip
    given = None

ESTIMATORS = {"classifier": HashedMLPClassifier, "regressor": HashedMLPRegressor}
STOCHASTIC_SOLVERS = ("adam", "sgd")


# ----------------------------------------------------------------------------
# Random problems
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One small learning problem and the estimator to fit to it."""

    kind: str
    hidden_layer_sizes: tuple
    compression: float
    sign_hash: bool
    dtype: type
    sparse: bool
    solver: str
    n_samples: int
    n_features: int
    n_classes: int
    seed: int

    def estimator(self, **params):
        params = {
            "hidden_layer_sizes": self.hidden_layer_sizes,
            "compression": self.compression,
            "sign_hash": self.sign_hash,
            "solver": self.solver,
            "max_iter": 3,
            "random_state": self.seed,
            **params,
        }
        return ESTIMATORS[self.kind](**params)

    def data(self, seed_offset=0):
        rng = np.random.default_rng(self.seed + seed_offset)
        X = rng.standard_normal((self.n_samples, self.n_features))
        if self.sparse:
            X[X < 0.3] = 0.0
        X = X.astype(self.dtype)
        if self.kind == "classifier":
            y = rng.permutation(np.arange(self.n_samples) % self.n_classes)
        else:
            y = rng.standard_normal(self.n_samples)
        return (sp.csr_matrix(X) if self.sparse else X), y

    def fit(self, **params):
        X, y = self.data()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return self.estimator(**params).fit(X, y)


def _predictions(est, X):
    if isinstance(est, HashedMLPClassifier):
        return est.predict(X), est.predict_proba(X)
    return (est.predict(X),)


def _assert_identical(a, b):
    """Equal bit for bit, dtype and shape included."""
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.dtype == v.dtype and u.shape == v.shape
        assert_array_equal(u, v, strict=True)


if given is not None:

    @st.composite
    def problems(draw):
        kind = draw(st.sampled_from(sorted(ESTIMATORS)))
        return Problem(
            kind=kind,
            hidden_layer_sizes=tuple(draw(st.lists(st.integers(1, 8), min_size=1, max_size=2))),
            compression=draw(st.floats(0.0, 1.0, exclude_min=True)),
            sign_hash=draw(st.booleans()),
            dtype=draw(st.sampled_from([np.float32, np.float64])),
            sparse=draw(st.booleans()),
            solver=draw(st.sampled_from(["adam", "sgd", "lbfgs"])),
            n_samples=draw(st.integers(20, 60)),
            n_features=draw(st.integers(1, 8)),
            n_classes=draw(st.integers(2, 3)) if kind == "classifier" else 0,
            seed=draw(st.integers(0, 2**16)),
        )


def _property(max_examples=30):
    """Run the test on random problems: deterministic, no deadline, no database."""

    def decorate(test):
        if given is None:

            def skipped():
                pytest.importorskip("hypothesis")

            skipped.__name__ = test.__name__
            skipped.__doc__ = test.__doc__
            return skipped
        return settings(
            max_examples=max_examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )(given(problem=problems())(test))

    return decorate


# ----------------------------------------------------------------------------
# Properties
# ----------------------------------------------------------------------------


@_property()
def test_predictions_are_finite_and_well_shaped(problem):
    est = problem.fit()
    X, y = problem.data()
    X_new, _ = problem.data(seed_offset=1)
    units = [problem.n_features, *problem.hidden_layer_sizes, est.n_outputs_]
    virtual = [a * b for a, b in zip(units[:-1], units[1:])]
    assert est._layer_units_ == units
    assert est.n_buckets_ == [math.ceil(problem.compression * v) for v in virtual]
    assert all(1 <= k <= v for k, v in zip(est.n_buckets_, virtual))
    assert [w.shape for w in est.bucket_weights_] == [(k,) for k in est.n_buckets_]
    assert all(p.dtype == problem.dtype for p in est.bucket_weights_ + est.intercepts_)

    for data in (X, X_new):
        pred = est.predict(data)
        assert pred.shape == (problem.n_samples,)
        if problem.kind == "classifier":
            assert set(pred.tolist()) <= set(est.classes_.tolist())
            proba = est.predict_proba(data)
            assert proba.shape == (problem.n_samples, max(2, problem.n_classes))
            assert proba.dtype == problem.dtype
            assert np.isfinite(proba).all()
            assert ((proba >= 0) & (proba <= 1)).all()
            assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
        else:
            assert pred.dtype == problem.dtype
            assert np.isfinite(pred).all()


@_property()
def test_pickle_round_trip_is_exact(problem):
    est = problem.fit()
    X, y = problem.data()
    loaded = pickle.loads(pickle.dumps(est))
    _assert_identical(loaded.bucket_weights_, est.bucket_weights_)
    _assert_identical(loaded.intercepts_, est.intercepts_)
    _assert_identical([loaded.hash_seeds_], [est.hash_seeds_])
    _assert_identical(_predictions(loaded, X), _predictions(est, X))
    if problem.solver in STOCHASTIC_SOLVERS:
        # The optimizer's state travels too: training continues identically.
        classes = {"classes": est.classes_} if problem.kind == "classifier" else {}
        loaded.partial_fit(X, y, **classes)
        est.partial_fit(X, y, **classes)
        _assert_identical(loaded.bucket_weights_, est.bucket_weights_)
        _assert_identical(_predictions(loaded, X), _predictions(est, X))


@_property()
def test_tiles_change_results_only_by_rounding(problem):
    """The smallest tiles (one scatter block of rows, one column) give the fit of untiled layers.

    Not bit for bit, dense or sparse: a tile's products go to BLAS with another
    shape (a single column turns GEMM into GEMV), whose kernels round
    differently in the last bit; the docstring of ``max_tile_bytes`` says so.
    Sparse input differs the same way, through the dense hidden layers. SGD
    keeps those differences at rounding level; Adam (which divides by the
    gradients' running RMS) and L-BFGS (whose line search branches on
    comparisons) could amplify them, so this property trains with SGD.
    """
    itemsize = np.dtype(problem.dtype).itemsize
    untiled = problem.fit(solver="sgd")
    tiled = problem.fit(solver="sgd", max_tile_bytes=itemsize)
    layers = tiled._hashed_layers(get_backend("cpu"), problem.dtype)
    for layer in layers:
        assert len(layer.tiles) == -(-layer.n_in // layer.scatter_block_rows)
        assert len(layer.column_tiles) == layer.n_out

    rtol, atol = (1e-5, 1e-6) if problem.dtype == np.float32 else (1e-12, 1e-13)
    for a, b in zip(
        tiled.bucket_weights_ + tiled.intercepts_, untiled.bucket_weights_ + untiled.intercepts_
    ):
        assert a.dtype == b.dtype == problem.dtype
        assert_allclose(a, b, rtol=rtol, atol=atol)

    # One forward pass of the same buckets, tiled and untiled.
    X, _ = problem.data()
    retiled = copy.deepcopy(untiled).set_params(max_tile_bytes=itemsize)
    for a, b in zip(_predictions(retiled, X), _predictions(untiled, X)):
        if a.dtype.kind == "f":
            assert_allclose(a, b, rtol=10 * rtol, atol=10 * atol)


@_property()
def test_repeated_fits_are_identical(problem):
    first = problem.fit()
    second = problem.fit()
    X, y = problem.data()
    _assert_identical(second.bucket_weights_, first.bucket_weights_)
    _assert_identical(second.intercepts_, first.intercepts_)
    _assert_identical(_predictions(second, X), _predictions(first, X))
    assert second.n_iter_ == first.n_iter_
    if problem.solver in STOCHASTIC_SOLVERS:
        assert second.loss_curve_ == first.loss_curve_
    # Refitting the same estimator object starts afresh: the same model again.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first.fit(X, y)
    _assert_identical(first.bucket_weights_, second.bucket_weights_)
    _assert_identical(_predictions(first, X), _predictions(second, X))


# ----------------------------------------------------------------------------
# Threads
# ----------------------------------------------------------------------------

N_THREADS = 8


@pytest.mark.parametrize("max_tile_bytes", [2**26, 64], ids=["untiled", "tiled"])
@pytest.mark.parametrize("kind", sorted(ESTIMATORS))
def test_concurrent_predict_equals_serial(kind, max_tile_bytes):
    """Eight threads predicting at once on one model give the serial answers, bit for bit."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8))
    y = np.arange(60) % 3 if kind == "classifier" else rng.standard_normal(60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = ESTIMATORS[kind](
            hidden_layer_sizes=(8, 4), max_iter=5, random_state=0, max_tile_bytes=max_tile_bytes
        ).fit(X, y)

    inputs = [X] + [rng.standard_normal((int(rng.integers(1, 200)), 8)) for _ in range(6)]
    inputs.append(sp.csr_matrix(np.where(X > 0.5, X, 0.0)))
    serial = [_predictions(est, data) for data in inputs]

    barrier = threading.Barrier(N_THREADS)

    def predict(i):
        barrier.wait(timeout=30)  # start together, to overlap as much as possible
        return _predictions(est, inputs[i])

    with ThreadPoolExecutor(max_workers=N_THREADS) as pool:
        for round_ in range(6):
            if round_ % 2 == 0:
                jobs = [round_ % len(inputs)] * N_THREADS  # all on the same input
            else:
                jobs = [(round_ + t) % len(inputs) for t in range(N_THREADS)]  # all different
            for i, result in zip(jobs, pool.map(predict, jobs)):
                _assert_identical(result, serial[i])


# ----------------------------------------------------------------------------
# KeyboardInterrupt
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("hook", ["_update_no_improvement_count", "iteration_ends"])
@pytest.mark.parametrize("kind", sorted(ESTIMATORS))
def test_keyboard_interrupt_stops_training_cleanly(kind, hook, monkeypatch):
    """Ctrl-C in epoch 3 ends fit with a warning, as in sklearn, and leaves a usable
    model: the one after 3 full epochs, with n_iter_ and loss_curve_ to match."""
    Estimator = ESTIMATORS[kind]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    y = np.arange(40) % 3 if kind == "classifier" else rng.standard_normal(40)
    interrupt_after = 3

    if hook == "_update_no_improvement_count":
        original = Estimator._update_no_improvement_count

        def interrupted(self, *args, **kwargs):
            if self.n_iter_ == interrupt_after:
                raise KeyboardInterrupt
            return original(self, *args, **kwargs)

        monkeypatch.setattr(Estimator, "_update_no_improvement_count", interrupted)
    else:

        def interrupted(self, time_step):
            if time_step == interrupt_after * len(X):
                raise KeyboardInterrupt

        # Adam uses the base class's hook.
        monkeypatch.setattr(BaseOptimizer, "iteration_ends", interrupted)

    params = {"hidden_layer_sizes": (6, 4), "random_state": 0, "solver": "adam"}
    est = Estimator(max_iter=20, **params)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        returned = est.fit(X, y)
    assert returned is est
    assert est.n_iter_ == interrupt_after
    assert len(est.loss_curve_) == interrupt_after
    assert est.t_ == interrupt_after * len(X)
    assert all(np.isfinite(loss) for loss in est.loss_curve_)
    for pred in _predictions(est, X):
        assert pred.shape[0] == len(X)
        if pred.dtype.kind == "f":
            assert np.isfinite(pred).all()

    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        three_epochs = Estimator(max_iter=interrupt_after, **params).fit(X, y)
    _assert_identical(est.bucket_weights_, three_epochs.bucket_weights_)
    _assert_identical(est.intercepts_, three_epochs.intercepts_)
    assert est.loss_curve_ == three_epochs.loss_curve_
