"""Hash specification, reference implementation and compute backends.

The estimators never import Numba or CuPy: they ask :func:`get_backend` for a
backend object and call its methods.
"""

from ._hashing import BLOCK_SIZE, HASH_SPEC_VERSION, HASHINGS, hash_pairs, sign_seed

__all__ = [
    "BLOCK_SIZE",
    "HASHINGS",
    "HASH_SPEC_VERSION",
    "get_backend",
    "hash_pairs",
    "resolve_device",
    "sign_seed",
]


def resolve_device(device):
    """Name of the device that ``device`` designates on this machine.

    Parameters
    ----------
    device : {"cpu", "cuda", "auto"}

    Returns
    -------
    device : {"cpu"}
        "auto" resolves to "cpu" until a GPU backend exists.

    Raises
    ------
    ValueError
        If ``device="cuda"``: this version ships no GPU backend.
    """
    if device == "cuda":
        raise ValueError(
            "device='cuda' is not available: this version of sk_hashednets has only "
            "the CPU backend (the CuPy backend is planned). Use device='cpu' or "
            "device='auto'."
        )
    if device in ("cpu", "auto"):
        return "cpu"
    raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}.")


def get_backend(device):
    """Backend object for a resolved device name.

    Parameters
    ----------
    device : {"cpu"}
        As returned by :func:`resolve_device`.

    Returns
    -------
    backend : CPUBackend
    """
    if device == "cpu":
        from ._cpu import CPUBackend

        return CPUBackend()
    raise ValueError(f"No backend for device {device!r}.")
