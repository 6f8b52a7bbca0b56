"""OpenBLAS's parallel sections on the package's pool of sleeping threads (``_blas_pool``)."""

import multiprocessing
import os
import threading
import time
import warnings
from contextlib import nullcontext

import numpy as np
import pytest

from sk_hashednets import HashedMLPClassifier, _multilayer_perceptron
from sk_hashednets._kernels import _blas_pool
from sk_hashednets._kernels._blas_pool import (
    ENV_SWITCH,
    MIN_MULTIPLY_ADDS,
    blas_sections_on_pool,
    worth_a_pool,
)

needs_callback = pytest.mark.skipif(
    _blas_pool._openblas() is None,
    reason="NumPy's BLAS is not an OpenBLAS with openblas_set_threads_callback_function",
)


@pytest.fixture
def two_blas_threads():
    """NumPy's OpenBLAS on (at least) two threads for the test, whatever the machine."""
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController().select(internal_api="openblas")
    previous = _blas_pool._openblas().get_num_threads()
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("OpenBLAS ignores a raise of its threads from another thread")
    with controller.limit(limits=max(2, previous)):
        if _blas_pool._openblas().get_num_threads() < 2:
            pytest.skip("OpenBLAS would not run on two threads here")
        yield


def _products(rng):
    shapes = [(256, 512, 512), (512, 64, 700), (100, 784, 1000), (7, 3, 5), (300, 300, 300)]
    return [
        (rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype))
        for (m, k, n) in shapes
        for dtype in (np.float32, np.float64)
    ]


def _sections_run():
    return int(_blas_pool._pool.state[_blas_pool._GENERATION]) if _blas_pool._pool else 0


@needs_callback
def test_products_have_the_bits_of_openblas_threads(two_blas_threads):
    pairs = _products(np.random.default_rng(0))
    expected = [a @ b for a, b in pairs]
    with blas_sections_on_pool() as on_pool:
        before = _sections_run()
        got = [a @ b for a, b in pairs]
        assert on_pool
        assert _sections_run() > before  # the products did run on the pool
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


@needs_callback
def test_the_callback_is_removed_when_the_last_user_leaves(two_blas_threads):
    a = np.ones((300, 300))
    with blas_sections_on_pool():
        with blas_sections_on_pool():
            a @ a
        count = _sections_run()
        a @ a  # the outer block still holds the callback
        assert _sections_run() > count
    count = _sections_run()
    a @ a
    assert _sections_run() == count
    assert _blas_pool._users == 0


@needs_callback
def test_products_from_several_threads_at_once(two_blas_threads):
    rng = np.random.default_rng(1)
    pairs = [(rng.standard_normal((200, 400)), rng.standard_normal((400, 300))) for _ in range(6)]
    expected = [a @ b for a, b in pairs]
    errors = []

    def work(i):
        try:
            for _ in range(5):
                np.testing.assert_array_equal(pairs[i][0] @ pairs[i][1], expected[i])
        except BaseException as error:
            errors.append(error)

    with blas_sections_on_pool():
        before = _sections_run()
        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(pairs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a product hung"
        assert _sections_run() > before
    assert not errors


@needs_callback
def test_idle_workers_sleep_after_a_product(two_blas_threads):
    """OpenBLAS's own threads spin for about 0.1 s after a product; the pool's do not."""
    a = np.ones((600, 600), np.float32)
    with blas_sections_on_pool():
        time.sleep(0.3)  # OpenBLAS's own threads, if any ran before, fall asleep
        a @ a
        start = time.process_time()
        time.sleep(0.05)
        spent = time.process_time() - start
    assert spent < 0.02, f"the process burnt {1e3 * spent:.1f} ms of CPU in a 50 ms sleep"


@needs_callback
def test_a_section_with_more_jobs_than_workers_starts_workers(two_blas_threads, monkeypatch):
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController().select(internal_api="openblas")
    n_threads = _blas_pool._openblas().get_num_threads()
    a = np.random.default_rng(2).standard_normal((800, 800))
    with controller.limit(limits=n_threads + 1):
        if _blas_pool._openblas().get_num_threads() != n_threads + 1:
            pytest.skip("OpenBLAS would not take more threads here")
        expected = a @ a  # on OpenBLAS's own threads, as many as the pool will use
    # A pool of its own, started for n_threads, then a section of one job more.
    monkeypatch.setattr(_blas_pool, "_pool", None)
    monkeypatch.setattr(_blas_pool, "_users", 0)
    with blas_sections_on_pool():
        pool = _blas_pool._pool
        assert pool.n_workers == n_threads - 1
        with controller.limit(limits=n_threads + 1):
            np.testing.assert_array_equal(a @ a, expected)
        assert pool.n_workers == n_threads
    pool.close()


@pytest.mark.parametrize(
    "value, on", [(None, False), ("0", False), ("off", False), ("1", True), (" ON ", True)]
)
def test_the_switch(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv(ENV_SWITCH, raising=False)
    else:
        monkeypatch.setenv(ENV_SWITCH, value)
    assert _blas_pool.enabled() is on


def test_the_size_rule():
    with blas_sections_on_pool(use=False) as on_pool:
        assert not on_pool
    assert worth_a_pool(256, [4096, 4096, 10])
    assert not worth_a_pool(32, [64, 100, 10])
    side = int(np.ceil((MIN_MULTIPLY_ADDS / 2) ** 0.5))
    assert worth_a_pool(2, [side, side, 3]) and not worth_a_pool(1, [side, side, 3])


def _child_product(queue):
    a = np.random.default_rng(3).standard_normal((400, 400))
    queue.put(float((a @ a).sum()))


@needs_callback
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork here")
def test_a_forked_child_uses_openblas_own_threads(two_blas_threads):
    """The child has none of the parent's workers: its products must not wait for them."""
    a = np.random.default_rng(3).standard_normal((400, 400))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    with blas_sections_on_pool():
        child = context.Process(target=_child_product, args=(queue,))
        child.start()
        child.join(timeout=60)
        alive = child.is_alive()
        if alive:
            child.kill()
    assert not alive, "the forked child hung in a product"
    assert child.exitcode == 0
    assert queue.get(timeout=5) == float((a @ a).sum())


@needs_callback
def test_a_fit_runs_its_products_on_the_pool_with_the_same_bits(two_blas_threads, monkeypatch):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((512, 512)).astype(np.float32)
    y = rng.integers(0, 3, 512)
    monkeypatch.setattr(_blas_pool, "MIN_MULTIPLY_ADDS", 1)
    # Beside other busy processes (the suite's other workers) a fit would lower
    # BLAS to one thread, which runs no sections.
    monkeypatch.setattr(_multilayer_perceptron, "threads_for_free_cores", nullcontext)
    params = dict(hidden_layer_sizes=(512,), batch_size=256, max_iter=2, random_state=0)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return HashedMLPClassifier(**params).fit(X, y)

    monkeypatch.delenv(ENV_SWITCH, raising=False)
    before = _sections_run()
    native = fit()  # the pool is opt-in
    assert _sections_run() == before
    monkeypatch.setenv(ENV_SWITCH, "1")
    pooled = fit()
    assert _sections_run() > before
    for a, b in zip(native.bucket_weights_, pooled.bucket_weights_):
        np.testing.assert_array_equal(a, b)
    assert _blas_pool._users == 0


@pytest.mark.parametrize(
    "switch, batch, use", [("1", 64, False), ("1", 256, True), ("", 256, False)]
)
def test_what_a_fit_asks_of_the_pool(monkeypatch, switch, batch, use):
    """A fit uses the pool where the switch is on and its largest product reaches the rule."""
    asked = []

    def spy(use=True):
        asked.append(use)
        return nullcontext(False)

    monkeypatch.setenv(ENV_SWITCH, switch)
    monkeypatch.setattr(_blas_pool, "blas_sections_on_pool", spy)
    # 256 rows x 64 x 64 reaches the rule; 64 rows do not.
    monkeypatch.setattr(_blas_pool, "MIN_MULTIPLY_ADDS", 256 * 64 * 64)
    X = np.random.default_rng(5).standard_normal((256, 64))
    y = np.arange(256) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        HashedMLPClassifier(
            hidden_layer_sizes=(64,), batch_size=batch, max_iter=1, random_state=0
        ).fit(X, y)
    assert asked == [use]


@pytest.mark.parametrize(
    "native, max_threads, n_jobs, expected",
    [
        (2, 64, 2, (1, True)),
        (33, 64, 32, (32, True)),
        (33, 64, 33, (32, False)),
        (1, 4, 4, (0, True)),
    ],
)
def test_first_slot(native, max_threads, n_jobs, expected):
    first, fits = _blas_pool._first_slot(native, max_threads, n_jobs)
    assert (first, bool(fits)) == expected


@needs_callback
def test_no_pool_where_its_slots_do_not_fit(two_blas_threads, monkeypatch):
    library = _blas_pool._openblas()
    cramped = library._replace(max_threads=library.native_threads.value)
    monkeypatch.setattr(_blas_pool, "_openblas", lambda: cramped)
    with blas_sections_on_pool() as on_pool:
        assert not on_pool


@needs_callback
def test_a_section_that_no_longer_fits_runs_on_openblas_threads(two_blas_threads):
    """Job 0 in a free slot, the others handed to OpenBLAS's own threads: same bits, no hang."""
    a = np.random.default_rng(6).standard_normal((700, 700)).astype(np.float32)
    expected = a @ a
    with blas_sections_on_pool():
        state = _blas_pool._pool.state
        max_threads = int(state[_blas_pool._MAX_THREADS])
        state[_blas_pool._MAX_THREADS] = 1  # as if OpenBLAS's threads had been raised
        try:
            before = _sections_run()
            for _ in range(3):
                np.testing.assert_array_equal(a @ a, expected)
            assert _sections_run() == before  # no worker took part
        finally:
            state[_blas_pool._MAX_THREADS] = max_threads


_AFTER_CLOSE = """
import numpy as np
from sk_hashednets._kernels import _blas_pool
a = np.ones((600, 600))
with _blas_pool.blas_sections_on_pool() as on_pool:
    a @ a
_blas_pool._close_at_exit()
with _blas_pool.blas_sections_on_pool() as again:
    a @ a
print(on_pool, again)
"""


@pytest.mark.slow
@needs_callback
def test_a_closed_pool_is_not_used_and_the_process_exits():
    import subprocess
    import sys

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    result = subprocess.run(
        [sys.executable, "-c", _AFTER_CLOSE], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]
