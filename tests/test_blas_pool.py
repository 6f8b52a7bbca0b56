"""OpenBLAS's parallel sections on the package's pool of sleeping threads (``_blas_pool``)."""

import multiprocessing
import threading
import time
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
        except AssertionError as error:
            errors.append(error)

    with blas_sections_on_pool():
        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(pairs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
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
def test_a_section_with_more_jobs_than_workers_starts_workers(two_blas_threads):
    from threadpoolctl import ThreadpoolController

    with blas_sections_on_pool():
        workers = _blas_pool._pool.n_workers
        controller = ThreadpoolController().select(internal_api="openblas")
        with controller.limit(limits=workers + 2):
            n_threads = _blas_pool._openblas().get_num_threads()
            a = np.random.default_rng(2).standard_normal((800, 800))
            expected = a @ a
            if n_threads < workers + 2:
                pytest.skip("OpenBLAS would not take more threads here")
            np.testing.assert_array_equal(a @ a, expected)
            assert _blas_pool._pool.n_workers >= n_threads - 1
        assert np.array_equal(a @ a, expected)


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
        import warnings

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


def test_no_fit_changes_blas_for_small_models(monkeypatch):
    monkeypatch.setenv(ENV_SWITCH, "1")
    X = np.random.default_rng(5).standard_normal((64, 8))
    y = np.arange(64) % 2
    before = _sections_run()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        HashedMLPClassifier(hidden_layer_sizes=(16,), max_iter=2, random_state=0).fit(X, y)
    assert _sections_run() == before
