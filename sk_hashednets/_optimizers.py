"""Stochastic optimizers that update a list of arrays in place.

The update rules, learning-rate schedules and stopping rules are those of
scikit-learn's ``sklearn/neural_network/_stochastic_optimizers.py``; the arrays
(bucket vectors and intercepts) are updated in place, with no new list per
step, and may be NumPy or CuPy arrays. Each step goes through the training
backend's ``sgd_update`` or ``adam_update``: the CPU's Numba kernels make one
pass over memory and give the formulas' bits (:mod:`sk_hashednets._kernels._updates`).
"""

import numpy as np


class BaseOptimizer:
    """Base class: a learning rate and the end-of-epoch hooks.

    Parameters
    ----------
    learning_rate_init : float
        The initial step size.
    """

    def __init__(self, learning_rate_init=0.1):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)

    def update_params(self, params, grads, backend):
        """Take one step on every parameter array, in place.

        Parameters
        ----------
        params, grads : list of arrays
        backend : Backend
            The backend whose arrays these are: its ``sgd_update`` or
            ``adam_update`` applies the step.
        """
        raise NotImplementedError

    def iteration_ends(self, time_step):
        """Hook called at the end of each epoch with the number of samples seen."""

    #: The solver's name, as the estimators' ``solver`` spells it.
    kind = None

    #: Names of the state's lists of arrays (one array per parameter).
    state_arrays = ()

    def convert_state(self, convert):
        """Replace every state array ``a`` by ``convert(a)`` (to or from a device)."""

    def state(self):
        """The state that training continues from, for a model file.

        Returns
        -------
        scalars : dict
            The current learning rate, and the step count where there is one.
        arrays : dict of list of arrays
            For each name of ``state_arrays``, one array per parameter.
        """
        return {"learning_rate": float(self.learning_rate)}, {}

    def set_state(self, scalars, arrays):
        """Continue from a state returned by :meth:`state`.

        Parameters
        ----------
        scalars : dict
        arrays : dict of list of arrays
        """
        self.learning_rate = float(scalars["learning_rate"])

    def trigger_stopping(self, msg, verbose):
        """Decide whether to stop after too many epochs without improvement.

        Returns
        -------
        is_stopping : bool
        """
        if verbose:
            print(msg + " Stopping.")
        return True


class SGDOptimizer(BaseOptimizer):
    """Stochastic gradient descent with momentum (Nesterov's or not).

    Parameters
    ----------
    params : list of arrays
        Parameters to update in place; velocities are allocated like them.
    learning_rate_init : float, default=0.1
    lr_schedule : {"constant", "adaptive", "invscaling"}, default="constant"
    momentum : float, default=0.9
    nesterov : bool, default=True
    power_t : float, default=0.5
    xp : module, default=numpy
        The array module of ``params`` (the backend's ``xp``).
    """

    def __init__(
        self,
        params,
        learning_rate_init=0.1,
        lr_schedule="constant",
        momentum=0.9,
        nesterov=True,
        power_t=0.5,
        *,
        xp=np,
    ):
        super().__init__(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        self.velocities = [xp.zeros_like(p) for p in params]

    kind = "sgd"
    state_arrays = ("velocity",)

    def convert_state(self, convert):
        """Replace every velocity ``v`` by ``convert(v)`` (to or from a device)."""
        self.velocities = [convert(v) for v in self.velocities]

    def state(self):
        """The learning rate and the velocities (see :meth:`BaseOptimizer.state`)."""
        return {"learning_rate": float(self.learning_rate)}, {"velocity": self.velocities}

    def set_state(self, scalars, arrays):
        """Continue from a state returned by :meth:`state`."""
        super().set_state(scalars, arrays)
        self.velocities = list(arrays["velocity"])

    def iteration_ends(self, time_step):
        """Apply the inverse-scaling schedule, if chosen."""
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        """Stop, or with the adaptive schedule divide the learning rate by 5."""
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False

    def update_params(self, params, grads, backend):
        """Take one step: ``v = momentum * v - lr * g``, then move the parameters."""
        for param, velocity, grad in zip(params, self.velocities, grads):
            backend.sgd_update(
                param, velocity, grad, self.learning_rate, self.momentum, self.nesterov
            )


class AdamOptimizer(BaseOptimizer):
    """Adam (Kingma and Ba, 2014), with scikit-learn's bias correction.

    Parameters
    ----------
    params : list of arrays
        Parameters to update in place; moments are allocated like them.
    learning_rate_init : float, default=0.001
    beta_1 : float, default=0.9
    beta_2 : float, default=0.999
    epsilon : float, default=1e-8
    xp : module, default=numpy
        The array module of ``params`` (the backend's ``xp``).
    """

    def __init__(
        self, params, learning_rate_init=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, *, xp=np
    ):
        super().__init__(learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.ms = [xp.zeros_like(p) for p in params]
        self.vs = [xp.zeros_like(p) for p in params]

    kind = "adam"
    state_arrays = ("m", "v")

    def convert_state(self, convert):
        """Replace every moment array ``a`` by ``convert(a)`` (to or from a device)."""
        self.ms = [convert(m) for m in self.ms]
        self.vs = [convert(v) for v in self.vs]

    def state(self):
        """The learning rate, the step count and the moments (see :meth:`BaseOptimizer.state`)."""
        scalars = {"learning_rate": float(self.learning_rate), "t": int(self.t)}
        return scalars, {"m": self.ms, "v": self.vs}

    def set_state(self, scalars, arrays):
        """Continue from a state returned by :meth:`state`."""
        super().set_state(scalars, arrays)
        self.t = int(scalars["t"])
        self.ms = list(arrays["m"])
        self.vs = list(arrays["v"])

    def update_params(self, params, grads, backend):
        """Take one Adam step on every parameter array, the learning rate bias-corrected."""
        self.t += 1
        beta_1, beta_2 = self.beta_1, self.beta_2
        self.learning_rate = (
            self.learning_rate_init * (1 - beta_2**self.t) ** 0.5 / (1 - beta_1**self.t)
        )
        for param, m, v, grad in zip(params, self.ms, self.vs, grads):
            backend.adam_update(param, m, v, grad, self.learning_rate, beta_1, beta_2, self.epsilon)
