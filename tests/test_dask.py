"""The estimators on a Dask cluster: ``Incremental`` over blocks, and searches on the workers.

One ``distributed.LocalCluster`` of 2 worker processes (1 thread each, Numba on 1
thread) serves the whole module. Every result computed on the cluster is compared,
bit for bit, with the same computation in this process. The module is skipped where
the ``dask`` extra (``pip install 'sk_hashednets[dask]'``) is not installed.
"""

import os

import joblib
import numba
import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from threadpoolctl import threadpool_limits

from sk_hashednets import HashedMLPClassifier

# A local Dask cluster of worker processes: the slow tier (pyproject.toml).
pytestmark = pytest.mark.slow

REASON = "needs the dask extra: pip install 'sk_hashednets[dask]'"
da = pytest.importorskip("dask.array", reason=REASON)
distributed = pytest.importorskip("distributed", reason=REASON)
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers", reason=REASON)

CLASSES = np.arange(10)
BLOCK_ROWS = 250
N_TRAIN = 1500  # 6 blocks
#: Small and quick to train; a learning rate that learns digits in a few epochs.
PARAMS = {"hidden_layer_sizes": (32,), "compression": 1 / 4, "learning_rate_init": 0.01}


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes, 1 thread each, Numba on 1 thread; closed after.

    ``env=`` (a Nanny argument) sets ``NUMBA_NUM_THREADS`` in each worker process before
    the worker imports Numba, as long as the ``__main__`` module, which spawned workers
    re-import first, does not import Numba (pytest's does not; see docs/dask.md).
    ``distributed.nanny.pre-spawn-environ`` would not do here:
    the Nanny writes those variables into this process's ``os.environ`` too, and Numba
    then refuses to compile anything more in this process ("Cannot set NUMBA_NUM_THREADS
    to a different value once the threads have been launched"). The Nanny writes its
    default pre-spawn variables (``OMP_NUM_THREADS=1``, ...) into ``os.environ`` all the
    same: they are restored on teardown, so that no later test inherits them.
    """
    saved = dict(os.environ)
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        memory_limit="1GiB",
        dashboard_address=":0",
        env={"NUMBA_NUM_THREADS": "1"},
    )
    try:
        with distributed.Client(cluster) as dask_client:
            yield dask_client
    finally:
        cluster.close()
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        os.environ.update(saved)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def _worker_pids(client):
    return set(client.run(os.getpid).values())


def _assert_same_model(a, b):
    for name in ("bucket_weights_", "intercepts_"):
        for left, right in zip(getattr(a, name), getattr(b, name), strict=True):
            assert left.dtype == right.dtype
            np.testing.assert_array_equal(left, right)
    assert a.loss_curve_ == b.loss_curve_
    assert (a.t_, a.n_iter_) == (b.t_, b.n_iter_)


def _same_buckets(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.bucket_weights_, b.bucket_weights_))


# ----------------------------------------------------------------------------
# The cluster
# ----------------------------------------------------------------------------


def test_workers_are_separate_processes_with_one_numba_thread(client):
    assert len(client.scheduler_info()["workers"]) == 2
    pids = _worker_pids(client)
    assert len(pids) == 2 and os.getpid() not in pids
    assert set(client.run(lambda: os.environ.get("NUMBA_NUM_THREADS")).values()) == {"1"}
    # The pool size Numba was started with, and the threads it uses: 1, not the cores.
    assert set(client.run(lambda: numba.config.NUMBA_NUM_THREADS).values()) == {1}
    assert set(client.run(numba.get_num_threads).values()) == {1}
    # This process keeps its own setting, and can still compile.
    assert "NUMBA_NUM_THREADS" not in os.environ or os.environ["NUMBA_NUM_THREADS"] == str(
        numba.config.NUMBA_NUM_THREADS
    )
    assert numba.njit(lambda x: x + 1)(1) == 2


# ----------------------------------------------------------------------------
# Incremental: partial_fit over the blocks of a Dask collection
# ----------------------------------------------------------------------------


def _block_order(n_blocks, random_state):
    """The order in which ``dask_ml`` feeds blocks to ``partial_fit``.

    ``dask_ml._partial.fit`` shuffles ``list(range(n_blocks))`` in place with
    ``sklearn.utils.check_random_state(random_state)``; for an int that is
    ``np.random.RandomState(random_state)``.
    """
    order = list(range(n_blocks))
    np.random.RandomState(random_state).shuffle(order)
    return order


def _block(X, y, i):
    """Block ``i`` of the Dask arrays ``X`` and ``y``, computed: a stream of NumPy blocks."""
    return X.blocks[i].compute(), y.blocks[i].compute()


def test_incremental_on_dask_array_equals_partial_fit_loop(client, digits):
    X, y = digits
    X_train, y_train, X_test, y_test = X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]
    X_blocks = da.from_array(X_train, chunks=(BLOCK_ROWS, -1))
    y_blocks = da.from_array(y_train, chunks=BLOCK_ROWS)
    n_blocks = X_blocks.numblocks[0]
    epochs = 4

    model = dask_ml_wrappers.Incremental(
        HashedMLPClassifier(**PARAMS, random_state=0), random_state=0
    )
    with distributed.get_task_stream(client) as stream:
        for _ in range(epochs):
            # Each call is one pass over every block; the estimator carries on.
            model.partial_fit(X_blocks, y_blocks, classes=CLASSES)
    fitted = model.estimator_

    # The partial_fit calls ran on the workers, one per block and epoch. dask_ml keys them
    # ("fit-<token>", i) for i >= 0; ("fit-<token>", -1) holds the estimator it starts from.
    fit_tasks = [
        t
        for t in stream.data
        if isinstance(t["key"], tuple) and str(t["key"][0]).startswith("fit-") and t["key"][1] >= 0
    ]
    assert len(fit_tasks) == epochs * n_blocks
    assert {t["worker"] for t in fit_tasks} <= set(client.scheduler_info()["workers"])

    # The same blocks, in the same order, fed to partial_fit here: the same model.
    order = _block_order(n_blocks, random_state=0)
    assert order != sorted(order)
    reference = HashedMLPClassifier(**PARAMS, random_state=0)
    in_order = HashedMLPClassifier(**PARAMS, random_state=0)
    for _ in range(epochs):
        for i in order:
            reference.partial_fit(*_block(X_blocks, y_blocks, i), classes=CLASSES)
        for i in range(n_blocks):
            in_order.partial_fit(*_block(X_blocks, y_blocks, i), classes=CLASSES)
    _assert_same_model(fitted, reference)
    # The comparison can tell block orders apart.
    assert not _same_buckets(fitted, in_order)

    # It learned (chance is 0.1), and predicts blockwise on the cluster as it does here on
    # the same blocks. The same blocks, and one BLAS thread as in the workers: float32
    # matrix products differ in their last bits with the number of rows multiplied at once
    # and with OpenBLAS's thread count (by up to 4e-7 here, as for any float32 MLP).
    assert fitted.score(X_test, y_test) > 0.7
    X_test_blocks = da.from_array(X_test, chunks=(100, -1))
    blocks = [X_test_blocks.blocks[i].compute() for i in range(X_test_blocks.numblocks[0])]
    with threadpool_limits(limits=1):
        expected_proba = np.concatenate([reference.predict_proba(b) for b in blocks])
    np.testing.assert_array_equal(model.predict_proba(X_test_blocks).compute(), expected_proba)
    np.testing.assert_array_equal(
        model.predict(X_test_blocks).compute(), CLASSES[expected_proba.argmax(axis=1)]
    )


def test_incremental_on_dask_dataframe_in_block_order(client, digits):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe", reason=REASON)
    X, y = digits
    columns = [f"pixel_{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X[:N_TRAIN], columns=columns)
    target = pd.Series(y[:N_TRAIN], name="digit")
    n_partitions = N_TRAIN // BLOCK_ROWS
    X_parts = dd.from_pandas(frame, npartitions=n_partitions, sort=False)
    y_parts = dd.from_pandas(target, npartitions=n_partitions, sort=False)

    model = dask_ml_wrappers.Incremental(
        HashedMLPClassifier(**PARAMS, random_state=0), shuffle_blocks=False
    )
    model.fit(X_parts, y_parts, classes=CLASSES)

    reference = HashedMLPClassifier(**PARAMS, random_state=0)
    for i in range(n_partitions):
        X_part, y_part = X_parts.get_partition(i).compute(), y_parts.get_partition(i).compute()
        assert len(X_part) == BLOCK_ROWS
        reference.partial_fit(X_part, y_part, classes=CLASSES)
    _assert_same_model(model.estimator_, reference)
    assert list(model.estimator_.feature_names_in_) == columns


def test_incremental_without_classes_fails_clearly(client, digits):
    X, y = digits
    model = dask_ml_wrappers.Incremental(HashedMLPClassifier(**PARAMS, random_state=0))
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        model.fit(da.from_array(X, chunks=(500, -1)), da.from_array(y, chunks=500))


# ----------------------------------------------------------------------------
# Searches on the cluster through joblib's "dask" backend
# ----------------------------------------------------------------------------


def _probe_scorers():
    """Scorers that report where each fit was scored, besides its accuracy.

    Closures, so that they travel to the workers by value (cloudpickle) whatever the
    name pytest imported this module under.
    """

    def pid(estimator, X, y):
        return float(os.getpid())

    def numba_threads(estimator, X, y):
        import numba

        return float(numba.get_num_threads())

    def on_worker(estimator, X, y):
        from distributed import get_worker

        try:
            get_worker()
        except ValueError:
            return 0.0
        return 1.0

    return {"accuracy": "accuracy", "pid": pid, "threads": numba_threads, "worker": on_worker}


def _searches():
    base = HashedMLPClassifier(max_iter=15, learning_rate_init=0.01, random_state=0)
    grid = GridSearchCV(
        base,
        {"compression": [1 / 4, 1 / 16], "hidden_layer_sizes": [(16,), (32,)]},
        cv=2,
        scoring=_probe_scorers(),
        refit="accuracy",
    )
    randomized = RandomizedSearchCV(
        base,
        {"compression": loguniform(1 / 64, 1 / 2), "hidden_layer_sizes": [(16,), (32,)]},
        n_iter=3,
        cv=2,
        scoring=_probe_scorers(),
        refit="accuracy",
        random_state=0,
    )
    return {"grid": grid, "randomized": randomized}


@pytest.mark.parametrize("kind", ["grid", "randomized"])
def test_search_on_dask_backend_runs_on_workers_and_matches_local(client, digits, kind):
    X, y = digits
    X_train, y_train, X_test, y_test = X[:1000], y[:1000], X[1000:], y[1000:]
    on_dask = _searches()[kind]
    # The grid search also sends the data to the workers once, as docs/dask.md shows.
    scatter = [X_train, y_train] if kind == "grid" else None
    with joblib.parallel_backend("dask", scatter=scatter):
        on_dask.fit(X_train, y_train)
    local = _searches()[kind].fit(X_train, y_train)

    results, expected = on_dask.cv_results_, local.cv_results_
    assert [str(p) for p in results["params"]] == [str(p) for p in expected["params"]]
    for key in ("mean_test_accuracy", "split0_test_accuracy", "split1_test_accuracy"):
        np.testing.assert_array_equal(results[key], expected[key])
    assert on_dask.best_params_ == local.best_params_
    _assert_same_model(on_dask.best_estimator_, local.best_estimator_)
    assert on_dask.best_estimator_.score(X_test, y_test) > 0.8

    # Every fit was scored in a worker process, on one Numba thread.
    pids = np.concatenate([results["split0_test_pid"], results["split1_test_pid"]])
    assert set(pids.astype(int)) <= _worker_pids(client)
    assert set(results["mean_test_worker"]) == {1.0}
    assert set(results["mean_test_threads"]) == {1.0}
    # The local search ran here, outside any worker.
    assert set(expected["mean_test_worker"]) == {0.0}
    assert set(expected["mean_test_pid"]) == {float(os.getpid())}
