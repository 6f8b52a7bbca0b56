"""Numba's threading layer, as importing the package sets it up (``_kernels/_threading.py``).

Each case runs in a fresh interpreter: Numba chooses its layer once per process.
"""

import json
import os
import platform
import subprocess
import sys
from importlib import metadata

import pytest

# Each case starts a fresh Python: the slow tier (pyproject.toml).
pytestmark = pytest.mark.slow

PROBE = """
import json, os
import sklearn  # as in user code: scikit-learn (and its OpenMP runtime) first
import numba
import numpy as np
from sk_hashednets import HashedMLPClassifier
X = np.random.default_rng(0).normal(size=(40, 6))
HashedMLPClassifier(hidden_layer_sizes=(8,), max_iter=2).fit(X, X[:, 0] > 0)
print(json.dumps({"layer": numba.threading_layer(),
                  "wait_policy": os.environ.get("OMP_WAIT_POLICY")}))
"""


def _probe(**env):
    clean = {
        k: v for k, v in os.environ.items() if k not in ("NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY")
    }
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _has_tbb_wheel():
    try:
        metadata.distribution("tbb")
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(
    not (_has_tbb_wheel() and sys.platform == "linux" and platform.machine() == "x86_64"),
    reason="the tbb wheel is a dependency on x86-64 Linux only",
)
def test_tbb_layer_is_used_where_the_tbb_wheel_is_installed():
    # Inside a virtual environment the loader does not search <venv>/lib, where
    # the wheel puts libtbb: without the package's preload Numba falls back to
    # OpenMP, twenty times slower on two cores.
    assert _probe()["layer"] == "tbb"


def test_a_layer_the_user_chose_is_kept_and_openmp_threads_do_not_spin():
    probe = _probe(NUMBA_THREADING_LAYER="omp")
    assert probe == {"layer": "omp", "wait_policy": "PASSIVE"}


def test_the_users_openmp_wait_policy_is_kept():
    probe = _probe(NUMBA_THREADING_LAYER="omp", OMP_WAIT_POLICY="ACTIVE")
    assert probe["wait_policy"] == "ACTIVE"
