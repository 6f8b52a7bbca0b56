"""The optimizers' Numba updates against their NumPy formulas, bit for bit.

On the CPU backend, NumPy vectors go through the kernels of
``sk_hashednets._kernels._updates``; anything else (vectors the kernels do not
take) through the formulas, as CuPy arrays do on the CUDA backend. Both must
give the same bits, so that the device and the array layout change no fitted
model.
"""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from sk_hashednets._kernels import _cpu, _updates
from sk_hashednets._kernels._cpu import CPUBackend
from sk_hashednets._optimizers import AdamOptimizer, SGDOptimizer

# Sizes below one parallel chunk, of one chunk exactly and spanning several.
SIZES = [1, 10, 1 << 16, (1 << 16) * 3 + 5]

OPTIMIZERS = {
    "adam": lambda params: AdamOptimizer(params, learning_rate_init=0.003),
    "sgd": lambda params: SGDOptimizer(params, 0.05, momentum=0.9, nesterov=False),
    "nesterov": lambda params: SGDOptimizer(params, 0.05, momentum=0.9, nesterov=True),
}


def _steps(name, params, gradients, use_kernels, monkeypatch):
    """Run the optimizer over the gradients, with or without the kernels."""
    if not use_kernels:
        monkeypatch.setattr(_cpu, "kernels_take", lambda *arrays: False)
    optimizer = OPTIMIZERS[name](params)
    for grads in gradients:
        optimizer.update_params(params, grads, CPUBackend())
    monkeypatch.undo()
    return params, optimizer


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_kernels_give_the_formulas_bits(name, dtype, monkeypatch):
    rng = np.random.default_rng(0)
    start = [rng.standard_normal(n).astype(dtype) for n in SIZES]
    # Zeros in the first gradient make 0 / (sqrt(0) + eps) steps in Adam.
    gradients = [[np.zeros(n, dtype) for n in SIZES]]
    gradients += [[rng.standard_normal(n).astype(dtype) for n in SIZES] for _ in range(4)]

    by_formula, _ = _steps(name, [p.copy() for p in start], gradients, False, monkeypatch)
    by_kernel, optimizer = _steps(name, [p.copy() for p in start], gradients, True, monkeypatch)

    for formula, kernel, first in zip(by_formula, by_kernel, start):
        assert kernel.dtype == dtype
        assert not np.array_equal(kernel, first)  # the steps moved the parameters
        assert_array_equal(kernel, formula)


def test_adam_kernel_updates_the_moments_as_the_formula(monkeypatch):
    rng = np.random.default_rng(1)
    start = [rng.standard_normal(1000).astype(np.float32)]
    gradients = [[rng.standard_normal(1000).astype(np.float32)] for _ in range(3)]
    _, by_formula = _steps("adam", [start[0].copy()], gradients, False, monkeypatch)
    _, by_kernel = _steps("adam", [start[0].copy()], gradients, True, monkeypatch)
    assert_array_equal(by_kernel.ms[0], by_formula.ms[0])
    assert_array_equal(by_kernel.vs[0], by_formula.vs[0])
    assert by_kernel.t == by_formula.t == 3


@pytest.mark.parametrize(
    "arrays",
    [
        pytest.param(lambda: [np.ones(8), np.ones(8, np.float32)], id="mixed dtypes"),
        pytest.param(lambda: [np.ones(16)[::2], np.ones(8)], id="strided"),
        pytest.param(lambda: [np.ones((2, 4)), np.ones((2, 4))], id="2-D"),
        pytest.param(lambda: [np.ones(8, np.int64), np.ones(8, np.int64)], id="integers"),
    ],
)
def test_kernels_take_only_contiguous_float_vectors_of_one_dtype(arrays):
    assert not _updates.kernels_take(*arrays())


def test_kernels_take_contiguous_float_vectors():
    assert _updates.kernels_take(np.ones(8), np.zeros(8), np.ones(8))
