"""The optimizers' updates: scikit-learn's formulas, and Numba kernels that give their bits.

The formulas (:func:`sgd_formula`, :func:`adam_formula`: scikit-learn's
``_stochastic_optimizers.py``, in place) take any array module's arrays: the
CUDA backend uses them on CuPy arrays. On the CPU they make one pass over
memory per operation and a temporary array for most of them: ten passes or so
per Adam step. The kernels (:func:`sgd_update`, :func:`adam_update`) read the
gradient and the state once and write the state and the parameters once, with
the same operations in the same order and precision, so that they give the
same bits as the formulas.
That needs the scalars in the arrays' dtype (as NumPy's weak Python scalars
are): the caller casts them. ``error_model="numpy"`` lets a division by zero
give inf as NumPy's does, instead of a check per element that would keep the
loops from being vectorised.

Elements are independent: fixed chunks run in parallel, and the result does
not depend on the number of threads.
"""

import numpy as np
from numba import njit, prange

#: Elements per parallel chunk: a bias vector or a small bucket vector is one chunk.
_CHUNK = 1 << 16


def sgd_formula(param, velocity, grad, learning_rate, momentum, nesterov):
    """One step of SGD with momentum, in place, by scikit-learn's formulas.

    Parameters
    ----------
    param, velocity, grad : array of shape (n,)
        NumPy or CuPy; ``param`` and ``velocity`` are updated.
    learning_rate, momentum : float
    nesterov : bool
    """
    velocity *= momentum
    velocity -= learning_rate * grad
    if nesterov:
        param += momentum * velocity - learning_rate * grad
    else:
        param += velocity


def adam_formula(param, m, v, grad, learning_rate, beta_1, beta_2, epsilon):
    """One Adam step, in place, by scikit-learn's formulas.

    Parameters
    ----------
    param, m, v, grad : array of shape (n,)
        NumPy or CuPy; ``param``, ``m`` and ``v`` are updated.
    learning_rate, beta_1, beta_2, epsilon : float
    """
    m *= beta_1
    m += (1 - beta_1) * grad
    v *= beta_2
    v += (1 - beta_2) * grad**2
    param -= learning_rate * m / (v**0.5 + epsilon)


def kernels_take(*arrays):
    """Whether the Numba kernels can update these: contiguous NumPy vectors of one float dtype."""
    first = arrays[0]
    return all(
        type(a) is np.ndarray
        and a.ndim == 1
        and a.dtype == first.dtype
        and a.flags.c_contiguous
        and a.dtype.kind == "f"
        for a in arrays
    )


@njit(cache=True, error_model="numpy")
def _adam_chunk(
    param, m, v, grad, learning_rate, beta_1, beta_2, one_minus_beta_1, one_minus_beta_2, epsilon
):
    for i in range(param.shape[0]):
        g = grad[i]
        m_i = m[i] * beta_1
        m_i = m_i + one_minus_beta_1 * g
        v_i = v[i] * beta_2
        v_i = v_i + one_minus_beta_2 * (g * g)
        m[i] = m_i
        v[i] = v_i
        param[i] = param[i] - (learning_rate * m_i) / (np.sqrt(v_i) + epsilon)


@njit(parallel=True, cache=True, error_model="numpy")
def adam_update(
    param, m, v, grad, learning_rate, beta_1, beta_2, one_minus_beta_1, one_minus_beta_2, epsilon
):
    """One Adam step, in place.

    ``m = beta_1 m + (1 - beta_1) g``, ``v = beta_2 v + (1 - beta_2) g**2`` and
    ``param -= learning_rate m / (sqrt(v) + epsilon)``, each product and sum
    rounded to the arrays' dtype as NumPy rounds it.

    Parameters
    ----------
    param, m, v, grad : ndarray of shape (n,)
        Same dtype, contiguous; ``param``, ``m`` and ``v`` are updated.
    learning_rate, beta_1, beta_2, one_minus_beta_1, one_minus_beta_2, epsilon : scalar
        In the arrays' dtype (``1 - beta`` computed in float64 first, as
        NumPy computes it from Python floats).
    """
    n = param.shape[0]
    for chunk in prange((n + _CHUNK - 1) // _CHUNK):
        lo, hi = chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)
        _adam_chunk(
            param[lo:hi],
            m[lo:hi],
            v[lo:hi],
            grad[lo:hi],
            learning_rate,
            beta_1,
            beta_2,
            one_minus_beta_1,
            one_minus_beta_2,
            epsilon,
        )


@njit(cache=True, error_model="numpy")
def _sgd_chunk(param, velocity, grad, learning_rate, momentum, nesterov):
    for i in range(param.shape[0]):
        step = learning_rate * grad[i]
        v_i = velocity[i] * momentum
        v_i = v_i - step
        velocity[i] = v_i
        if nesterov:
            param[i] = param[i] + (momentum * v_i - step)
        else:
            param[i] = param[i] + v_i


@njit(parallel=True, cache=True, error_model="numpy")
def sgd_update(param, velocity, grad, learning_rate, momentum, nesterov):
    """One step of SGD with momentum, in place.

    ``velocity = momentum velocity - learning_rate g``, then ``param +=
    velocity``, or with Nesterov's momentum ``param += momentum velocity -
    learning_rate g``.

    Parameters
    ----------
    param, velocity, grad : ndarray of shape (n,)
        Same dtype, contiguous; ``param`` and ``velocity`` are updated.
    learning_rate, momentum : scalar
        In the arrays' dtype.
    nesterov : bool
    """
    n = param.shape[0]
    for chunk in prange((n + _CHUNK - 1) // _CHUNK):
        lo, hi = chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)
        _sgd_chunk(param[lo:hi], velocity[lo:hi], grad[lo:hi], learning_rate, momentum, nesterov)
