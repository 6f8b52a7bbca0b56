"""A sharded hashed MLP trained on N simulated devices: every exchange explicit and counted.

``docs/scaling.md`` works out how a network whose buckets do not fit one device
trains with its shards placed on several. This script backs it on the CPU:

- a :class:`Device` holds only its own arrays: for every layer a contiguous
  block of shards (their buckets, the buckets' gradient and optimizer state,
  their rows of the virtual matrix once materialised), the columns of the
  activations and of their gradients that are its rows, and the intercepts of
  those units. Under the cyclic layout of hash version 3 a shard's rows are
  every S-th row, so a device's units are a fixed set of columns, not a block
  (:func:`shard_rows`);
- an :class:`Interconnect` is the only way an array goes from one device to
  another: its collectives copy arrays and count the messages and bytes that
  each device sends and receives;
- each device materialises its rows of ``W`` with the package's Numba kernel
  and scatters its bucket gradient with the package's sharded scatter, one
  shard at a time: a shard of the sharded hash is the unsharded hash with the
  shard's ``K_s`` buckets at the same (global) row indices, offset by the
  shard's first bucket (``docs/hashing.md``, "Sharded hashing"), so a device
  needs only the buckets of its shards;
- the partial products ``A[:, rows_s] @ W[rows_s]`` are summed one shard after
  the other, in shard order, whatever device holds the shard (the *ordered*
  reduce: the running sum passes from device to device). Every product has
  the shape of one shard, and every sum the same order, for any number of
  devices: N = 1, 2, 3, ... devices train to the same bits.

:func:`step_traffic` is the formula of what each device sends in one step;
``tests/test_shard_simulation.py`` checks it against the traffic counted here,
and ``--table`` prints the table of ``docs/scaling.md`` from it.

This is not part of the package, on purpose: the estimators train on one
device; this is a model of a multi-device step that proves the decomposition
and its bits, not a trainer (it keeps every shard's products apart, and takes
plain SGD or Adam at a constant learning rate, a softmax output with the
log-loss, no sample weights, no dropout).

    python benchmarks/shard_simulation.py            # 1 to 4 simulated devices, bits and bytes
    python benchmarks/shard_simulation.py --table    # the table of docs/scaling.md
"""

import argparse
import shlex
import sys

import numpy as np

from sk_hashednets._base import ACTIVATIONS, DERIVATIVES
from sk_hashednets._kernels._cpu import CPUBackend
from sk_hashednets._kernels._hashing import row_shards, shard_buckets
from sk_hashednets._kernels._numba import MATERIALIZE_KERNELS, scatter_shards
from sk_hashednets._layout import layer_hash, resolve_hash_shards, resolve_n_buckets
from sk_hashednets._optimizers import AdamOptimizer, SGDOptimizer

#: What every simulated device computes with: the package's CPU backend (its
#: optimizer steps) and Numba kernels.
CPU = CPUBackend()

# ----------------------------------------------------------------------------
# Who owns what: shards, rows and buckets, from the package's hash
# ----------------------------------------------------------------------------


def shard_rows(n_rows, n_shards, shard_layout="cyclic"):
    """The rows of each shard, ascending, read from the hash (``_hashing.row_shards``).

    Parameters
    ----------
    n_rows, n_shards : int
    shard_layout : {"cyclic", "contiguous"}, default="cyclic"
        Row ``i`` in shard ``i % S`` (hash version 3) or blocks of rows (version 2).

    Returns
    -------
    rows : list of ndarray of int64
        ``rows[s]``: the rows of shard ``s``.
    """
    shard = row_shards(n_rows, n_shards, shard_layout)
    order = np.argsort(shard, kind="stable")  # by shard, each shard's rows ascending
    bounds = np.searchsorted(shard[order], np.arange(n_shards + 1))
    return [order[lo:hi].astype(np.int64) for lo, hi in zip(bounds[:-1], bounds[1:])]


def _runs(rows):
    """Runs of consecutive rows of an ascending array: ``(position, first row, length)``."""
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(rows)]])
    return [(int(a), int(rows[a]), int(b - a)) for a, b in zip(starts, stops)]


def shard_bucket_bounds(n_buckets, n_shards):
    """Buckets ``[bounds[s], bounds[s + 1])`` of shard ``s``, read from ``shard_buckets``.

    Parameters
    ----------
    n_buckets, n_shards : int

    Returns
    -------
    bounds : ndarray of shape (n_shards + 1,), int64
    """
    shards = np.arange(n_shards + 1, dtype=np.uint64)
    first, _ = shard_buckets.py_func(shards, np.uint64(n_shards), np.uint64(n_buckets))
    return first.astype(np.int64)


def device_shards(n_shards, n_devices):
    """Shards ``[bounds[d], bounds[d + 1])`` of device ``d``: contiguous, balanced blocks.

    Parameters
    ----------
    n_shards, n_devices : int
        Every device needs a shard: ``n_shards >= n_devices``.

    Returns
    -------
    bounds : list of int, of length n_devices + 1
    """
    if n_shards < n_devices:
        raise ValueError(
            f"A layer with {n_shards} shards cannot give each of {n_devices} devices a "
            "shard: every layer needs at least as many shards as there are devices."
        )
    return [d * n_shards // n_devices for d in range(n_devices + 1)]


def device_rows(n_rows, n_shards, n_devices, shard_layout="cyclic"):
    """The rows that each device owns: those of its shards, shard after shard.

    A layer's rows are its input units: device ``d`` owns those units'
    activations, and receives those columns of the layer below's output.

    Returns
    -------
    rows : list of ndarray of int64
        ``rows[d]``: device ``d``'s rows, its shards' in shard order.
    """
    per_shard = shard_rows(n_rows, n_shards, shard_layout)
    bounds = device_shards(n_shards, n_devices)
    return [np.concatenate(per_shard[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]


# ----------------------------------------------------------------------------
# The traffic, on paper
# ----------------------------------------------------------------------------


def step_traffic(layer_units, n_shards, n_devices, batch_size, itemsize, shard_layout="cyclic"):
    """Bytes and messages that each device sends in one step of :class:`ShardedNetwork`.

    For each hidden layer of ``n`` units (a ``B x n`` activation):

    - forward, the ordered reduce-scatter: every device but the last passes
      the running sum (``B x n``) to the next; the last sends each other
      device its columns;
    - backward, the ring all-gather of ``dZ``: device ``d`` sends every
      device's columns but those of device ``d + 1`` (mod N).

    For the output layer (``n_L`` units): every device but the last passes the
    running sum (``B x n_L``); the last broadcasts ``dZ`` (``B x n_L``) to the
    others. Nothing else crosses: buckets, their gradients and optimizer state
    never leave their device, and each device reads its own columns of ``X``.

    Parameters
    ----------
    layer_units : sequence of int
        Units of every layer, input and output included.
    n_shards : sequence of int
        Shards of each layer of weights (``hash_shards_``), each ``>= n_devices``.
    n_devices : int
    batch_size : int
    itemsize : int
        Bytes of a float (4 for float32).
    shard_layout : {"cyclic", "contiguous"}, default="cyclic"

    Returns
    -------
    sent_bytes, sent_messages : ndarray of shape (n_devices,), int64
    """
    N, B = n_devices, batch_size
    sent = np.zeros(N, dtype=np.int64)
    messages = np.zeros(N, dtype=np.int64)
    passes_on = (np.arange(N) < N - 1).astype(np.int64)  # every device but the last
    for k in range(1, len(layer_units) - 1):
        n = layer_units[k]
        # The columns each device owns.
        width = np.array([len(r) for r in device_rows(n, n_shards[k], N, shard_layout)])
        sent += passes_on * B * n * itemsize
        messages += passes_on
        sent[N - 1] += B * (n - width[N - 1]) * itemsize
        messages[N - 1] += N - 1
        sent += B * (n - np.roll(width, -1)) * itemsize
        messages += N - 1
    n = layer_units[-1]
    sent += passes_on * B * n * itemsize
    messages += passes_on
    sent[N - 1] += (N - 1) * B * n * itemsize
    messages[N - 1] += N - 1
    return sent, messages


def ring_step_bytes(layer_units, n_devices, batch_size, itemsize):
    """Bytes each device sends per step if the exchanges were NCCL's ring collectives.

    A ring reduce-scatter or all-gather of ``B x n`` sends ``(N - 1) / N`` of
    it per device, an all-reduce twice that: per hidden layer one of each, for
    the output layer one all-reduce. Balanced: every device owns ``n / N`` units.

    Returns
    -------
    n_bytes : float
    """
    N = n_devices
    return 2 * (N - 1) / N * batch_size * sum(layer_units[1:]) * itemsize


def data_parallel_bytes(n_buckets, n_devices, itemsize):
    """Bytes each device sends per step under data parallelism: a ring all-reduce of every bucket.

    Returns
    -------
    n_bytes : float
    """
    N = n_devices
    return 2 * (N - 1) / N * sum(n_buckets) * itemsize


#: The networks, batch, dtype and compression of the table of docs/scaling.md.
TABLE_NETWORKS = ((784, 65536, 65536, 10), (4096, 4096, 4096, 10))
TABLE_DEVICES = (2, 4, 8)
TABLE_BATCH = 256
TABLE_COMPRESSION = 1 / 8
TABLE_ITEMSIZE = 4


def _mib(n_bytes):
    mib = n_bytes / 2**20
    return f"{mib:.0f} MiB" if mib >= 100 else f"{mib:.1f} MiB"


def traffic_table():
    """The table of ``docs/scaling.md``: bytes sent per device and step, against data parallelism.

    float32, batch 256, ``ceil(n_in * n_out / 8)`` buckets per layer, and
    ``hash_shards = N`` (one shard per device and layer; any ``S >= N`` that
    gives every device ``n / N`` units gives the same figures).

    Returns
    -------
    lines : list of str
        A Markdown table.
    """
    lines = [
        "| network | N | buckets (all layers) | data parallel: ring all-reduce of the "
        "bucket gradient | shards, as NCCL's rings would send | shards, ordered (the "
        "simulation), the busiest device | data parallel / ordered |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for units in TABLE_NETWORKS:
        n_buckets = resolve_n_buckets(None, TABLE_COMPRESSION, list(units))
        total = sum(n_buckets)
        for N in TABLE_DEVICES:
            dp = data_parallel_bytes(n_buckets, N, TABLE_ITEMSIZE)
            ring = ring_step_bytes(units, N, TABLE_BATCH, TABLE_ITEMSIZE)
            sent, _ = step_traffic(units, [N] * (len(units) - 1), N, TABLE_BATCH, TABLE_ITEMSIZE)
            busiest = int(sent.max())
            buckets = f"{total:,} ({_mib(total * TABLE_ITEMSIZE)})" if N == TABLE_DEVICES[0] else ""
            lines.append(
                f"| {'-'.join(map(str, units))} | {N} | {buckets} | {_mib(dp)} | {_mib(ring)} "
                f"| {_mib(busiest)} | {dp / busiest:.1f} |"
            )
    return lines


def auto_shards_line():
    """The shards that ``hash_shards="auto"`` gives each layer of the table's networks.

    Returns
    -------
    line : str
    """
    parts = []
    for units in TABLE_NETWORKS:
        n_buckets = resolve_n_buckets(None, TABLE_COMPRESSION, list(units))
        shards = resolve_hash_shards("auto", list(units), n_buckets)
        parts.append(f"{'-'.join(map(str, units))}: {shards}")
    return 'hash_shards="auto" gives ' + "; ".join(parts)


# ----------------------------------------------------------------------------
# The interconnect: the only way between devices
# ----------------------------------------------------------------------------


class Interconnect:
    """Links between N simulated devices: collectives made of counted copies.

    Every array that goes from one device to another goes through
    :meth:`send`, which copies it and counts one message and its bytes.

    Parameters
    ----------
    n_devices : int

    Attributes
    ----------
    sent_bytes, sent_messages, received_bytes : ndarray of shape (n_devices,), int64
    """

    def __init__(self, n_devices):
        self.n_devices = n_devices
        self.sent_bytes = np.zeros(n_devices, dtype=np.int64)
        self.sent_messages = np.zeros(n_devices, dtype=np.int64)
        self.received_bytes = np.zeros(n_devices, dtype=np.int64)

    def send(self, source, destination, array):
        """A copy of ``array`` for ``destination``, counted against ``source``.

        Parameters
        ----------
        source, destination : int
            Two different devices.
        array : ndarray

        Returns
        -------
        copy : ndarray, C-contiguous
        """
        if source == destination:
            raise ValueError("A device does not send to itself.")
        self.sent_bytes[source] += array.nbytes
        self.sent_messages[source] += 1
        self.received_bytes[destination] += array.nbytes
        return np.array(array, order="C", copy=True)

    def ordered_reduce(self, partials, order="shards"):
        """Sum every device's partial products in shard order, onto the last device.

        Device 0 sums its shards' products one after the other and passes the
        running sum to device 1, which adds its own, one after the other, and so
        on: the sum is ``((P_0 + P_1) + P_2) + ...`` over the shards, whatever
        the number of devices.

        Parameters
        ----------
        partials : list of list of ndarray
            For each device, the partial products of its shards, in shard order.
        order : {"shards", "devices"}, default="shards"
            "devices" first sums each device's own products, then adds the
            devices' sums in device order, as a reduction of one buffer per
            device does: the same traffic, other bits for another N.

        Returns
        -------
        total : ndarray
            On the last device.
        """
        running = None
        for device, products in enumerate(partials):
            if running is not None:
                running = self.send(device - 1, device, running)
            if order == "devices":
                products = [_fold(None, products)]
            running = _fold(running, products)
        return running

    def ordered_reduce_scatter(self, partials, columns, order="shards"):
        """:meth:`ordered_reduce`, then the last device sends each device its columns.

        Parameters
        ----------
        partials : list of list of ndarray
            As in :meth:`ordered_reduce`, each of shape (B, n).
        columns : list of ndarray of int
            Device ``d`` receives columns ``columns[d]``.
        order : {"shards", "devices"}, default="shards"

        Returns
        -------
        columns : list of ndarray
            Each device's columns of the sum.
        """
        total = self.ordered_reduce(partials, order)
        last = self.n_devices - 1
        blocks = [total[:, own] for own in columns]
        return [
            np.ascontiguousarray(block) if device == last else self.send(last, device, block)
            for device, block in enumerate(blocks)
        ]

    def all_gather(self, blocks, columns):
        """Every device's columns, on every device: a ring.

        In step ``t`` (of N - 1) device ``d`` sends block ``d - t`` (mod N) to
        device ``d + 1``: the block it received in the step before.

        Parameters
        ----------
        blocks : list of ndarray
            Device ``d``'s columns, each of shape (B, n_d).
        columns : list of ndarray of int
            Where device ``d``'s columns go in the whole: ``columns[d]``.

        Returns
        -------
        whole : list of ndarray
            On each device, every block in its columns, of shape (B, sum n_d).
        """
        N = self.n_devices
        held = [{device: blocks[device]} for device in range(N)]
        for step in range(N - 1):
            for device in range(N):
                block = (device - step) % N
                held[(device + 1) % N][block] = self.send(
                    device, (device + 1) % N, held[device][block]
                )
        n = sum(len(own) for own in columns)
        wholes = []
        for device in range(N):
            whole = np.empty((blocks[device].shape[0], n), dtype=blocks[device].dtype)
            for b in range(N):
                whole[:, columns[b]] = held[device][b]
            wholes.append(whole)
        return wholes

    def broadcast(self, source, array):
        """``array`` from ``source`` on every device.

        Returns
        -------
        copies : list of ndarray
            ``array`` itself on ``source``.
        """
        return [
            array if device == source else self.send(source, device, array)
            for device in range(self.n_devices)
        ]


def _fold(running, products):
    """``running + products[0] + products[1] + ...``, one addition after the other."""
    for product in products:
        if running is None:
            running = product.copy()
        else:
            running += product
    return running


# ----------------------------------------------------------------------------
# A device and its part of each layer
# ----------------------------------------------------------------------------


class DeviceLayer:
    """One device's block of shards of one layer: their buckets and rows of ``W``.

    Parameters
    ----------
    layer_hash : LayerHash
        The layer's hash (``n_shards`` shards of its ``n_rows`` rows).
    n_out : int
        Columns of the virtual matrix.
    first_shard, stop_shard : int
        The device's shards, ``first_shard:stop_shard``.
    whole_buckets : ndarray
        The layer's buckets, on the host: the device copies its shards' and
        keeps no reference to the rest.

    Attributes
    ----------
    rows : ndarray of int64
        The device's rows in the whole layer, its shards' one after the other
        (the order of its columns of the layer's input).
    bucket_start, bucket_stop : int
        The device's buckets, in the whole layer.
    shards : list of (int, int, int, int)
        For each of its shards, its positions in ``rows`` and its buckets
        relative to ``bucket_start``.
    """

    def __init__(self, layer_hash, n_out, first_shard, stop_shard, whole_buckets):
        self.layer_hash = layer_hash
        self.n_out = n_out
        rows = shard_rows(layer_hash.n_rows, layer_hash.n_shards, layer_hash.shard_layout)
        firsts = shard_bucket_bounds(layer_hash.n_buckets, layer_hash.n_shards)
        self.rows = np.concatenate(rows[first_shard:stop_shard])
        self.bucket_start = int(firsts[first_shard])
        self.bucket_stop = int(firsts[stop_shard])
        positions = np.cumsum([0] + [len(rows[s]) for s in range(first_shard, stop_shard)])
        self.shards = [
            (
                int(positions[t]),
                int(positions[t + 1]),
                int(firsts[s]) - self.bucket_start,
                int(firsts[s + 1]) - self.bucket_start,
            )
            for t, s in enumerate(range(first_shard, stop_shard))
        ]
        self.buckets = np.array(whole_buckets[self.bucket_start : self.bucket_stop])
        self.bucket_grad = np.empty_like(self.buckets)
        self.weights = None

    def materialize(self):
        """This device's rows of ``W``, one array per shard, through the package's kernel.

        Shard ``s``'s entries are the unsharded hash with its ``K_s`` buckets at
        the global row indices (``h_S = first(s) + h(i, j; K_s)``): the kernel
        reads only the shard's own buckets.
        """
        h = self.layer_hash
        self.weights = []
        for r0, r1, b0, b1 in self.shards:
            out = np.empty((r1 - r0, self.n_out), dtype=self.buckets.dtype)
            # Each run of consecutive rows (one row at a time in the cyclic
            # layout), column 0 on, one shard of K_s buckets: the unsharded hash.
            for at, row, length in _runs(self.rows[r0:r1]):
                MATERIALIZE_KERNELS[h.mode](
                    self.buckets[b0:b1],
                    h.seed,
                    h.sign_seed,
                    h.sign_hash,
                    row,
                    out[at : at + length],
                    0,
                    1,
                    1,
                )
            self.weights.append(out)
        return self.weights

    def partial_products(self, A):
        """``A[:, rows_s] @ W[rows_s]`` for each shard ``s``, from this device's columns ``A``."""
        return [
            np.ascontiguousarray(A[:, r0:r1]) @ W
            for (r0, r1, _, _), W in zip(self.shards, self.materialize())
        ]

    def scatter_bucket_grad(self, A, delta):
        """The raw bucket gradient of the device's shards: ``A[:, rows_s].T @ dZ``, scattered.

        Each shard's gradient goes into its own buckets through the package's
        sharded scatter (one shard, the shard's ``K_s`` buckets): each bucket's
        sum is the chain of its entries in row-major order.

        Returns
        -------
        virtual_grad : ndarray of shape (len(rows), n_out)
            The gradient of the device's rows of ``W`` (in the order of ``rows``),
            for inspection.
        """
        h = self.layer_hash
        self.bucket_grad[...] = 0
        tiles = []
        for r0, r1, b0, b1 in self.shards:
            tile = np.ascontiguousarray(A[:, r0:r1]).T @ delta
            # The shard's rows ascending, a run of consecutive rows per call:
            # each bucket's chain of additions in row-major order.
            for at, row, length in _runs(self.rows[r0:r1]):
                scatter_shards(
                    tile[at : at + length],
                    h.seed,
                    h.sign_seed,
                    h.sign_hash,
                    row,
                    self.bucket_grad[b0:b1],
                    1,
                    1,
                    h.mode,
                )
            tiles.append(tile)
        return np.vstack(tiles)

    def input_grad(self, delta):
        """``dZ @ W[rows_s].T`` for each shard, side by side: the gradient of its columns."""
        return np.hstack([delta @ W.T for W in self.weights])


class Device:
    """One simulated device: its shards of every layer, their state, its columns.

    Parameters
    ----------
    index : int
    layers : list of DeviceLayer
    intercepts : list of ndarray or None
        Per layer, the intercepts of the units this device owns in the layer's
        output: hidden units are owned with the rows they are of the next
        layer; the output layer's intercepts are the last device's.
    activation : str
        Hidden activation.
    optimizer : callable
        ``optimizer(params)`` makes the optimizer of the device's own arrays.
    alpha : float
        L2 penalty.

    Attributes
    ----------
    activations : list of ndarray
        This step's columns of each layer's input (the device's rows).
    """

    def __init__(self, index, layers, intercepts, activation, optimizer, alpha):
        self.index = index
        self.layers = layers
        self.intercepts = intercepts
        self.activation = activation
        self.alpha = alpha
        self.activations = [None] * len(layers)
        self.intercept_grads = [None if b is None else np.empty_like(b) for b in intercepts]
        self.virtual_grads = [None] * len(layers)
        self.optimizer = optimizer(self._params())

    def _params(self):
        return [layer.buckets for layer in self.layers] + [
            b for b in self.intercepts if b is not None
        ]

    def _grads(self):
        return [layer.bucket_grad for layer in self.layers] + [
            g for g in self.intercept_grads if g is not None
        ]

    def arrays(self):
        """Every array the device holds (for the tests: none is another device's)."""
        held = self._params() + self._grads() + self.activations + self.virtual_grads
        for layer in self.layers:
            held += layer.weights or []
        for name in ("velocities", "ms", "vs"):
            held += getattr(self.optimizer, name, [])
        return [a for a in held if a is not None]

    def activate(self, layer, Z):
        """Its columns of a hidden layer's output: add its intercepts, apply the activation."""
        Z += self.intercepts[layer]
        ACTIVATIONS[self.activation](Z)
        self.activations[layer + 1] = Z

    def output_delta(self, Z, Y):
        """On the last device: ``softmax(Z + b) - Y``, the gradient of the log-loss."""
        Z += self.intercepts[-1]
        ACTIVATIONS["softmax"](Z)
        return Z - Y

    def backward(self, layer, delta, own_delta):
        """Gradients of the device's buckets and intercepts of ``layer``; its columns of ``dA``.

        Parameters
        ----------
        layer : int
        delta : ndarray of shape (B, n_out)
            The whole ``dZ`` of the layer's output.
        own_delta : ndarray of shape (B, n_owned)
            The device's own columns of it (the units whose intercepts it holds).

        Returns
        -------
        own_input_delta : ndarray or None
            Its columns of the layer's input's ``dZ``; None for the first layer.
        """
        part = self.layers[layer]
        batch_size = delta.shape[0]
        A = self.activations[layer]
        self.virtual_grads[layer] = part.scatter_bucket_grad(A, delta)
        # The estimators' formulas, step for step (_compute_loss_grad).
        part.bucket_grad += self.alpha * part.buckets
        part.bucket_grad /= batch_size
        if self.intercepts[layer] is not None:
            self.intercept_grads[layer][...] = own_delta.sum(axis=0) / batch_size
        if layer == 0:
            return None
        dA = part.input_grad(delta)
        DERIVATIVES[self.activation](A, dA)
        return dA

    def update(self):
        """One optimizer step on the device's own arrays."""
        self.optimizer.update_params(self._params(), self._grads(), CPU)


# ----------------------------------------------------------------------------
# The network on N devices
# ----------------------------------------------------------------------------


class ShardedNetwork:
    """A sharded hashed MLP whose shards are placed on ``n_devices`` simulated devices.

    Device ``d`` owns shards ``d * S // N : (d + 1) * S // N`` of every layer
    (S the layer's shards, at least N): their buckets, and the units that are
    their rows.

    Parameters
    ----------
    layer_units : sequence of int
        Units of every layer, input and output (the classes) included.
    layer_hashes : list of LayerHash
        Each layer's hash, sharded (``n_rows`` its input units).
    bucket_weights, intercepts : list of ndarray
        The starting parameters, whole (copied, in parts, onto the devices).
    n_devices : int
    activation : str, default="relu"
    solver : {"sgd", "adam"}, default="sgd"
    learning_rate : float, default=0.01
    momentum : float, default=0.0
    nesterov : bool, default=True
        ``momentum`` and ``nesterov`` for ``solver="sgd"``, as scikit-learn's.
    alpha : float, default=1e-4
    order : {"shards", "devices"}, default="shards"
        The order of the sums of the forward products (:meth:`Interconnect.ordered_reduce`).
    """

    def __init__(
        self,
        layer_units,
        layer_hashes,
        bucket_weights,
        intercepts,
        n_devices,
        activation="relu",
        solver="sgd",
        learning_rate=0.01,
        momentum=0.0,
        nesterov=True,
        alpha=1e-4,
        order="shards",
    ):
        self.layer_units = list(layer_units)
        self.layer_hashes = list(layer_hashes)
        self.n_devices = N = n_devices
        self.order = order
        self.interconnect = Interconnect(N)
        n_layers = len(self.layer_hashes)
        shards = [device_shards(h.n_shards, N) for h in self.layer_hashes]
        # The units each device owns in each layer: the rows of its shards.
        self.units = [
            device_rows(h.n_rows, h.n_shards, N, h.shard_layout) for h in self.layer_hashes
        ]

        def optimizer(params):
            if solver == "sgd":
                return SGDOptimizer(params, learning_rate, "constant", momentum, nesterov)
            return AdamOptimizer(params, learning_rate)

        self.devices = []
        for d in range(N):
            layers, own_intercepts = [], []
            for k, h in enumerate(self.layer_hashes):
                n_out = self.layer_units[k + 1]
                first, stop = shards[k][d], shards[k][d + 1]
                layers.append(DeviceLayer(h, n_out, first, stop, bucket_weights[k]))
                if k < n_layers - 1:
                    own_intercepts.append(np.array(intercepts[k][self.units[k + 1][d]]))
                else:
                    own_intercepts.append(np.array(intercepts[k]) if d == N - 1 else None)
            self.devices.append(Device(d, layers, own_intercepts, activation, optimizer, alpha))

    @classmethod
    def from_estimator(cls, model, n_devices, **kwargs):
        """The network of a fitted ``HashedMLPClassifier``, its parameters copied onto the devices.

        Parameters
        ----------
        model : HashedMLPClassifier
            Multiclass (softmax output), fitted or initialised.
        n_devices : int
        **kwargs
            The other parameters of :class:`ShardedNetwork`; ``activation``,
            ``alpha``, ``solver`` (if "sgd" or "adam"), ``learning_rate``
            (``learning_rate_init``), ``momentum`` and ``nesterov`` default to
            the model's.

        Returns
        -------
        network : ShardedNetwork
        """
        defaults = {
            "activation": model.activation,
            "alpha": model.alpha,
            "learning_rate": model.learning_rate_init,
            "momentum": model.momentum,
            "nesterov": model.nesterovs_momentum,
        }
        if model.solver in ("sgd", "adam"):
            defaults["solver"] = model.solver
        kwargs = {**defaults, **kwargs}
        hashes = [layer_hash(model, k) for k in range(model.n_layers_ - 1)]
        return cls(
            model._layer_units_,
            hashes,
            model.bucket_weights_,
            model.intercepts_,
            n_devices,
            **kwargs,
        )

    def step(self, X, Y):
        """One training step on a minibatch.

        Parameters
        ----------
        X : ndarray of shape (B, n_features)
            Device ``d`` reads its own columns (its data loader's work, not
            the interconnect's).
        Y : ndarray of shape (B, n_classes)
            One-hot targets, read by the last device.
        """
        devices, net = self.devices, self.interconnect
        last = len(self.layer_hashes) - 1
        dtype = devices[0].layers[0].buckets.dtype
        for d, device in enumerate(devices):
            device.activations[0] = np.array(X[:, self.units[0][d]], dtype=dtype, order="C")
        for k in range(last + 1):
            partials = [dev.layers[k].partial_products(dev.activations[k]) for dev in devices]
            if k < last:
                columns = net.ordered_reduce_scatter(partials, self.units[k + 1], self.order)
                for device, Z in zip(devices, columns):
                    device.activate(k, Z)
        Z = net.ordered_reduce(partials, self.order)
        delta = devices[-1].output_delta(Z, np.asarray(Y, dtype=dtype))
        # The whole dZ of the output on every device; the last one holds the
        # output's intercepts.
        whole = owned = net.broadcast(self.n_devices - 1, delta)
        for k in range(last, -1, -1):
            if k < last:
                whole = net.all_gather(owned, self.units[k + 1])
            owned = [dev.backward(k, w, o) for dev, w, o in zip(devices, whole, owned)]
        for device in devices:
            device.update()

    def bucket_weights(self):
        """Every layer's buckets, read back from the devices in order (the host's view).

        Returns
        -------
        bucket_weights : list of ndarray
        """
        return [
            np.concatenate([dev.layers[k].buckets for dev in self.devices])
            for k in range(len(self.layer_hashes))
        ]

    def intercepts(self):
        """Every layer's intercepts, read back from the devices into their units.

        Returns
        -------
        intercepts : list of ndarray
        """
        whole = []
        for k in range(len(self.layer_hashes)):
            if k == len(self.layer_hashes) - 1:
                whole.append(self.devices[-1].intercepts[k].copy())
                continue
            units = self.units[k + 1]
            out = np.empty(sum(len(u) for u in units), dtype=self.devices[0].intercepts[k].dtype)
            for device, own in zip(self.devices, units):
                out[own] = device.intercepts[k]
            whole.append(out)
        return whole


# ----------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------


def _demo(n_steps=5, batch_size=16, max_devices=4):
    """Train a small sharded network on 1 to ``max_devices`` devices: bits and bytes."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from sk_hashednets import HashedMLPClassifier

    rng = np.random.RandomState(0)
    X = rng.standard_normal((batch_size * (n_steps + 1), 20))
    y = np.arange(len(X)) % 5
    model = HashedMLPClassifier(
        hidden_layer_sizes=(32, 24),
        n_buckets=(120, 96, 40),
        hash_shards=6,
        solver="sgd",
        momentum=0.0,
        batch_size=batch_size,
        shuffle=False,
        max_iter=1,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[:batch_size], y[:batch_size])
    Y = (y[:, None] == model.classes_).astype(np.float64)
    units = "-".join(map(str, model._layer_units_))
    print(
        f"network {units}, buckets {model.n_buckets_}, shards {model.hash_shards_}, "
        f"batch {batch_size}, {n_steps} SGD steps, float64"
    )
    first = None
    for N in range(1, max_devices + 1):
        network = ShardedNetwork.from_estimator(model, N)
        for t in range(1, n_steps + 1):
            batch = slice(t * batch_size, (t + 1) * batch_size)
            network.step(X[batch], Y[batch])
        weights = network.bucket_weights()
        first = weights if first is None else first
        same = all(np.array_equal(a, b) for a, b in zip(weights, first))
        counted = network.interconnect.sent_bytes
        formula, _ = step_traffic(
            model._layer_units_,
            model.hash_shards_,
            N,
            batch_size,
            8,
            network.layer_hashes[0].shard_layout,
        )
        print(
            f"N = {N}: buckets bit-identical to N = 1: {same}; bytes sent per device "
            f"(counted) {counted.tolist()}, formula x {n_steps} steps "
            f"{(formula * n_steps).tolist()}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="print the table of docs/scaling.md")
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    print(" ".join(["$ python benchmarks/shard_simulation.py", shlex.join(given)]).rstrip())
    if args.table:
        print("\n".join(traffic_table()))
        print()
        print(auto_shards_line())
    else:
        _demo()


if __name__ == "__main__":
    main()
