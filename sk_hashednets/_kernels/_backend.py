"""What a compute backend offers: the methods the estimators call, declared once.

A backend is an array module (``xp``) and the hashed-matrix kernels that work
on its arrays. :class:`Backend` declares what every backend implements;
:class:`BucketIndexing`, :class:`DeviceHashing` and :class:`DirectProducts` are
optional capabilities, each announced by a flag (``indexes_buckets``,
``hashes_pairs``, ``multiplies_from_buckets``) that the
capability's class sets, so that the flag and the methods cannot disagree.
The CPU backend (``_cpu.CPUBackend``), the CUDA backend (``_cuda.CUDABackend``)
and the test suite's pretend GPU (``tests/_numpy_device.py``) derive from these
classes and keep their signatures, checked by ``tests/test_backend_protocol.py``.

The hash of a layer's virtual matrix travels as one :class:`LayerHash`.
"""

import abc
import operator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from ._hashing import HASHING_MODES, check_shards, shard_period, sign_seed


@dataclass(frozen=True)
class LayerHash:
    """The hash parameters of one layer's virtual matrix.

    Entry ``(i, j)`` reads bucket ``h(i, j)`` of ``n_buckets`` under ``seed``,
    with the sign of the hash under ``sign_seed`` if ``sign_hash`` (see
    ``docs/hashing.md``). Built once per layer: the seeds are stored as
    ``numpy.uint64`` (the hash's arithmetic must not mix in signed ints) and
    the scheme's name as the kernels' constant, :attr:`mode`.

    Parameters
    ----------
    seed : int
        Seed of the bucket hash, in ``[0, 2**32)``.
    sign_seed : int
        Seed of the sign hash, in ``[0, 2**32)``; a layer's is
        ``sign_seed(seed)`` (:meth:`for_layer`).
    sign_hash : bool
        Whether entries carry a hashed sign.
    hashing : {"element", "block"}
        The hashing scheme.
    n_buckets : int
        K, in ``[1, 2**32)``.
    n_shards : int, default=1
        S: the rows split into S shards, each hashing into its own range of
        buckets (``docs/hashing.md``, "Sharded hashing"); 1 is the unsharded hash.
    n_rows : int, default=None
        Rows of the virtual matrix, which the shards split; needed when ``S > 1``.
    shard_layout : {"cyclic", "contiguous"}, default="cyclic"
        How the shards take the rows: row ``i`` in shard ``i % S`` (hash
        specification version 3) or blocks of consecutive rows (version 2);
        ``_hashing.SHARD_LAYOUTS``.

    Attributes
    ----------
    mode : int
        ``hashing`` as the kernels take it: ``_hashing.ELEMENT_HASHING`` or
        ``_hashing.BLOCK_HASHING``.
    """

    seed: np.uint64
    sign_seed: np.uint64
    sign_hash: bool
    hashing: str
    n_buckets: int
    n_shards: int = 1
    n_rows: int | None = None
    shard_layout: str = "cyclic"
    mode: int = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        for name in ("seed", "sign_seed"):
            value = operator.index(getattr(self, name))
            if not 0 <= value < 2**32:
                raise ValueError(f"{name} must be in [0, 2**32), got {value}.")
            object.__setattr__(self, name, np.uint64(value))
        if self.hashing not in HASHING_MODES:
            raise ValueError(
                f"hashing must be one of {tuple(HASHING_MODES)}, got {self.hashing!r}."
            )
        n_buckets = operator.index(self.n_buckets)
        if not 1 <= n_buckets < 2**32:
            raise ValueError(f"n_buckets must be in [1, 2**32), got {n_buckets}.")
        object.__setattr__(self, "n_buckets", n_buckets)
        n_shards = operator.index(self.n_shards)
        n_rows = None if self.n_rows is None else operator.index(self.n_rows)
        if n_rows is not None and not 1 <= n_rows < 2**32:
            raise ValueError(f"n_rows must be in [1, 2**32), got {n_rows}.")
        check_shards(n_shards, n_rows, n_buckets)
        shard_period(self.shard_layout, n_rows, n_shards)  # checks the layout's name
        object.__setattr__(self, "n_shards", n_shards)
        object.__setattr__(self, "n_rows", n_rows)
        object.__setattr__(self, "sign_hash", bool(self.sign_hash))
        object.__setattr__(self, "mode", HASHING_MODES[self.hashing])

    @classmethod
    def for_layer(
        cls, seed, *, sign_hash, hashing, n_buckets, n_shards=1, n_rows=None, shard_layout="cyclic"
    ):
        """The hash of a layer with seed ``seed``: its sign seed is ``sign_seed(seed)``.

        Parameters
        ----------
        seed : int
            The layer's 32-bit seed.
        sign_hash : bool
        hashing : {"element", "block"}
        n_buckets : int
        n_shards : int, default=1
        n_rows : int, default=None
        shard_layout : {"cyclic", "contiguous"}, default="cyclic"

        Returns
        -------
        layer_hash : LayerHash
        """
        return cls(
            seed, sign_seed(seed), sign_hash, hashing, n_buckets, n_shards, n_rows, shard_layout
        )

    @property
    def shard_period(self):
        """The period of the shards' rows, as the kernels take it (``_hashing.shard_of_row``).

        ``n_shards`` under the cyclic layout, ``n_rows`` under the contiguous
        one, 1 unsharded.
        """
        return shard_period(self.shard_layout, self.n_rows, self.n_shards)

    @property
    def sharded(self):
        """Whether the hash is split into more than one shard."""
        return self.n_shards > 1

    def check_buckets(self, vector, name):
        """Raise ``ValueError`` unless ``vector`` holds one value per bucket.

        Parameters
        ----------
        vector : array of shape (n_buckets,)
        name : str
            What ``vector`` is, for the message.
        """
        if vector.shape != (self.n_buckets,):
            raise ValueError(
                f"{name} must have shape ({self.n_buckets},), one value per bucket of "
                f"the layer's hash, got {vector.shape}."
            )


@dataclass(frozen=True, eq=False)
class GradientFinish:
    """The last two terms of a bucket gradient, which a scatter may write with its sums.

    A scatter given one overwrites the bucket gradient with
    ``(scattered + decay * weights) / divisor``: the L2 penalty's gradient and
    the division by the minibatch's weight. :meth:`apply` is the definition,
    NumPy's formulas on the backend's arrays; a kernel that fuses them gives
    its bits (with :meth:`kernel_scalars`), and one that cannot applies them
    after its sums.

    Parameters
    ----------
    weights : array of shape (n_buckets,)
        The layer's bucket weights, in the bucket gradient's dtype.
    decay : float
        The L2 penalty, ``alpha``.
    divisor : int, float or 0-d array
        The minibatch's weight: its sample count, or its sum of sample weights
        (a scalar, or a 0-d array of the backend's, of the gradient's dtype).
    """

    weights: object
    decay: float
    divisor: object

    def apply(self, bucket_grad):
        """``bucket_grad = (bucket_grad + decay * weights) / divisor``, in place, by NumPy's rules.

        Parameters
        ----------
        bucket_grad : array of shape (n_buckets,)
            The scattered sums on entry.
        """
        bucket_grad += self.decay * self.weights
        bucket_grad /= self.divisor

    def kernel_scalars(self, dtype):
        """``decay`` and ``divisor`` in ``dtype``, or None where :meth:`apply` computes in another.

        NumPy's promotion (``numpy.result_type``) decides: a Python number
        takes the array's dtype, a NumPy scalar may widen it (NumPy 2: a
        float64 ``alpha`` makes a float32 model's steps float64, rounded back
        when stored). The kernels compute in ``dtype`` only, each step stored
        in it: for a widened step the formulas run instead (the same bits; a
        kernel compiled for the widened scalars would cost every fresh
        install its compilation for a rare case).

        Parameters
        ----------
        dtype : numpy dtype
            The bucket gradient's.

        Returns
        -------
        scalars : tuple of two ``dtype`` scalars, or None
            ``(decay, divisor)``; None where either is not a plain number
            (a 0-d array, say) or NumPy would compute with it in another dtype.
        """
        dtype = np.dtype(dtype)
        values = (self.decay, self.divisor)
        for value in values:
            if not isinstance(value, (int, float, np.integer, np.floating)):
                return None
            if np.result_type(dtype, value) != dtype:
                return None
        return tuple(dtype.type(value) for value in values)


@contextmanager
def finished_after(finish, bucket_grad):
    """Around a scatter that adds into ``bucket_grad``: give it ``finish``'s meaning.

    Zeroes ``bucket_grad`` before the block and applies ``finish`` after it,
    for a backend that does not fuse :class:`GradientFinish`; nothing when
    ``finish`` is None.

    Parameters
    ----------
    finish : GradientFinish or None
        The terms to apply; its weights must have the shape of ``bucket_grad``
        (``ValueError`` otherwise).
    bucket_grad : array of shape (n_buckets,)
        The bucket gradient that the block adds into.
    """
    if finish is None:
        yield
        return
    if finish.weights.shape != bucket_grad.shape:
        raise ValueError(
            f"finish.weights must have the bucket gradient's shape {bucket_grad.shape}, "
            f"got {finish.weights.shape}."
        )
    bucket_grad[...] = 0
    yield
    finish.apply(bucket_grad)


class Backend(abc.ABC):
    """A device's array module and hashed-matrix kernels.

    Subclasses set the class attributes below and implement every method.
    Arrays are the backend's own (NumPy on the CPU, CuPy on a GPU) unless a
    method says otherwise.

    Attributes
    ----------
    name : str
        The device, as ``resolve_device`` names it: ``"cpu"`` or ``"cuda"``.
    xp : module
        The array module of the backend's arrays (``numpy`` or ``cupy``).
    is_host : bool
        Whether arrays live in host memory: if not, the estimators move the
        training state to the device for a fit and back after it.
    out_of_memory_errors : tuple of exception types
        What means that the device ran out of memory.
    indexes_buckets : bool
        Whether the backend implements :class:`BucketIndexing`.
    hashes_pairs : bool
        Whether the backend implements :class:`DeviceHashing`.
    multiplies_from_buckets : bool
        Whether the backend implements :class:`DirectProducts`.
    """

    name: str
    xp: ModuleType
    is_host: bool
    out_of_memory_errors: tuple
    indexes_buckets = False
    hashes_pairs = False
    multiplies_from_buckets = False

    @abc.abstractmethod
    def empty(self, shape, dtype):
        """Uninitialised array on the backend's device.

        Parameters
        ----------
        shape : int or tuple of int
        dtype : numpy dtype

        Returns
        -------
        a : array
        """

    @abc.abstractmethod
    def to_device(self, a):
        """An array on the backend's device.

        Parameters
        ----------
        a : array-like
            Host or device array.

        Returns
        -------
        a : array
            ``a`` itself if it is already there, else a copy there.
        """

    @abc.abstractmethod
    def to_host(self, a):
        """A device array as a NumPy array (0-d as a NumPy scalar); anything else as it is.

        Parameters
        ----------
        a : object

        Returns
        -------
        a : object
        """

    @abc.abstractmethod
    def free_memory(self):
        """Bytes the device can still allocate.

        Returns
        -------
        n_bytes : int or None
            None where memory is not budgeted (the host's).
        """

    @abc.abstractmethod
    def scatter_block_rows(self, n_in, n_out, n_buckets):
        """Rows of a scatter block: row tiles of a gradient must start on a multiple of it.

        Parameters
        ----------
        n_in, n_out : int
            Shape of the virtual matrix.
        n_buckets : int

        Returns
        -------
        block_rows : int
        """

    @abc.abstractmethod
    def scatter_workspace(self, rows_per_tile, block_rows, n_buckets, dtype):
        """Scratch space of the scatters for tiles of up to ``rows_per_tile`` rows.

        Parameters
        ----------
        rows_per_tile, block_rows, n_buckets : int
        dtype : numpy dtype
            The gradient's.

        Returns
        -------
        scratch : object
            What :meth:`scatter_bucket_grad` (and ``scatter_indexed``) take as
            ``scratch``; None where the backend needs none. Its size may change
            the speed, never the result.
        """

    @abc.abstractmethod
    def materialize_tile(self, layer_hash, bucket_weights, out, *, row_start=0, col_start=0):
        """Write the block of a virtual matrix at ``(row_start, col_start)`` into ``out``.

        Parameters
        ----------
        layer_hash : LayerHash
        bucket_weights : array of shape (n_buckets,)
        out : array of shape (n_rows, n_cols), C-contiguous
            Receives ``W[row_start:row_start + n_rows, col_start:col_start + n_cols]``,
            in the dtype of ``bucket_weights``.
        row_start, col_start : int, default=0
            Position of the tile in the virtual matrix.
        """

    @abc.abstractmethod
    def scatter_bucket_grad(
        self, layer_hash, grad_tile, bucket_grad, scratch, *, row_start=0, finish=None
    ):
        """Add the signed virtual-weight gradients of a tile into ``bucket_grad``.

        ``bucket_grad[h(i, j)] += s(i, j) * grad_tile[i - row_start, j]``; with
        ``finish``, the tile's sums and ``finish``'s terms overwrite it instead.

        Parameters
        ----------
        layer_hash : LayerHash
        grad_tile : array of shape (n_rows, n_out), C-contiguous
            Gradient with respect to rows ``row_start:row_start + n_rows`` of
            the virtual matrix. Not modified.
        bucket_grad : array of shape (n_buckets,)
            Accumulated into, in place.
        scratch : object
            From :meth:`scatter_workspace`.
        row_start : int, default=0
            A multiple of :meth:`scatter_block_rows`.
        finish : GradientFinish, default=None
            If given, ``bucket_grad`` is overwritten with the tile's sums
            completed by ``finish`` (:meth:`GradientFinish.apply`'s bits),
            its previous values ignored.
        """

    @abc.abstractmethod
    def sgd_update(self, param, velocity, grad, learning_rate, momentum, nesterov):
        """One step of SGD with momentum, in place: scikit-learn's formulas, bit for bit.

        ``velocity = momentum * velocity - learning_rate * grad``, then
        ``param += velocity``, or with Nesterov's momentum ``param +=
        momentum * velocity - learning_rate * grad``.

        Parameters
        ----------
        param, velocity, grad : array of shape (n,)
            ``param`` and ``velocity`` are updated.
        learning_rate, momentum : float
        nesterov : bool
        """

    @abc.abstractmethod
    def adam_update(self, param, m, v, grad, learning_rate, beta_1, beta_2, epsilon):
        """One Adam step, in place: scikit-learn's formulas, bit for bit.

        ``m = beta_1 m + (1 - beta_1) grad``, ``v = beta_2 v + (1 - beta_2)
        grad**2``, ``param -= learning_rate m / (sqrt(v) + epsilon)``.

        Parameters
        ----------
        param, m, v, grad : array of shape (n,)
            ``param``, ``m`` and ``v`` are updated.
        learning_rate : float
            The step's, bias correction included.
        beta_1, beta_2, epsilon : float
        """


class BucketIndexing(abc.ABC):
    """Optional capability: keep a layer's hash as a bucket index tile.

    A uint32 per entry of the virtual matrix, the bucket in the low 31 bits
    and the sign in the top bit: hashed once, then read by :meth:`gather_tile`
    and :meth:`scatter_indexed` instead of hashing again. A backend that
    derives from this class has ``indexes_buckets = True``.

    Attributes
    ----------
    max_indexed_buckets : int
        The most buckets an index tile can address.
    """

    indexes_buckets = True
    max_indexed_buckets: int

    @abc.abstractmethod
    def bucket_index_tile(self, layer_hash, out, *, row_start=0):
        """Write the bucket and sign of every entry of rows ``row_start:`` into ``out``.

        Parameters
        ----------
        layer_hash : LayerHash
            With ``n_buckets <= max_indexed_buckets``.
        out : array of shape (n_rows, n_cols), dtype uint32, C-contiguous
            Columns ``0:n_cols`` of rows ``row_start:row_start + n_rows``.
        row_start : int, default=0
        """

    @abc.abstractmethod
    def gather_tile(self, bucket_weights, index, out, *, layer_hash=None):
        """Materialise a tile from its bucket index tile: ``out = ±bucket_weights[index]``.

        Parameters
        ----------
        bucket_weights : array of shape (n_buckets,)
        index : array of shape (n_rows, n_cols), dtype uint32
            From :meth:`bucket_index_tile`.
        out : array of shape (n_rows, n_cols), C-contiguous
        layer_hash : LayerHash, default=None
            The hash of the index (rows from 0), which a backend may use to
            visit the rows in a cache-friendly order (shard by shard); the
            result is the same.
        """

    @abc.abstractmethod
    def scatter_indexed(
        self, grad_tile, index, bucket_grad, scratch, *, layer_hash=None, finish=None
    ):
        """:meth:`Backend.scatter_bucket_grad` from a bucket index tile, with the same bits.

        Parameters
        ----------
        grad_tile : array of shape (n_rows, n_out), C-contiguous
            Not modified.
        index : array of shape (n_rows, n_out), dtype uint32
            The tile's bucket index tile.
        bucket_grad : array of shape (n_buckets,)
            Accumulated into, in place.
        scratch : object
            From :meth:`Backend.scatter_workspace`; may be None under a sharded hash.
        layer_hash : LayerHash, default=None
            The hash of the index (rows from 0). A sharded one gives the
            bits of its own scatter: each bucket's entries added in row order.
        finish : GradientFinish, default=None
            As in :meth:`Backend.scatter_bucket_grad`.
        """


class DeviceHashing(abc.ABC):
    """Optional capability: evaluate the hash of index pairs on the device.

    A backend that derives from this class has ``hashes_pairs = True``.
    """

    hashes_pairs = True

    @abc.abstractmethod
    def hash_pairs(self, layer_hash, i, j):
        """Bucket and sign of the virtual entries ``(i, j)``, computed on the device.

        Parameters
        ----------
        layer_hash : LayerHash
        i, j : array of shape (n,)
            Row and column indices, below 2**32.

        Returns
        -------
        bucket : array of shape (n,), dtype uint32
        sign : array of shape (n,), dtype int8
            +1 or -1: the sign hash, whether or not the layer applies it (as
            ``_hashing.hash_pairs`` gives it).
        """


class DirectProducts(abc.ABC):
    """Optional capability: ``A @ W`` straight from the buckets, for prediction.

    A backend that derives from this class has ``multiplies_from_buckets = True``.
    """

    multiplies_from_buckets = True

    @abc.abstractmethod
    def direct_tables(self, layer_hash, n_in, n_out, max_bytes=0):
        """The tables of :meth:`direct_matmul` for one layer.

        Parameters
        ----------
        layer_hash : LayerHash
        n_in, n_out : int
            Shape of the virtual matrix.
        max_bytes : int, default=0
            Memory the tables may take beyond a few bytes per row and column
            (tables that spare a call its hashing, where the backend has them).

        Returns
        -------
        tables : iterable of arrays
            Handed back to :meth:`direct_matmul`. Iterating gives the arrays
            held (None where absent); ``tables.kernel`` names the kernel they
            feed, "element", "block" or "block tables", and
            ``tables.table_nbytes`` the bytes counted against ``max_bytes``.
        """

    @abc.abstractmethod
    def direct_matmul(self, layer_hash, a_t, bucket_weights, tables, out):
        """Write ``A @ W`` into ``out`` without materialising ``W``.

        Parameters
        ----------
        layer_hash : LayerHash
        a_t : array of shape (n_in, n_rows)
            ``A`` transposed, C-contiguous.
        bucket_weights : array of shape (n_buckets,)
        tables : object
            What :meth:`direct_tables` returned for the same layer.
        out : array of shape (n_rows, n_out)
        """
