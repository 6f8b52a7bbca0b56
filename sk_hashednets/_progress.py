"""Optional progress bars (tqdm) for long fits."""

from contextlib import nullcontext

import scipy


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError(
            'progress_bar=True needs tqdm: pip install "sk_hashednets[progress]", '
            "or set progress_bar=False."
        ) from exc
    return tqdm


def check_available(enabled):
    """Raise the ImportError of :func:`progress_bar` now, before any training."""
    if enabled:
        _tqdm()


def progress_bar(enabled, total, desc, unit):
    """A tqdm bar as a context manager, or a null context giving None.

    The bar is removed when closed (``leave=False``), so a fit of many epochs
    shows one line at a time, and writes to stderr, leaving ``verbose``'s
    lines on stdout untouched.
    """
    if not enabled:
        return nullcontext()
    return _tqdm()(total=total, desc=desc, unit=unit, unit_scale=True, leave=False)


def lbfgs_progress_callback(bar):
    """A ``scipy.optimize.minimize`` callback that advances ``bar`` per iteration."""

    def callback(intermediate_result):
        bar.update()
        bar.set_postfix(loss=intermediate_result.fun, refresh=False)

    return callback


def lbfgs_display_options(verbose):
    """The L-BFGS-B options that make SciPy print its iterations, as scikit-learn's MLP passes them.

    SciPy 1.15 deprecated the ``disp`` and ``iprint`` options (their removal is
    announced); from that version on, as scikit-learn does, none is passed and
    L-BFGS-B prints nothing. Before it, ``iprint=1`` when ``verbose``.
    """
    major, minor = (int(part) for part in scipy.__version__.split(".")[:2])
    if (major, minor) >= (1, 15):
        return {}
    return {"iprint": 1 if verbose is True or verbose >= 1 else -1}
