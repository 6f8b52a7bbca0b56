"""Bucket index tiles kept from one ``partial_fit`` call to the next.

A layer that fits in one tile hashes its whole virtual matrix into a bucket
index once per fit, and gathers and scatters from it at every step
(``HashedLayer``'s ``keep_index``). ``fit`` trains for many epochs on that
one index. ``partial_fit`` is called once per batch or chunk (streams,
out-of-core data, ``dask_ml``'s ``Incremental``), and hashing every
matrix again at each call cost up to a fifth of the training time of calls
of a few steps (``docs/performance.md``, "partial_fit keeps its bucket
indexes").

So the indexes that a ``partial_fit`` call used are kept after it (and
those of a ``fit`` under ``warm_start``, whose loops call ``fit`` again), in a
registry keyed weakly by the estimator (never pickled, never copied by
``clone``), and the next call takes those of the same backend, shape and hash
instead of hashing again. An index is a pure function of its key, so a kept
one gives the bits of a new one. What a call did not use is dropped at its
end; any other ``fit``, ``set_params``, a call that raises and the
estimator's end drop them all (``docs/memory.md`` says what they cost).
"""

import threading
import weakref
from contextlib import contextmanager

_KEPT = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def index_key(backend, n_in, n_out, layer_hash):
    """The key of a layer's bucket index: everything the index depends on.

    Parameters
    ----------
    backend : Backend
        Where the index lives (its ``name``).
    n_in, n_out : int
        Shape of the virtual matrix.
    layer_hash : LayerHash
        Its hash, shards and their layout included.

    Returns
    -------
    key : tuple
    """
    return backend.name, n_in, n_out, layer_hash


class IndexStore:
    """The bucket index tiles of one fit: kept ones first, new ones hashed on demand.

    Parameters
    ----------
    kept : dict, default=None
        Indexes kept from the model's previous call (``partial_fit``, or
        ``fit`` under ``warm_start``), by :func:`index_key`.

    Attributes
    ----------
    used : dict
        The indexes that this fit's layers asked for, by key.
    """

    def __init__(self, kept=None):
        self._kept = {} if kept is None else kept
        self.used = {}

    def get(self, key, make):
        """The index of ``key``: kept, or ``make()`` if there is none.

        Parameters
        ----------
        key : tuple
            The layer's :func:`index_key`.
        make : callable
            Hashes the index; called with no arguments.

        Returns
        -------
        index : array
        """
        index = self.used.get(key)
        if index is None:
            index = self._kept.pop(key, None)
            if index is None:
                index = make()
            self.used[key] = index
        return index


@contextmanager
def kept_indexes(model, keep):
    """The block of one fit of ``model``, with the store its layers take their indexes from.

    Parameters
    ----------
    model : BaseHashedMLP
    keep : bool
        Reuse the indexes kept from the last call, and keep this fit's after
        it (``partial_fit``, or ``fit`` under ``warm_start``); if False, hash
        anew and keep nothing.

    Yields
    ------
    store : IndexStore
    """
    with _LOCK:
        kept = _KEPT.pop(model, None)  # a fit never holds two copies
    store = IndexStore(kept if keep else None)
    del kept
    yield store  # an exception propagates: nothing is kept
    if keep:
        with _LOCK:
            _KEPT[model] = store.used


def forget_indexes(model):
    """Drop the bucket indexes kept for ``model``, if it has any."""
    with _LOCK:
        _KEPT.pop(model, None)


def kept_index_nbytes(model):
    """Bytes of the bucket indexes kept for ``model`` between calls."""
    with _LOCK:
        return sum(int(index.nbytes) for index in _KEPT.get(model, {}).values())
