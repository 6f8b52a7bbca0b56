"""The hash specification: one place, used by every backend.

Entry (i, j) of a layer's virtual weight matrix reads bucket ``h(i, j)`` with
sign ``s(i, j)``::

    W[i, j] = s(i, j) * w[h(i, j)]

Both come from MurmurHash3_x86_32 (Austin Appleby's public-domain hash) of the
8-byte key ``le32(i) || le32(j)``:

- ``h(i, j) = (murmur3(key, seed) * K) >> 32``: the multiply-high range
  reduction of the 32-bit hash to ``[0, K)``, K the number of buckets
  (1 <= K < 2**32). No bit mask, so any K is fine.
- ``s(i, j) = +1 if murmur3(key, seed ^ SIGN_SEED_XOR) < 2**31 else -1``: the
  top bit of a second hash with another seed, independent of the bucket.

i and j are hashed as two separate 32-bit words, so a layer may have up to
2**32 rows and 2**32 columns (2**64 virtual entries).

All arithmetic is on ``uint64`` values masked to their low 32 bits after every
step that can overflow: the same code runs compiled by Numba (where mixing
signed and unsigned 64-bit integers would silently give float64, hence the
``np.uint64`` constants), in NumPy on ``uint64`` arrays, and on plain Python
ints. The CUDA kernels (``uint32`` arithmetic) are tested against it bit for bit.

The first word of the key, ``i``, is mixed into the state once per row
(:func:`row_state`), the second word once per column (:func:`column_key`), and
:func:`finish_hash` combines the two: this is MurmurHash3 unrolled for an 8-byte
key, split so that row tiles do the per-row and per-column work once.
"""

import numpy as np
from numba import njit

#: Version of this specification. Any change to the functions below that changes
#: a single (bucket, sign) must bump it: fitted models record it. Version 2 added
#: sharded hashing (``n_shards``), its shards blocks of consecutive rows; version
#: 3 deals the rows to the shards in turn (``SHARD_LAYOUTS``). With one shard
#: every version is version 1 bit for bit.
HASH_SPEC_VERSION = 3
#: The versions this package computes: a model that records version 1 has one
#: shard per layer, one that records version 2 has "contiguous" shards.
READABLE_HASH_SPEC_VERSIONS = (1, 2, 3)
#: How a version's shards take the rows of the virtual matrix: "contiguous",
#: shard ``s`` holds a block of consecutive rows (version 2); "cyclic", row
#: ``i`` goes to shard ``i % S`` (version 3, so that every shard reads inputs
#: from all over the input vector: a block of an image's border pixels, all
#: zero, left a contiguous shard's buckets untrained, ``docs/hashing.md``).
SHARD_LAYOUTS = {1: "contiguous", 2: "contiguous", 3: "cyclic"}

_MASK32 = np.uint64(0xFFFFFFFF)
# MurmurHash3_x86_32 constants.
_C1 = np.uint64(0xCC9E2D51)
_C2 = np.uint64(0x1B873593)
_N = np.uint64(0xE6546B64)
_FMIX1 = np.uint64(0x85EBCA6B)
_FMIX2 = np.uint64(0xC2B2AE35)
_KEY_BYTES = np.uint64(8)
_FIVE = np.uint64(5)
_R13, _R15, _R16 = (np.uint64(r) for r in (13, 15, 16))
_S13 = np.uint64(13)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_ONE = np.uint64(1)

#: XOR applied to a layer's seed to get the seed of its sign hash: the golden
#: ratio's 32 bits (any odd constant would do; this one is the usual choice).
SIGN_SEED_XOR = 0x9E3779B9


@njit(cache=True)
def _rotl32(x, r):
    # r is 13 or 15 here, so both shifts are in range.
    return ((x << r) | (x >> (_S32 - r))) & _MASK32


@njit(cache=True)
def column_key(j):
    """Scramble one 32-bit key word: MurmurHash3's ``k1`` step.

    Parameters
    ----------
    j : uint64 scalar or ndarray
        Key word, below 2**32.

    Returns
    -------
    k : uint64 scalar or ndarray
        The scrambled word, below 2**32.
    """
    k = (j * _C1) & _MASK32
    k = _rotl32(k, _R15)
    return (k * _C2) & _MASK32


@njit(cache=True)
def _mix_block(h, k):
    h = h ^ k
    h = _rotl32(h, _R13)
    return (h * _FIVE + _N) & _MASK32


@njit(cache=True)
def row_state(seed, i):
    """MurmurHash3 state after the first key word, the row index ``i``.

    Parameters
    ----------
    seed : uint64 scalar
        The 32-bit seed.
    i : uint64 scalar or ndarray
        Row index, below 2**32.

    Returns
    -------
    state : uint64 scalar or ndarray
    """
    return _mix_block(seed, column_key(i))


@njit(cache=True)
def finish_hash(state, key_j):
    """Mix the scrambled column word into a row state and finalise the hash.

    Parameters
    ----------
    state : uint64 scalar or ndarray
        Output of :func:`row_state`.
    key_j : uint64 scalar or ndarray
        Output of :func:`column_key` for the column index.

    Returns
    -------
    hash : uint64 scalar or ndarray
        MurmurHash3_x86_32 of the key ``le32(i) || le32(j)``, below 2**32.
    """
    h = _mix_block(state, key_j)
    h = h ^ _KEY_BYTES
    # fmix32: the avalanche finaliser.
    h = h ^ (h >> _R16)
    h = (h * _FMIX1) & _MASK32
    h = h ^ (h >> _S13)
    h = (h * _FMIX2) & _MASK32
    return h ^ (h >> _R16)


@njit(cache=True)
def bucket_of(hash_value, n_buckets):
    """Map a 32-bit hash to ``[0, n_buckets)`` by a multiply-high.

    ``(hash * K) >> 32`` is Lemire's range reduction: uniform to within
    K / 2**32 for any K (no power-of-two restriction, no division).

    Parameters
    ----------
    hash_value : uint64 scalar or ndarray
        Below 2**32.
    n_buckets : uint64 scalar
        K, with 1 <= K < 2**32.

    Returns
    -------
    bucket : uint64 scalar or ndarray
    """
    return (hash_value * n_buckets) >> _S32


@njit(cache=True)
def is_negative(sign_hash_value):
    """Sign bit of the sign hash: 1 where the virtual weight is ``-w[h]``.

    Parameters
    ----------
    sign_hash_value : uint64 scalar or ndarray
        The hash of the key under the sign seed, below 2**32.

    Returns
    -------
    bit : uint64 scalar or ndarray
        Its top bit.
    """
    return (sign_hash_value >> _S31) & _ONE


@njit(cache=True)
def shard_of_row(i, period, n_shards):
    """Shard of row ``i`` when the rows are dealt to ``n_shards`` shards with ``period``.

    The rows are cut into windows of ``period`` consecutive rows, and each
    window is split into ``n_shards`` blocks of consecutive rows: shard ``s``
    holds rows ``w * period + [s * period // S, (s + 1) * period // S)`` of
    every window ``w``, blocks whose sizes differ by one at most. The two
    layouts (:func:`shard_period`) are its ends: ``period = n_rows``, one
    window ("contiguous"), and ``period = S``, one row of each window per
    shard: row ``i`` in shard ``i % S`` ("cyclic").

    Parameters
    ----------
    i, period, n_shards : uint64 scalar or ndarray
        ``i < 2**32``, ``1 <= n_shards <= period < 2**32``.

    Returns
    -------
    shard : uint64 scalar or ndarray
    """
    # In the window, the largest s with s * period // S <= r, i.e. s * period < (r + 1) * S.
    return ((i % period + _ONE) * n_shards - _ONE) // period


def row_shards(n_rows, n_shards, layout):
    """The shard of every row of a virtual matrix: ``shard_of_row`` under ``layout``.

    Parameters
    ----------
    n_rows, n_shards : int
    layout : {"cyclic", "contiguous"}

    Returns
    -------
    shards : ndarray of shape (n_rows,), int64
    """
    period = shard_period(layout, n_rows, n_shards)
    rows = np.arange(n_rows, dtype=np.uint64)
    return shard_of_row.py_func(rows, np.uint64(period), np.uint64(n_shards)).astype(np.int64)


@njit(cache=True)
def tile_shards(row_start, n_tile_rows, n_shards, period):
    """The shards with rows in a tile of rows: ``(first + t) % n_shards`` for ``t < count``.

    Within one window of ``period`` rows a tile's shards run from the shard of
    its first row to that of its last; a tile across two windows may wrap
    around to shard 0, and one across more holds every shard.

    Parameters
    ----------
    row_start, n_tile_rows : int
        The tile's rows, ``row_start:row_start + n_tile_rows`` (at least one).
    n_shards, period : int
        As in :func:`shard_of_row`.

    Returns
    -------
    first : uint64
    count : int64
    """
    shards, period = np.uint64(n_shards), np.uint64(period)
    row_stop = np.uint64(row_start + n_tile_rows)
    first = shard_of_row(np.uint64(row_start), period, shards)
    last = shard_of_row(row_stop - _ONE, period, shards)
    windows = (row_stop - _ONE) // period - np.uint64(row_start) // period
    if windows == 0:
        count = last - first + _ONE
    elif windows == 1:
        count = min(shards, shards - first + last + _ONE)
    else:
        count = shards
    return first, np.int64(count)


def shard_period(layout, n_rows, n_shards):
    """The ``period`` of :func:`shard_of_row` under a shard layout.

    Parameters
    ----------
    layout : {"cyclic", "contiguous"}
        ``SHARD_LAYOUTS[version]`` of the model's hash specification.
    n_rows, n_shards : int
        Rows of the virtual matrix, and its shards.

    Returns
    -------
    period : int
        ``n_shards`` ("cyclic": row ``i`` in shard ``i % n_shards``) or
        ``n_rows`` ("contiguous": blocks of consecutive rows).
    """
    if layout not in ("cyclic", "contiguous"):
        raise ValueError(f"shard layout must be 'cyclic' or 'contiguous', got {layout!r}.")
    if layout == "cyclic" or n_shards == 1:
        return n_shards
    return n_rows


@njit(cache=True)
def shard_buckets(shard, n_shards, n_buckets):
    """First bucket and bucket count of a shard: the balanced split of ``[0, K)``.

    Shard ``s`` owns buckets ``[s * K // S, (s + 1) * K // S)``.

    Parameters
    ----------
    shard, n_shards, n_buckets : uint64 scalar or ndarray
        ``shard < n_shards <= K < 2**32``.

    Returns
    -------
    first, count : uint64 scalar or ndarray
    """
    first = shard * n_buckets // n_shards
    return first, (shard + _ONE) * n_buckets // n_shards - first


def sign_seed(seed):
    """Seed of the sign hash of a layer whose bucket hash has seed ``seed``.

    Parameters
    ----------
    seed : int
        The layer's 32-bit seed.

    Returns
    -------
    sign_seed : numpy.uint64
    """
    return np.uint64((int(seed) ^ SIGN_SEED_XOR) & 0xFFFFFFFF)


#: Length of a block of consecutive virtual weights under ``hashing="block"``.
BLOCK_SIZE = 16

#: Hashing schemes, as the estimators' ``hashing`` parameter names them.
HASHINGS = ("element", "block")
#: The schemes as the kernels take them (``LayerHash.mode``; the CUDA kernels'
#: ``int block`` flag is ``mode == BLOCK_HASHING``).
ELEMENT_HASHING = 0
BLOCK_HASHING = 1
#: Each scheme's name and its constant.
HASHING_MODES = {"element": ELEMENT_HASHING, "block": BLOCK_HASHING}


def hash_pairs(
    seed, i, j, n_buckets, hashing="element", n_shards=1, n_rows=None, shard_layout="cyclic"
):
    """Bucket and sign of the virtual entries (i, j): the specification in NumPy.

    ``hashing="element"`` (the paper's scheme) hashes every entry. Under
    ``hashing="block"`` the entries ``j = BLOCK_SIZE * b + o`` (``o`` in
    ``[0, BLOCK_SIZE)``) of row ``i`` read consecutive buckets from a hashed
    start, ``(bucket_of(H(i, b)) + o) % K``, and take their signs from bit
    ``o`` of the sign hash ``H'(i, b)``: two hashes per block instead of two
    per entry.

    With ``n_shards = S > 1`` the ``n_rows`` rows are split into S shards
    (:func:`shard_of_row`: row ``i`` in shard ``i % S`` under the "cyclic"
    layout, blocks of consecutive rows under "contiguous") and shard s owns
    its own range of buckets (:func:`shard_buckets`): its entries are hashed
    as above into the shard's ``K_s`` buckets, then offset by the shard's
    first bucket. ``S = 1`` is the unsharded hash, bit for bit.

    Parameters
    ----------
    seed : int
        The layer's 32-bit seed.
    i, j : array-like of int
        Row and column indices, each below 2**32, broadcast together.
    n_buckets : int
        K, with 1 <= K < 2**32.
    hashing : {"element", "block"}, default="element"
    n_shards : int, default=1
        S, with ``1 <= S <= min(n_rows, K)``.
    n_rows : int, default=None
        Rows of the virtual matrix (every ``i`` below it); needed when ``S > 1``.
    shard_layout : {"cyclic", "contiguous"}, default="cyclic"
        How the shards take the rows: ``SHARD_LAYOUTS`` of the version (3 is
        "cyclic", 2 "contiguous").

    Returns
    -------
    bucket : ndarray of int64
        Bucket index in ``[0, K)``.
    sign : ndarray of int8
        +1 or -1.
    """
    if hashing not in HASHINGS:
        raise ValueError(f"hashing must be one of {HASHINGS}, got {hashing!r}.")
    i, j = np.broadcast_arrays(np.asarray(i, dtype=np.uint64), np.asarray(j, dtype=np.uint64))
    shape = i.shape
    # 1-D arrays throughout: the helpers these call are compiled, and Numba
    # types array arguments, not the Python ints a 0-d array would become.
    i, j = i.ravel(), j.ravel()
    first, k = np.uint64(0), np.uint64(n_buckets)
    if n_shards != 1:
        check_shards(n_shards, n_rows, n_buckets)
        if i.size and int(i.max()) >= n_rows:
            raise ValueError(f"Every row index must be below n_rows={n_rows}.")
        period = shard_period(shard_layout, n_rows, n_shards)
        shard = shard_of_row.py_func(i, np.uint64(period), np.uint64(n_shards))
        first, k = shard_buckets.py_func(shard, np.uint64(n_shards), k)
    if hashing == "element":
        key_j = column_key.py_func(j)
    else:
        block, offset = j // np.uint64(BLOCK_SIZE), j % np.uint64(BLOCK_SIZE)
        key_j = column_key.py_func(block)
    h = finish_hash.py_func(row_state.py_func(np.uint64(seed), i), key_j)
    h_sign = finish_hash.py_func(row_state.py_func(sign_seed(seed), i), key_j)
    if hashing == "element":
        bucket = bucket_of.py_func(h, k)
        negative = is_negative.py_func(h_sign)
    else:
        bucket = (bucket_of.py_func(h, k) + offset) % k
        negative = (h_sign >> offset) & np.uint64(1)
    sign = (1 - 2 * negative.astype(np.int8)).astype(np.int8)
    bucket = bucket + first
    return bucket.astype(np.int64).reshape(shape), sign.reshape(shape)


def check_shards(n_shards, n_rows, n_buckets):
    """Raise ``ValueError`` unless ``n_shards`` splits ``n_rows`` rows and ``n_buckets`` buckets.

    Every shard needs a row and a bucket: ``1 <= n_shards <= min(n_rows, n_buckets)``.
    """
    if n_shards == 1:
        return
    if n_rows is None:
        raise ValueError("n_rows, the rows of the virtual matrix, is needed when n_shards > 1.")
    if not 1 <= n_shards <= min(n_rows, n_buckets):
        raise ValueError(
            f"n_shards must be in [1, min(n_rows, n_buckets)] = [1, {min(n_rows, n_buckets)}] "
            f"so that every shard has a row and a bucket, got {n_shards}."
        )


#: Buckets of one shard under ``hash_shards="auto"``: 32768 float32 buckets
#: (128 KiB) with their gradient and optimizer state stay within a core's L2.
AUTO_SHARD_BUCKETS = 2**15
#: Shards of a layer under ``hash_shards="auto"``, at least: that many threads
#: (16 cores) have a shard each to scatter, whatever the layer's bucket count.
AUTO_MIN_SHARDS = 16
#: Buckets of one shard under ``hash_shards="auto"``, at least: a layer with
#: fewer than ``2 * AUTO_MIN_SHARD_BUCKETS`` buckets (one too small for its
#: scatter to matter) keeps one shard.
AUTO_MIN_SHARD_BUCKETS = 512


def auto_shards(n_rows, n_buckets):
    """S under ``hash_shards="auto"``: at least 16 shards, more if a shard exceeds 32768 buckets.

    ``max(AUTO_MIN_SHARDS, ceil(K / AUTO_SHARD_BUCKETS))`` shards, so that a
    shard's buckets fit in a core's L2 and up to 16 threads have work, capped
    by ``K // AUTO_MIN_SHARD_BUCKETS`` (no shard of fewer than 512 buckets) and
    by ``n_rows`` (a row each), and at least 1. A property of the layer's shape
    and bucket count only, never of the machine.

    Parameters
    ----------
    n_rows, n_buckets : int

    Returns
    -------
    n_shards : int
    """
    wanted = max(AUTO_MIN_SHARDS, -(-n_buckets // AUTO_SHARD_BUCKETS))
    return max(1, min(n_rows, n_buckets // AUTO_MIN_SHARD_BUCKETS, wanted))
