"""Training and prediction data on a device backend's memory (a GPU's).

The estimators validate data on the host. On a device, a fit then copies the
training set there once, whole, when it takes at most ``DATA_SHARE`` of the
device's free memory, and minibatches are gathered on the device; a larger
training set goes there one chunk of whole minibatches at a time. Either way
the minibatches are those of the CPU path, in the same order: the epoch's
shuffle is drawn on the host, by the estimator's ``RandomState``. Sparse input
is densified on the host, a piece at a time, on its way to the device.

This module also holds the rest of the estimators' device orchestration:
input copied to the host for validation (:func:`to_host_input`), the fit's
training state moved to the device and back (:func:`training_state_on`), and
the device's out-of-memory errors turned into advice
(:func:`device_memory_errors`).

The functions take a backend (see :mod:`sk_hashednets._kernels`) and never
import CuPy.
"""

from contextlib import contextmanager

import scipy.sparse as sp
from sklearn.utils import _safe_indexing, gen_batches

from ._kernels import is_device_array

#: Share of the device's free memory that the training data (or one chunk of
#: it, or one chunk of the rows to predict) may take: the rest is left for the
#: activations, the tile buffers and cuBLAS's workspace.
DATA_SHARE = 0.5

#: Dense bytes of sparse rows densified on the host per copy to the device.
PIECE_BYTES = 64 * 2**20


def to_device_rows(backend, A, rows=None):
    """Rows of ``A`` as a dense array on the backend's device.

    Parameters
    ----------
    backend : object
        A device backend.
    A : {ndarray, sparse matrix} of shape (n_samples, ...)
        Host data.
    rows : ndarray of int or slice, default=None
        The rows to copy, in this order (a slice of a dense array is copied
        without a host copy first); None copies them all.

    Returns
    -------
    A_device : device array
    """
    if rows is not None:
        A = _safe_indexing(A, rows)
    if not sp.issparse(A):
        return backend.to_device(A)
    out = backend.empty(A.shape, A.dtype)
    step = max(1, PIECE_BYTES // max(1, A.shape[1] * A.dtype.itemsize))
    for start in range(0, A.shape[0], step):
        out[start : start + step] = backend.to_device(A[start : start + step].toarray())
    return out


def rows_per_chunk(backend, n_rows, row_bytes, multiple_of=1):
    """How many rows of ``row_bytes`` bytes to hold on the device at once.

    Parameters
    ----------
    backend : object
        A device backend, asked for its free memory.
    n_rows : int
        Rows in all.
    row_bytes : int
        Device bytes that one row takes.
    multiple_of : int, default=1
        A chunk smaller than ``n_rows`` holds a multiple of this many rows
        (whole minibatches), and at least that many.

    Returns
    -------
    rows : int
        ``n_rows`` when they all fit in ``DATA_SHARE`` of the free memory.
    """
    budget = int(backend.free_memory() * DATA_SHARE)
    if n_rows * row_bytes <= budget:
        return n_rows
    return max(multiple_of, budget // max(1, row_bytes) // multiple_of * multiple_of)


def _row_bytes(A):
    """Device bytes of one row of ``A``, dense (sparse rows are densified there)."""
    return (A.shape[1] if A.ndim > 1 else 1) * A.dtype.itemsize


class DeviceMinibatches:
    """The training arrays of one fit, and their minibatches on the device.

    Parameters
    ----------
    backend : object
        A device backend.
    arrays : list of {ndarray, sparse matrix, None}
        Host arrays with one row per sample (X, y, sample weights); None
        entries stay None.
    batch_size : int
        Chunks hold whole minibatches of this size.
    """

    def __init__(self, backend, arrays, batch_size):
        self.backend = backend
        self.arrays = list(arrays)
        n_rows = self.arrays[0].shape[0]
        row_bytes = sum(_row_bytes(a) for a in self.arrays if a is not None)
        self.chunk_rows = rows_per_chunk(backend, n_rows, row_bytes, batch_size)
        # The whole training set, copied once for all epochs, when it fits.
        self.resident = None
        if self.chunk_rows == n_rows:
            self.resident = self._copy(None)

    def _copy(self, rows):
        return [None if a is None else to_device_rows(self.backend, a, rows) for a in self.arrays]

    def epoch(self, sample_idx, batch_size, shuffled):
        """Minibatches of one epoch, in the order of ``sample_idx``.

        Parameters
        ----------
        sample_idx : ndarray of int
            The epoch's order of the samples (``arange`` when not shuffled).
        batch_size : int
        shuffled : bool
            Whether ``sample_idx`` is a permutation (else it is ``arange``).

        Yields
        ------
        batch_slice : slice
            The minibatch's positions in ``sample_idx``.
        arrays : list of device arrays (or None)
            The minibatch's rows of each array.
        """
        n_rows = len(sample_idx)
        if self.resident is not None:
            index = self.backend.to_device(sample_idx) if shuffled else None
            for batch in gen_batches(n_rows, batch_size):
                rows = index[batch] if shuffled else batch
                yield batch, [None if a is None else a[rows] for a in self.resident]
            return
        for start in range(0, n_rows, self.chunk_rows):
            stop = min(start + self.chunk_rows, n_rows)
            chunk = self._copy(sample_idx[start:stop])
            for batch in gen_batches(stop - start, batch_size):
                yield (
                    slice(start + batch.start, start + batch.stop),
                    [None if a is None else a[batch] for a in chunk],
                )


def to_host_input(data):
    """A CuPy array or sparse matrix as its NumPy or SciPy copy; anything else as it is.

    Input is validated on the host, whatever the device: CuPy input is copied
    there first (and a GPU fit copies it back to the device once).
    """
    if is_device_array(data):
        return data.get()
    return data


@contextmanager
def device_memory_errors(backend, max_tile_bytes, batch_size):
    """Re-raise the device's out-of-memory error as a MemoryError that says what to lower.

    Parameters
    ----------
    backend : object
        The device backend.
    max_tile_bytes, batch_size
        The estimator's settings, named in the advice.
    """
    try:
        yield
    except backend.out_of_memory_errors as error:
        raise MemoryError(
            f"The {backend.name} device ran out of memory ({error}). Lower "
            f"max_tile_bytes (now {max_tile_bytes}: the size of one materialised "
            "tile of a virtual matrix, of which each layer keeps up to two on the "
            f"device) or batch_size (now {batch_size!r}), or use device='cpu'."
        ) from error


@contextmanager
def training_state_on(model, backend):
    """Keep a model's training state on the backend's device during a fit, on the host after.

    The state is the buckets, the intercepts, the optimizer's moments and,
    with early stopping, the best buckets and intercepts so far. After an
    error nothing is copied back: the estimator's ``_unchanged_on_error`` puts
    back the host state from before the call.

    Parameters
    ----------
    model : BaseHashedMLP
    backend : object
    """
    if backend.is_host:
        yield
        return
    _convert_training_state(model, backend.to_device)
    yield
    _convert_training_state(model, backend.to_host)


def _convert_training_state(model, convert):
    names = ["bucket_weights_", "intercepts_", "_best_bucket_weights", "_best_intercepts"]
    for name in names:
        if hasattr(model, name):  # the best parameters' copy: under early stopping only
            setattr(model, name, [convert(a) for a in getattr(model, name)])
    if getattr(model, "_optimizer", None) is not None:
        model._optimizer.convert_state(convert)
