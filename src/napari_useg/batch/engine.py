"""The parallel engine: one Dask task per item, on a local or an existing cluster.

Everything that runs work in parallel (``napari-useg batch``, ``napari-useg evaluate
--jobs``) goes through :func:`iter_map` / :func:`map_images`, so the local case and a
remote cluster (``--scheduler tcp://host:8786``) share one code path: the only
difference is where the :class:`distributed.Client` comes from (:func:`open_client`).

Threads
-------
A worker runs one item at a time (``nthreads=1`` on the local cluster) and gives it
``threads`` compute threads: :func:`torch.set_num_threads` is set in the task, and
the local cluster's worker processes start with ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` set to the same value, so workers x
threads equals the cores and the machine is never oversubscribed. They also start
without Dask's ``MALLOC_TRIM_THRESHOLD_``, which slows NumPy-heavy tasks down (see
``_thread_environ``). On an existing cluster each worker gets ``threads_per_worker``
if given, else its host's cores divided by the task slots (Dask threads) of all
workers on that host.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import socket
import sys
import traceback as tb_module
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy
import psutil
import torch
from distributed import Client, LocalCluster, as_completed, get_worker
from tqdm import tqdm

from napari_useg.core.version import __version__

__all__ = [
    "Outcome",
    "machine_cores",
    "local_layout",
    "open_client",
    "check_target",
    "CONNECT_TIMEOUT",
    "SchedulerUnreachableError",
    "ClientInfo",
    "iter_map",
    "run_on",
    "submit_task",
    "future_outcome",
    "describe_error",
    "worker_address",
    "task_environment",
    "map_images",
]

#: Memory a local worker should at least have when the layout is chosen automatically.
MIN_WORKER_MEMORY = 1 << 30

#: Seconds :func:`open_client` waits for a scheduler given by address (Dask's own default
#: is 30 s, retried all along, so a wrong address would look like a hang).
CONNECT_TIMEOUT = 10.0


class SchedulerUnreachableError(ConnectionError, ValueError):
    """The Dask scheduler at the given address could not be reached.

    A :class:`ConnectionError` (it is one) and a :class:`ValueError` (the address
    given is not usable), so the command line reports it in one line, like any
    other bad option.
    """


@dataclass
class Outcome:
    """Result of one item of :func:`iter_map`.

    Attributes
    ----------
    index : int
        Position of the item in the input sequence.
    item : object
        The item itself.
    value : object
        What the function returned (``None`` when it raised).
    error : str or None
        ``"ExceptionType: message"`` when the function raised (or its worker died).
    traceback : str or None
        The remote traceback, when available.
    exception : BaseException or None
        The exception object (re-raise it to stop at the first error).
    """

    index: int
    item: Any
    value: Any = None
    error: str | None = None
    traceback: str | None = None
    exception: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when the function returned normally."""
        return self.error is None


def machine_cores() -> int:
    """Cores this process may use (CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def _total_memory() -> int | None:
    try:
        return int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001 - not every platform reports it
        return None


def _check_count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def local_layout(workers: int | None = None, threads_per_worker: int | None = None,
                 cores: int | None = None) -> tuple[int, int]:
    """Workers and threads per worker of a local cluster.

    Parameters
    ----------
    workers, threads_per_worker : int, optional
        What the caller asked for; the missing one is derived so that
        ``workers * threads_per_worker`` equals ``cores``. With neither given:
        one single-threaded process per core, fewer (with more threads each) when
        the machine has less than 1 GiB of memory per core.
    cores : int, optional
        Cores to fill (default :func:`machine_cores`).

    Returns
    -------
    (int, int)
        ``(workers, threads_per_worker)``.

    Raises
    ------
    TypeError, ValueError
        For values that are not positive integers.

    Warns
    -----
    UserWarning
        When explicit values ask for more threads than cores.

    Examples
    --------
    >>> local_layout(cores=8)[0] * local_layout(cores=8)[1] <= 8
    True
    >>> local_layout(workers=2, cores=8)
    (2, 4)
    >>> local_layout(threads_per_worker=2, cores=8)
    (4, 2)
    """
    workers = _check_count("workers", workers)
    threads = _check_count("threads_per_worker", threads_per_worker)
    cores = _check_count("cores", cores) or machine_cores()
    if workers is None and threads is None:
        workers = cores
        mem = _total_memory()
        if mem is not None:
            workers = max(1, min(cores, mem // MIN_WORKER_MEMORY))
        threads = max(1, cores // workers)
    elif workers is None:
        workers = max(1, cores // threads)
    elif threads is None:
        threads = max(1, cores // workers)
    assert workers is not None and threads is not None
    if workers * threads > cores:
        warnings.warn(
            f"{workers} workers x {threads} threads = {workers * threads} threads on "
            f"{cores} cores: the machine is oversubscribed and every image will run slower",
            UserWarning, stacklevel=2)
    return workers, threads


def _free_port(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _thread_environ(threads: int) -> Iterator[None]:
    """Worker processes spawned inside start with ``threads`` BLAS/OpenMP threads.

    They also start without Dask's default ``MALLOC_TRIM_THRESHOLD_``: setting it turns
    off glibc's adaptive mmap threshold, so every large NumPy temporary is a fresh
    ``mmap`` and page-faulted anew; measured here, that made k-means on BSDS500
    images 35-60% slower in a worker than in a plain process.
    """
    keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in (*keys, _TRIM)}
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    env[_TRIM] = None  # None: not set at all
    env.update({k: threads for k in keys})
    # the nanny lets this process's environment override its configuration, and an
    # earlier cluster's nanny (or the user) may have left other values here
    os.environ.pop(_TRIM, None)
    os.environ.update({k: str(threads) for k in keys})
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
            yield
    finally:  # the nanny exports these into this process too; put ours back
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_TRIM = "MALLOC_TRIM_THRESHOLD_"


@dataclass(frozen=True)
class ClientInfo:
    """The client :func:`open_client` yields, and how many threads each worker's task gets.

    Attributes
    ----------
    client : distributed.Client
    threads : dict
        Worker address -> compute threads of a task there.
    default_threads : int or None
        For workers that join later (``None``: derived on the worker).
    local : bool
        Whether the cluster was started here.
    """

    client: Any
    threads: dict[str, int]
    default_threads: int | None
    local: bool


def _host_cores() -> int:
    return machine_cores()


def worker_threads(client: Any, threads_per_worker: int | None = None) -> dict[str, int]:
    """Compute threads per task for every worker of ``client``'s cluster.

    ``threads_per_worker`` when given; otherwise each host's cores divided by the
    task slots of all the workers on that host.
    """
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    if not workers:
        return {}
    if threads_per_worker is not None:
        return {addr: int(threads_per_worker) for addr in workers}
    cores = client.run(_host_cores)
    slots: dict[str, int] = {}
    for info in workers.values():
        slots[info["host"]] = slots.get(info["host"], 0) + int(info.get("nthreads", 1))
    return {addr: max(1, int(cores.get(addr, 1)) // max(1, slots[info["host"]]))
            for addr, info in workers.items()}


def check_target(client: Any = None, scheduler: str | None = None, workers: int | None = None,
                 threads_per_worker: int | None = None) -> None:
    """Validate where to run (see :func:`open_client`) without connecting to anything.

    Raises
    ------
    TypeError, ValueError
        For counts that are not positive integers, a malformed scheduler address,
        or conflicting choices.
    """
    _check_count("threads_per_worker", threads_per_worker)
    _check_count("workers", workers)
    if client is not None and scheduler is not None:
        raise ValueError("give either an existing client or a scheduler address, not both")
    if (client is not None or scheduler is not None) and workers is not None:
        raise ValueError("workers sizes a new local cluster; an existing cluster "
                         "(client or scheduler address) uses its own workers")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ValueError(f"scheduler must be an address such as tcp://host:8786, "
                         f"got {scheduler!r}")
    if client is not None and not hasattr(client, "submit"):
        raise TypeError(f"client must be a distributed.Client, got {client!r}")


@contextlib.contextmanager
def open_client(client: Any = None, *, scheduler: str | None = None,
                workers: int | None = None, threads_per_worker: int | None = None,
                quiet: bool = False, dashboard: bool = True,
                connect_timeout: float | None = None) -> Iterator[ClientInfo]:
    """A Dask client: the one given, one connected to ``scheduler``, or a new local cluster.

    Parameters
    ----------
    client : distributed.Client, optional
        An existing client (e.g. in a notebook); left open on exit.
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); the connection is
        closed on exit, the cluster keeps running.
    workers, threads_per_worker : int, optional
        Layout of the local cluster started when neither ``client`` nor
        ``scheduler`` is given (see :func:`local_layout`); with an existing
        cluster ``threads_per_worker`` sets the compute threads of each task.
    quiet : bool
        Do not print the dashboard address of a new local cluster.
    dashboard : bool
        Serve the dashboard of a new local cluster (port 8787 when free).
    connect_timeout : float, optional
        Seconds to wait for ``scheduler`` (default :data:`CONNECT_TIMEOUT`).

    Yields
    ------
    ClientInfo

    Raises
    ------
    ValueError
        When ``client`` and ``scheduler`` are both given, ``workers`` is given
        with an existing cluster (its size is the cluster's own), or ``scheduler``
        is not a valid address.
    SchedulerUnreachableError
        (a :class:`ConnectionError` and a :class:`ValueError`) When nothing answers at
        ``scheduler`` within ``connect_timeout`` seconds; the message names the address.
    """
    check_target(client, scheduler, workers, threads_per_worker)
    if client is not None:
        yield ClientInfo(client, worker_threads(client, threads_per_worker),
                         threads_per_worker, False)
        return
    if scheduler is not None:
        timeout = CONNECT_TIMEOUT if connect_timeout is None else float(connect_timeout)
        if not timeout > 0:
            raise ValueError(f"connect_timeout must be > 0 seconds, got {connect_timeout!r}")
        address = scheduler.strip()
        try:
            # only the connection is guarded: errors of the work itself pass untouched
            c = Client(address, timeout=timeout)
        except (OSError, TimeoutError) as exc:  # refused, unknown host, timed out
            raise SchedulerUnreachableError(
                f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                f"({type(exc).__name__}: {exc}); is it running, and is the address right?"
            ) from exc
        except ValueError as exc:  # malformed address (e.g. no port)
            raise ValueError(f"bad Dask scheduler address {address!r}: {exc}") from exc
        with c:
            yield ClientInfo(c, worker_threads(c, threads_per_worker), threads_per_worker,
                             False)
        return
    n, t = local_layout(workers, threads_per_worker)
    address = None
    if dashboard:
        address = ":8787" if _free_port(8787) else ":0"
    with _thread_environ(t), warnings.catch_warnings():
        # without a dashboard the scheduler's HTTP server still tries 8787 first
        warnings.filterwarnings("ignore", message="Port .* is already in use",
                                category=UserWarning)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=address, silence_logs=logging.ERROR)
    try:
        with Client(cluster) as c:
            if not quiet:
                link = f", dashboard {c.dashboard_link}" if dashboard else ""
                print(f"local Dask cluster: {n} worker(s) x {t} thread(s){link}",
                      file=sys.stderr, flush=True)
            yield ClientInfo(c, {a: t for a in c.scheduler_info(n_workers=-1)["workers"]},
                             t, True)
    finally:
        with _quiet_logs():
            cluster.close()


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """Nannies log a warning when they kill a slow-to-exit worker at shutdown."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


_THREADS_SET: list[int] = []


def limit_threads(n: int) -> None:
    """Use ``n`` compute threads in this worker (torch intra-op threads)."""
    if _THREADS_SET and _THREADS_SET[0] == n:
        return
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    _THREADS_SET[:] = [n]


def _call(func: Callable[..., Any], item: Any, threads: dict[str, int],
          default_threads: int | None, *shared: Any) -> Any:
    """The task run on a worker: set the thread count, then ``func(item, *shared)``."""
    n = default_threads
    try:
        w = get_worker()
        n = threads.get(w.address, n)
        if n is None:
            n = max(1, machine_cores() // max(1, int(w.state.nthreads)))
    except ValueError:  # not on a worker (e.g. called directly)
        pass
    if n is not None:
        limit_threads(int(n))
    return func(item, *shared)


def describe_error(exc: BaseException) -> str:
    """``"ExceptionType: message"`` (just the type when the message is empty)."""
    msg = str(exc)
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def worker_address() -> str | None:
    """Address of the Dask worker running the calling task (``None`` outside a worker)."""
    try:
        return get_worker().address
    except ValueError:
        return None


def task_environment() -> dict[str, Any]:
    """Versions, host, process, compute threads and worker of the calling task (for records)."""
    return {
        "napari_useg_version": __version__, "numpy_version": numpy.__version__,
        "torch_version": torch.__version__, "python": platform.python_version(),
        "host": platform.node(), "pid": os.getpid(), "threads": torch.get_num_threads(),
        "worker": worker_address(),
    }


def iter_map(func: Callable[..., Any], items: Iterable[Any], *, client: Any = None,
             scheduler: str | None = None, workers: int | None = None,
             threads_per_worker: int | None = None, shared: Sequence[Any] = (),
             quiet: bool = True, name: str | None = None) -> Iterator[Outcome]:
    """Run ``func(item, *shared)`` for every item as one Dask task; yield results as they finish.

    Parameters
    ----------
    func : callable
        A picklable (module-level) function. Its exceptions do not stop the
        other items: they come back as :class:`Outcome` with ``error`` set.
    items : iterable
        Picklable arguments, one task each.
    client, scheduler, workers, threads_per_worker
        Where to run (see :func:`open_client`): an existing client, a scheduler
        address, or a new local cluster of this layout (default: sized to the machine).
    shared : sequence
        Objects every task needs (e.g. a fitted model): sent to each worker once
        (:meth:`distributed.Client.scatter` with ``broadcast=True``), not per task,
        and passed to ``func`` after the item.
    quiet : bool
        Do not print the dashboard address when a local cluster starts.
    name : str, optional
        Prefix of the task keys shown on the dashboard (default: the function's name).

    Yields
    ------
    Outcome
        In completion order (``Outcome.index`` is the item's position). Closing
        the iterator early cancels the tasks not yet finished and closes a
        cluster started here.

    Examples
    --------
    >>> from napari_useg.batch import iter_map
    >>> done = sorted(o.value for o in iter_map(abs, [-1, -2], workers=1))  # doctest: +SKIP
    """
    items = list(items)
    if not callable(func):
        raise TypeError(f"func must be callable, got {func!r}")
    if not items:
        return
    with open_client(client, scheduler=scheduler, workers=workers,
                     threads_per_worker=threads_per_worker, quiet=quiet) as info:
        yield from run_on(info, func, items, shared=shared, name=name)


def submit_task(info: ClientInfo, func: Callable[..., Any], item: Any, *args: Any,
                key: str) -> Any:
    """Submit ``func(item, *args)`` as one task that sets its worker's compute threads first.

    ``args`` may hold futures (their results are passed); returns the future.
    """
    return info.client.submit(_call, func, item, info.threads, info.default_threads, *args,
                              key=key, pure=False)


def future_outcome(fut: Any, index: int, item: Any) -> Outcome:
    """The :class:`Outcome` of a finished future: its value, or its error and traceback."""
    if fut.status == "finished":
        return Outcome(index, item, value=fut.result())
    exc = fut.exception()
    tb = fut.traceback()
    text = "".join(tb_module.format_tb(tb)) if tb is not None else None
    return Outcome(index, item, error=describe_error(exc), traceback=text, exception=exc)


def run_on(info: ClientInfo, func: Callable[..., Any], items: Sequence[Any], *,
           shared: Sequence[Any] = (), name: str | None = None) -> Iterator[Outcome]:
    """:func:`iter_map` on a client already opened with :func:`open_client`."""
    prefix = name or getattr(func, "__name__", "task")
    run_id = uuid.uuid4().hex[:8]
    c = info.client
    shared_f = [c.scatter([obj], broadcast=True, hash=False)[0] for obj in shared]
    futures = [submit_task(info, func, item, *shared_f, key=f"{prefix}-{run_id}-{i}")
               for i, item in enumerate(items)]
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for fut in as_completed(futures):
            i = index[fut.key]
            yield future_outcome(fut, i, items[i])
            fut.release()
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            c.cancel(pending)
        for f in shared_f:
            f.release()


def map_images(func: Callable[..., Any], items: Iterable[Any], *, client: Any = None,
               scheduler: str | None = None, workers: int | None = None,
               threads_per_worker: int | None = None, shared: Sequence[Any] = (),
               progress: bool = False, desc: str | None = None,
               quiet: bool = True, name: str | None = None,
               on_result: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """:func:`iter_map`, collected: one :class:`Outcome` per item, in the items' order.

    Parameters
    ----------
    func, items, client, scheduler, workers, threads_per_worker, shared, quiet, name
        As in :func:`iter_map`.
    progress : bool
        Show a progress bar over the items (tqdm, on stderr).
    desc : str, optional
        Label of the progress bar.
    on_result : callable, optional
        Called with every :class:`Outcome` as soon as it arrives (e.g. to save it,
        so that an interrupted run keeps what finished).

    Returns
    -------
    list of Outcome
        Per-item errors are captured in ``Outcome.error``; nothing is raised for them.
    """
    items = list(items)
    out: list[Outcome | None] = [None] * len(items)
    bar = None
    if progress:
        bar = tqdm(total=len(items), desc=desc, unit="img", file=sys.stderr)
    try:
        for o in iter_map(func, items, client=client, scheduler=scheduler, workers=workers,
                          threads_per_worker=threads_per_worker, shared=shared, quiet=quiet,
                          name=name):
            out[o.index] = o
            if on_result is not None:
                on_result(o)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    assert all(o is not None for o in out)
    return out  # type: ignore[return-value]
