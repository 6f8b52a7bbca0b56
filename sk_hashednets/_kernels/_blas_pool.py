"""OpenBLAS's parallel sections on a pool of native threads that sleep when idle.

NumPy's OpenBLAS (pthreads) keeps its threads spinning for about a tenth of a
second after every multi-threaded product, waiting for the next one. A training
step alternates products with Numba kernels, and each kernel then shares the
cores with the spinning threads: on 2 cores the hashing kernels of a step ran
1.3 to 1.8 times as long after a product as after a pause
(``docs/performance.md``). ``OPENBLAS_THREAD_TIMEOUT`` would stop it, but
OpenBLAS reads it when NumPy loads the library, before any line of ours runs.

OpenBLAS 0.3.28 added ``openblas_set_threads_callback_function``
(OpenMathLib/OpenBLAS#4577): OpenBLAS then hands each parallel section, an
array of jobs, to the caller's function instead of its own threads. Inside
:func:`blas_sections_on_pool` (a CPU fit's, when ``SK_HASHEDNETS_BLAS_POOL=1``
and its products are large, :func:`worth_a_pool`) this module registers
:func:`_make_callback`'s function with NumPy's OpenBLAS. It runs job 0 on the
calling thread and jobs 1, 2, ... on native worker threads (POSIX threads
started by Numba-compiled code, no Python and no GIL involved), which wait on a
condition variable between sections: nothing spins after a product.

It is off by default. On the project's 2-core machine (a virtual machine) the
hashing kernels of a sharded 4096-4096-4096-10 step ran 1.4 to 1.9 times as
fast with it, but a product now waits for a sleeping worker to wake (0.1 to
0.6 ms after a pause, against nothing for a spinning thread): whole steps were
0.99 to 1.13 times as fast there, and 0.78 to 0.82 times at 784-1000-1000-10,
whose products are short (hence :data:`MIN_MULTIPLY_ADDS`;
``docs/performance.md``). Too little, on the one machine measured, to change
how every fit runs the process's products by default.

- **Bits.** OpenBLAS splits a product among its jobs the same way whoever runs
  them, so the products are bit for bit those of OpenBLAS's own threads
  (``tests/test_blas_pool.py``).
- **Every job at once.** The jobs of a level-3 section wait for each other's
  packed panels, so they must all run at the same time: the pool has a worker
  per job position, and starts more if a section has more jobs than it has
  workers. Jobs it has no worker for (the system refused a thread) go to
  OpenBLAS's own threads (``exec_blas_async``), as OpenBLAS would send them.
- **Slots of their own.** Job ``i`` runs in OpenBLAS's "thread number" (slot)
  ``first + i``, which picks the buffer and the status entry it uses.
  OpenBLAS's own threads own slots 0 to ``blas_num_threads - 2`` and still
  run the work that does not pass through the callback (LAPACK's parallel LU
  hands its jobs to them directly), and a product that another thread started
  before the callback was registered may still be running there. The pool
  therefore uses the slots after theirs (:func:`_first_slot`), and is not
  used where they do not fit below OpenBLAS's ``MAX_THREADS`` (more than
  half of its slots in use, 33 threads and more for NumPy's build of 64). A
  section that no longer fits (OpenBLAS's threads raised during a fit) runs
  job 0 in the first free slot and the others on OpenBLAS's own threads.
- **One section at a time.** Two sections at once would share the pool's
  slots. Sections are therefore serialised; a product that another thread of
  the process starts during the fit waits for the section before it (it gets
  the same bits).
- **Process-wide.** The setting belongs to the library, not to a thread: while
  any fit runs, every multi-threaded product of NumPy's OpenBLAS that goes
  through its sections runs on the pool. The first fit registers the
  callback, the last one to end removes it. A forked child forgets both.
- **OpenBLAS's own threads** are not stopped: a thread that spins when the
  callback is registered spins until its timeout (about 0.1 s), then sleeps
  until OpenBLAS hands it work itself (the LU above, or a product after the
  callback is removed).
- **Memory.** Each slot the pool uses gets OpenBLAS's per-thread buffer the
  first time (address space; OpenBLAS keeps it for the process's life).
"""

import atexit
import ctypes
import functools
import os
import re
import threading
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

#: Environment variable that turns the pool on for CPU fits ("1", "true", "yes" or "on").
ENV_SWITCH = "SK_HASHEDNETS_BLAS_POOL"

#: Smallest product of a step, in multiply-adds (batch x fan-in x fan-out of the
#: largest layer), for which a fit moves OpenBLAS's sections to the pool. Where
#: products are short, waking a worker for each costs more than the spinning
#: did: at 784-1000-1000-10 and batch 256 (2**27.9) steps on the pool were 0.78
#: to 0.82 times as fast, at 4096-4096-4096-10 (2**32) 0.99 to 1.13 times
#: (``bench_cpu.py --compare-blas-pool``). The bound lies between, unmeasured.
MIN_MULTIPLY_ADDS = 1 << 30

#: Most job positions of a section (OpenBLAS's MAX_CPU_NUMBER is at most this).
MAX_POSITIONS = 1024

# Slots of the pool's state vector (int64).
_GENERATION = 0  # sections started so far
_STOP = 1  # set when the pool closes
_DOJOB = 2  # OpenBLAS's job function (address)
_JOBS = 3  # the section's job array (address)
_JOB_BYTES = 4  # size of one job in that array
_N_JOBS = 5
_DOJOB_DATA = 6
_DONE = 7  # jobs of the section that the workers have finished
_N_WORKERS = 8  # workers started: positions 1 .. _N_WORKERS
_ENTRY = 9  # the workers' thread function (address)
_WORKER_ARGS = 10  # address of an int64 array (MAX_POSITIONS, 4): each worker's arguments
_THREAD_IDS = 11  # address of a pthread_t array (MAX_POSITIONS,)
_NATIVE_THREADS = 12  # address of OpenBLAS's int blas_num_threads
_MAX_THREADS = 13  # OpenBLAS's MAX_THREADS (its slots)
_FIRST_SLOT = 14  # the current section's job i runs in OpenBLAS's slot _FIRST_SLOT + i
_EXEC_ASYNC = 15  # OpenBLAS's exec_blas_async (address)
_EXEC_ASYNC_WAIT = 16  # OpenBLAS's exec_blas_async_wait (address)
_STATE_SLOTS = 24

# pthread objects in the pool's sync buffer, each given _SYNC_BYTES (more than
# glibc's or macOS's pthread_mutex_t and pthread_cond_t need).
_SYNC_BYTES = 128
_MUTEX = 0  # guards the state
_WORK = 1  # condition: a section started, or the pool closes
_FINISHED = 2  # condition: the workers finished the section's jobs
_SECTION = 3  # held for a whole section: one section at a time

_mutex_lock = types.ExternalFunction("pthread_mutex_lock", types.int32(types.voidptr))
_mutex_unlock = types.ExternalFunction("pthread_mutex_unlock", types.int32(types.voidptr))
_cond_wait = types.ExternalFunction("pthread_cond_wait", types.int32(types.voidptr, types.voidptr))
_cond_signal = types.ExternalFunction("pthread_cond_signal", types.int32(types.voidptr))
_cond_broadcast = types.ExternalFunction("pthread_cond_broadcast", types.int32(types.voidptr))
_thread_create = types.ExternalFunction(
    "pthread_create",
    types.int32(types.voidptr, types.voidptr, types.voidptr, types.voidptr),
)

_BYTE_POINTER = ir.IntType(8).as_pointer()


@intrinsic
def _pointer(typingctx, address):
    """The pointer at integer ``address``."""

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], _BYTE_POINTER)

    return types.voidptr(address), codegen


@intrinsic
def _address(typingctx, pointer):
    """The integer address of ``pointer``."""

    def codegen(context, builder, signature, args):
        return builder.ptrtoint(args[0], ir.IntType(64))

    return types.int64(pointer), codegen


@intrinsic
def _run_job(typingctx, dojob, slot, job, dojob_data):
    """Call OpenBLAS's ``void dojob(int thread_num, void *job, int dojob_data)``.

    ``thread_num`` (``slot``) picks the buffer and status entry the job uses.
    """

    def codegen(context, builder, signature, args):
        function, slot, job, data = args
        int32 = ir.IntType(32)
        kind = ir.FunctionType(ir.VoidType(), [int32, _BYTE_POINTER, int32])
        builder.call(
            builder.inttoptr(function, kind.as_pointer()),
            [
                builder.trunc(slot, int32),
                builder.inttoptr(job, _BYTE_POINTER),
                builder.trunc(data, int32),
            ],
        )
        return context.get_dummy_value()

    return types.void(dojob, slot, job, dojob_data), codegen


@intrinsic
def _call_exec(typingctx, function, count, queue):
    """Call OpenBLAS's ``int exec_blas_async(_wait)(BLASLONG, blas_queue_t *)``."""

    def codegen(context, builder, signature, args):
        address, count, queue = args
        kind = ir.FunctionType(ir.IntType(32), [ir.IntType(64), _BYTE_POINTER])
        return builder.call(
            builder.inttoptr(address, kind.as_pointer()),
            [count, builder.inttoptr(queue, _BYTE_POINTER)],
        )

    return types.int32(function, count, queue), codegen


@njit(nogil=True, cache=True)
def _sync(sync_address, which):
    return _pointer(sync_address + which * _SYNC_BYTES)


@njit(nogil=True, cache=True)
def _serve(state_address, sync_address, position, seen):
    """A worker's life: run job ``position`` of every section that has one, sleep between."""
    state = carray(_pointer(state_address), _STATE_SLOTS, np.int64)
    mutex = _sync(sync_address, _MUTEX)
    _mutex_lock(mutex)
    while True:
        while state[_GENERATION] == seen and state[_STOP] == 0:
            _cond_wait(_sync(sync_address, _WORK), mutex)
        if state[_GENERATION] == seen:  # stopped, with no section pending
            break
        seen = state[_GENERATION]
        n_jobs = state[_N_JOBS]
        if position < n_jobs:
            dojob, data, slot = state[_DOJOB], state[_DOJOB_DATA], state[_FIRST_SLOT] + position
            job = state[_JOBS] + position * state[_JOB_BYTES]
            _mutex_unlock(mutex)
            _run_job(dojob, slot, job, data)
            _mutex_lock(mutex)
            state[_DONE] += 1
            if state[_DONE] == n_jobs - 1:
                _cond_signal(_sync(sync_address, _FINISHED))
    _mutex_unlock(mutex)


@functools.cache
def _worker_entry():
    """The workers' POSIX thread function, compiled on first use.

    ``arguments`` points to ``_serve``'s four integers. It returns 0 as an
    integer where POSIX wants a null pointer: both come back in the same
    register on the platforms Numba supports.
    """

    @cfunc(types.intp(types.voidptr), cache=True)
    def entry(arguments):
        a = carray(arguments, 4, np.int64)
        _serve(a[0], a[1], a[2], a[3])
        return 0

    return entry


@njit(nogil=True, cache=True)
def _start_workers(state, state_address, sync_address, n_workers):
    """Start workers up to position ``n_workers``; the state's mutex is held. Started count."""
    args = carray(_pointer(state[_WORKER_ARGS]), (MAX_POSITIONS, 4), np.int64)
    n_workers = min(n_workers, MAX_POSITIONS - 1)
    for position in range(state[_N_WORKERS] + 1, n_workers + 1):
        args[position, 0] = state_address
        args[position, 1] = sync_address
        args[position, 2] = position
        args[position, 3] = state[_GENERATION]  # the worker waits for the next section
        error = _thread_create(
            _pointer(state[_THREAD_IDS] + 8 * position),
            _pointer(0),
            _pointer(state[_ENTRY]),
            _pointer(state[_WORKER_ARGS] + 32 * position),
        )
        if error != 0:
            break
        state[_N_WORKERS] = position
    return state[_N_WORKERS]


@njit(nogil=True, cache=True)
def _first_slot(native_threads, max_threads, n_jobs):
    """OpenBLAS's slot for a section's job 0, and whether its other jobs fit after it.

    Parameters
    ----------
    native_threads : int
        OpenBLAS's ``blas_num_threads``: its own threads own slots 0 to
        ``native_threads - 2`` (the caller of a section runs job 0 itself).
    max_threads : int
        OpenBLAS's ``MAX_THREADS``, its number of slots.
    n_jobs : int
        Jobs of the section.

    Returns
    -------
    first : int
        ``native_threads - 1``, the first slot that no thread of OpenBLAS owns.
    fits : bool
        Whether slots ``first`` to ``first + n_jobs - 1`` all exist.
    """
    first = max(native_threads - 1, 0)
    return first, first + n_jobs <= max_threads


@njit(nogil=True, cache=True)
def _native_threads(state):
    """OpenBLAS's ``blas_num_threads`` now (it only grows)."""
    return np.int64(carray(_pointer(state[_NATIVE_THREADS]), 1, np.int32)[0])


@njit(nogil=True, cache=True)
def _run_section(state_address, sync_address, dojob, n_jobs, job_bytes, jobs, dojob_data):
    """Run one parallel section of OpenBLAS: job 0 here, the others on the workers.

    Jobs that no worker runs (the section does not fit in the slots after
    OpenBLAS's threads, or the system refused a thread) go to OpenBLAS's own
    threads, as its own ``exec_blas`` would send them, and run beside job 0.
    """
    state = carray(_pointer(state_address), _STATE_SLOTS, np.int64)
    section = _sync(sync_address, _SECTION)
    mutex = _sync(sync_address, _MUTEX)
    _mutex_lock(section)
    first, fits = _first_slot(_native_threads(state), state[_MAX_THREADS], n_jobs)
    on_workers = 0
    if n_jobs > 1 and fits:
        _mutex_lock(mutex)
        if n_jobs - 1 > state[_N_WORKERS]:
            _start_workers(state, state_address, sync_address, n_jobs - 1)
        on_workers = min(n_jobs - 1, state[_N_WORKERS])
        if on_workers > 0:
            state[_DOJOB] = dojob
            state[_JOBS] = jobs
            state[_JOB_BYTES] = job_bytes
            state[_N_JOBS] = on_workers + 1
            state[_DOJOB_DATA] = dojob_data
            state[_FIRST_SLOT] = first
            state[_DONE] = 0
            state[_GENERATION] += 1
            _cond_broadcast(_sync(sync_address, _WORK))
        _mutex_unlock(mutex)
    to_openblas = on_workers + 1  # the first job left to OpenBLAS's threads
    tail = jobs + to_openblas * job_bytes
    if to_openblas < n_jobs:
        _call_exec(state[_EXEC_ASYNC], to_openblas, tail)
    _run_job(dojob, first, jobs, dojob_data)
    if to_openblas < n_jobs:
        _call_exec(state[_EXEC_ASYNC_WAIT], n_jobs - to_openblas, tail)
    if on_workers > 0:
        _mutex_lock(mutex)
        while state[_DONE] < on_workers:
            _cond_wait(_sync(sync_address, _FINISHED), mutex)
        _mutex_unlock(mutex)
    _mutex_unlock(section)


#: C signature of OpenBLAS's ``openblas_threads_callback``.
_CALLBACK_SIGNATURE = types.void(
    types.int32, types.voidptr, types.int32, types.uintp, types.voidptr, types.int32
)


def _make_callback(state_address, sync_address):
    """The callback for one pool: its addresses are constants of the compiled function.

    They are read from a constant array rather than written as integers, which
    Numba would type as literals and compile ``_run_section`` again for.
    """
    addresses = np.array([state_address, sync_address], np.int64)

    @cfunc(_CALLBACK_SIGNATURE)
    def callback(sync, dojob, n_jobs, job_bytes, jobs, dojob_data):
        _run_section(
            addresses[0],
            addresses[1],
            _address(dojob),
            n_jobs,
            job_bytes,
            _address(jobs),
            dojob_data,
        )

    return callback


@functools.cache
def _libc():
    return ctypes.CDLL(None)


class _Pool:
    """The workers, their state and pthread objects, and the callback that feeds them."""

    def __init__(self, library):
        libc = _libc()
        self.state = np.zeros(_STATE_SLOTS, np.int64)
        self.sync = np.zeros(4 * _SYNC_BYTES, np.uint8)
        self.worker_args = np.zeros((MAX_POSITIONS, 4), np.int64)
        self.thread_ids = np.zeros(MAX_POSITIONS, np.uint64)
        for which in (_MUTEX, _SECTION):
            _check(libc.pthread_mutex_init(self._sync_object(which), None))
        for which in (_WORK, _FINISHED):
            _check(libc.pthread_cond_init(self._sync_object(which), None))
        self.state[_ENTRY] = _worker_entry().address
        self.state[_WORKER_ARGS] = self.worker_args.ctypes.data
        self.state[_THREAD_IDS] = self.thread_ids.ctypes.data
        self.state[_NATIVE_THREADS] = ctypes.addressof(library.native_threads)
        self.state[_MAX_THREADS] = library.max_threads
        self.state[_EXEC_ASYNC] = library.exec_async
        self.state[_EXEC_ASYNC_WAIT] = library.exec_async_wait
        self.callback = _make_callback(self.state.ctypes.data, self.sync.ctypes.data)

    def _sync_object(self, which):
        """Pointer to pthread object ``which`` (``_MUTEX``, ``_WORK``, ...), as ``_sync``."""
        return ctypes.c_void_p(self.sync.ctypes.data + which * _SYNC_BYTES)

    @property
    def n_workers(self):
        return int(self.state[_N_WORKERS])

    def start_workers(self, n_workers):
        """Start workers up to ``n_workers`` (at most ``MAX_POSITIONS - 1``); how many run."""
        mutex = self._sync_object(_MUTEX)
        libc = _libc()
        try:
            libc.pthread_mutex_lock(mutex)
            return int(
                _start_workers(self.state, self.state.ctypes.data, self.sync.ctypes.data, n_workers)
            )
        finally:
            libc.pthread_mutex_unlock(mutex)

    def close(self):
        """Stop the workers and wait for them to end."""
        libc = _libc()
        mutex = self._sync_object(_MUTEX)
        libc.pthread_mutex_lock(mutex)
        self.state[_STOP] = 1
        libc.pthread_cond_broadcast(self._sync_object(_WORK))
        libc.pthread_mutex_unlock(mutex)
        libc.pthread_join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
        for position in range(1, self.n_workers + 1):
            libc.pthread_join(int(self.thread_ids[position]), None)
        self.state[_N_WORKERS] = 0


def _check(error):
    if error != 0:
        raise OSError(error, os.strerror(error))


class _OpenBLAS(NamedTuple):
    """What the pool needs of NumPy's OpenBLAS."""

    set_callback: object  # openblas_set_threads_callback_function
    get_num_threads: object  # openblas_get_num_threads
    native_threads: object  # its int blas_num_threads (ctypes.c_int)
    max_threads: int  # MAX_THREADS of its build, from its configuration string
    exec_async: int  # address of exec_blas_async
    exec_async_wait: int  # address of exec_blas_async_wait

    def fits(self):
        """Whether a section of as many jobs as OpenBLAS has threads fits the pool's slots."""
        _, fits = _first_slot(self.native_threads.value, self.max_threads, self.get_num_threads())
        return fits


@functools.cache
def _openblas():
    """NumPy's OpenBLAS (:class:`_OpenBLAS`), or None.

    None where NumPy's BLAS is not OpenBLAS, or is older than 0.3.28 (no
    callback), or does not show what the pool needs (its ``MAX_THREADS``, its
    ``blas_num_threads``, ``exec_blas_async``), or on a platform without
    POSIX threads.
    """
    if os.name != "posix":
        return None
    from threadpoolctl import ThreadpoolController

    numpy_dir = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
    for controller in ThreadpoolController().select(internal_api="openblas").lib_controllers:
        path = os.path.abspath(controller.filepath)
        if not path.startswith(numpy_dir) or "numpy" not in path:
            continue
        library = ctypes.CDLL(path)
        setter = _symbol(library, "set_threads_callback_function")
        get_threads = _symbol(library, "get_num_threads")
        get_config = _symbol(library, "get_config")
        try:
            native = ctypes.c_int.in_dll(library, "blas_num_threads")
            exec_async = ctypes.cast(library.exec_blas_async, ctypes.c_void_p).value
            exec_wait = ctypes.cast(library.exec_blas_async_wait, ctypes.c_void_p).value
        except (ValueError, AttributeError):
            return None
        if setter is None or get_threads is None or get_config is None:
            return None
        setter.argtypes = [ctypes.c_void_p]
        setter.restype = None
        get_threads.restype = ctypes.c_int
        get_config.restype = ctypes.c_char_p
        found = re.search(rb"MAX_THREADS=(\d+)", get_config() or b"")
        if found is None:
            return None
        return _OpenBLAS(setter, get_threads, native, int(found.group(1)), exec_async, exec_wait)
    return None


def _symbol(library, name):
    """OpenBLAS's function ``name`` under the prefixes and suffixes of its builds."""
    for prefix in ("scipy_openblas_", "openblas_"):
        for suffix in ("64_", "_64", ""):
            try:
                return getattr(library, f"{prefix}{name}{suffix}")
            except AttributeError:
                continue
    return None


def worth_a_pool(rows, layer_units):
    """Whether a fit's largest product reaches :data:`MIN_MULTIPLY_ADDS`.

    Parameters
    ----------
    rows : int
        Rows of a step's products (the minibatch).
    layer_units : sequence of int
        Units of every layer, input first.

    Returns
    -------
    worth : bool
        Whether ``rows`` times the largest layer's fan-in times fan-out is at
        least :data:`MIN_MULTIPLY_ADDS`.
    """
    largest = max(a * b for a, b in zip(layer_units[:-1], layer_units[1:]))
    return rows * largest >= MIN_MULTIPLY_ADDS


def enabled():
    """Whether :data:`ENV_SWITCH` turns the pool on for CPU fits (off unless set so).

    Returns
    -------
    on : bool
        True where the variable is "1", "true", "yes" or "on" (any case).
    """
    return os.environ.get(ENV_SWITCH, "").strip().lower() in ("1", "true", "yes", "on")


_lock = threading.Lock()
_closed = False  # the pool was closed at exit: no new block uses it
_pool = None
_users = 0
_epoch = 0  # changes in a forked child, whose pool and users are not its parent's


@contextmanager
def blas_sections_on_pool(use=True):
    """NumPy's OpenBLAS runs its parallel sections on the pool inside the block.

    Parameters
    ----------
    use : bool, default=True
        False makes the block do nothing; so does a NumPy whose BLAS has no
        callback, OpenBLAS set to one thread, or a system that refuses the
        pool a thread.

    Yields
    ------
    on_pool : bool
        Whether the sections run on the pool inside the block.
    """
    library = _openblas() if use else None
    if library is None or _closed or library.get_num_threads() < 2 or not library.fits():
        yield False
        return
    global _pool, _users
    with _lock:
        if _pool is None:
            _pool = _Pool(library)
        needed = library.get_num_threads() - 1
        if _pool.start_workers(needed) < needed:  # the system refused a thread
            on_pool = False
        else:
            on_pool = True
            if _users == 0:
                library.set_callback(_pool.callback.address)
            _users += 1
        epoch = _epoch
    if not on_pool:
        yield False
        return
    try:
        yield True
    finally:
        with _lock:
            if epoch == _epoch:
                _users -= 1
                if _users == 0:
                    library.set_callback(None)


def _forget_in_child():
    """A forked child has none of its parent's workers: drop the pool and the callback."""
    global _lock, _pool, _users, _epoch
    if _pool is not None:  # the callback may have been registered
        _openblas().set_callback(None)
    _lock, _pool, _users, _epoch = threading.Lock(), None, 0, _epoch + 1


def _close_at_exit():
    """Stop the workers at exit, unless a block (a daemon thread's fit) still uses them."""
    global _pool, _closed
    with _lock:
        _closed = True
        if _pool is not None and _users == 0:
            _pool.close()
            _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
atexit.register(_close_at_exit)
