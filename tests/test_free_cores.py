"""Threads lowered to the free cores for the length of a CPU fit (issue 19 item 5)."""

import os
import subprocess
import sys
import threading
import time

import numba
import numpy as np
import pytest
from sklearn.datasets import load_iris
from threadpoolctl import threadpool_info

from sk_hashednets import HashedMLPClassifier
from sk_hashednets._kernels import _free_cores

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _blas_threads():
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_threads_are_lowered_inside_and_restored_after(monkeypatch):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one thread only: nothing to lower")
    before_numba, before_blas = numba.get_num_threads(), _blas_threads()
    monkeypatch.setattr(_free_cores, "free_cores", lambda: 1)
    with _free_cores.threads_for_free_cores():
        assert numba.get_num_threads() == 1
        assert set(_blas_threads()) == {1}
    assert numba.get_num_threads() == before_numba and _blas_threads() == before_blas


def test_a_fit_in_another_thread_leaves_the_process_blas_limit_alone(monkeypatch):
    """OpenBLAS ignores a raise of its threads from a thread that is not the main one."""
    before_blas = _blas_threads()
    if not before_blas or max(before_blas) < 2 or numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one thread only: nothing to lower")
    monkeypatch.setattr(_free_cores, "free_cores", lambda: 1)
    inside = {}

    def fit():
        with _free_cores.threads_for_free_cores():
            inside["numba"], inside["blas"] = numba.get_num_threads(), _blas_threads()

    worker = threading.Thread(target=fit)
    worker.start()
    worker.join(timeout=60)
    assert inside["numba"] == 1  # Numba's count is the thread's own: lowered
    assert inside["blas"] == before_blas
    assert _blas_threads() == before_blas


def test_threads_are_never_raised(monkeypatch):
    monkeypatch.setattr(_free_cores, "free_cores", lambda: 10_000)
    numba.set_num_threads(1)
    try:
        with _free_cores.threads_for_free_cores():
            assert numba.get_num_threads() == 1
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_fit_runs_with_the_free_cores_and_gives_the_same_model(monkeypatch):
    X, y = load_iris(return_X_y=True)
    seen = []
    original = _free_cores.threads_for_free_cores

    def spy():
        seen.append(True)
        return original()

    kw = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    reference = HashedMLPClassifier(**kw).fit(X, y)
    monkeypatch.setattr(_free_cores, "free_cores", lambda: 1)
    monkeypatch.setattr(
        "sk_hashednets._multilayer_perceptron.threads_for_free_cores", spy, raising=True
    )
    model = HashedMLPClassifier(**kw).fit(X, y)
    assert seen
    for a, b in zip(model.bucket_weights_, reference.bucket_weights_):
        np.testing.assert_array_equal(a, b)  # the kernels' results do not depend on threads


@linux_only
def test_a_busy_process_is_seen():
    code = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"
    busy = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.3)
        assert _free_cores.busy_elsewhere() >= 1
    finally:
        busy.terminate()
        busy.wait()


def test_the_count_stands_for_max_age_then_is_taken_again(monkeypatch):
    # A stream of small partial_fit calls counts the free cores once a second,
    # not at every call (each count looks three times, 1 ms apart).
    looks, busy = [], [0]

    def counting_busy_elsewhere():
        looks.append(busy[0])
        return busy[0]

    monkeypatch.setattr(_free_cores, "busy_elsewhere", counting_busy_elsewhere)
    monkeypatch.setattr(_free_cores, "_counted", (-float("inf"), 0))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    first = _free_cores.free_cores()
    assert first == cores and len(looks) == 1
    busy[0] = cores  # every core taken from now on
    counted_at = _free_cores._counted[0]
    assert _free_cores.free_cores() == first and len(looks) == 1  # the count stands...
    assert _free_cores._counted[0] == counted_at  # ...and ages: reusing it does not renew it
    # The same count, made longer ago than MAX_AGE_S: counted again, at least 1.
    monkeypatch.setattr(
        _free_cores, "_counted", (time.monotonic() - _free_cores.MAX_AGE_S - 0.1, first)
    )
    assert _free_cores.free_cores() == 1 and len(looks) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_counts_afresh(monkeypatch):
    # multiprocessing's forked workers must not inherit a count of the parent's.
    monkeypatch.setattr(_free_cores, "_counted", (-float("inf"), 0))
    monkeypatch.setattr(_free_cores, "busy_elsewhere", lambda: 0)
    in_parent = _free_cores.free_cores()
    monkeypatch.setattr(_free_cores, "busy_elsewhere", lambda: 10**6)  # every core taken
    pid = os.fork()
    if pid == 0:  # the child: a fresh count sees every core taken
        os._exit(0 if _free_cores.free_cores() == 1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _free_cores.free_cores() == in_parent  # the parent's count stands
