"""Running cases in isolated worker processes, so that a backend that hangs or crashes fails only its case.

Each worker loads the backend from its spec and runs ``check_case``; it reports "busy" before each backend call
and "idle" after, and the parent enforces ``timeout`` only while a worker is busy (the oracle's time is not the
backend's). A worker that times out is killed, one that dies is noticed by its closed pipe; either way the case
in hand fails in that dtype with the reason, its remaining dtypes go to a fresh worker, and the run goes on.
"""
import multiprocessing
import os
import time
from collections import deque
from multiprocessing.connection import wait

from .backends import BackendLoadError, load_backend
from .checks import check_case
from .compare import CheckResult
from .reference import OracleCache
from .results import make_record
from .tolerances import Tolerances


class WorkerStartError(BackendLoadError):
    """A worker could not load the backend, or did not start (the message carries why)."""


def _worker_main(connection, spec, device, cache_dir, tolerances_path, context, threads):
    # Before the backend imports torch: workers that each used every core would slow each other down.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(threads))
    try:
        backend = load_backend(spec, device)
        cache, tolerances = OracleCache(cache_dir), Tolerances.load(tolerances_path)
    except BaseException as error:  # noqa: BLE001 -- report why, then stop: the parent turns it into a usage error
        connection.send(("fatal", f"{type(error).__name__}: {error}"))
        return
    connection.send(("ready", backend.describe()))
    while True:
        message = connection.recv()
        if message[0] == "stop":
            return
        _, case, dtypes = message
        for dtype, records, timings in check_case(case, dtypes, backend, cache, tolerances, context,
                                                  notify=lambda state: connection.send((state,))):
            connection.send(("records", case.full_id, dtype, records, timings))
        connection.send(("done", case.full_id, {"hits": cache.hits, "misses": cache.misses}))
        cache.hits = cache.misses = 0  # the parent adds up what each "done" reports


class _Worker:
    def __init__(self, mp_context, arguments):
        self.connection, child = mp_context.Pipe()
        self.process = mp_context.Process(target=_worker_main, args=(child,) + arguments, daemon=True)
        self.process.start()
        child.close()
        self.task = None  # (case, remaining dtypes)
        self.busy_since = None

    def stop(self, kill=False):
        if kill:
            self.process.kill()
        else:
            try:
                self.connection.send(("stop",))
            except OSError:
                pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


class WorkerPool:
    """Up to ``jobs`` isolated workers; ``submit(tasks)`` yields (case, dtype, records, timings) as they finish."""

    def __init__(self, spec, device, cache_dir, tolerances_path, context, jobs=1, timeout=60.0):
        threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
        self._arguments = (spec, device, str(cache_dir) if cache_dir else None,
                           str(tolerances_path) if tolerances_path else None, context, threads)
        self._mp = multiprocessing.get_context("spawn")  # never fork a process that may hold CUDA or threads
        self.jobs, self.timeout, self.context = max(1, jobs), timeout, context
        self.backend_description, self.cache_stats = None, {"hits": 0, "misses": 0}
        self._workers = None

    def _start(self):
        worker = _Worker(self._mp, self._arguments)
        if not worker.connection.poll(600):
            worker.stop(kill=True)
            raise WorkerStartError("a worker did not start within 600 s")
        try:
            message = worker.connection.recv()
        except EOFError:
            worker.stop(kill=True)
            raise WorkerStartError(f"a worker died while starting (exit code {worker.process.exitcode})") from None
        if message[0] == "fatal":
            worker.stop(kill=True)
            raise WorkerStartError(message[1])
        self.backend_description = message[1]
        return worker

    def _failure(self, worker, reason):
        """Records for the dtype in hand, failed with the reason; the rest of the case goes back to the queue.
        None when the worker had finished every dtype of its case (it died before saying "done")."""
        case, dtypes = worker.task
        if not dtypes:
            return None
        record = make_record(case, dtypes[0], CheckResult("call", "failed", reason, n=1, bad=1), self.context)
        return case, dtypes[0], [record], {}, (case, dtypes[1:])

    def open(self, workers=None):
        """Start the workers (``jobs`` of them, or fewer when there is less work); a no-op when already open."""
        if not self._workers:
            self._workers = [self._start() for _ in range(max(1, min(self.jobs, workers or self.jobs)))]

    def submit(self, tasks):
        """Run tasks (iterable of (case, dtypes)) on the open workers; yields (case, dtype, records, timings)."""
        self.open()
        yield from self._loop(deque(tasks), self._workers)

    def close(self):
        for worker in self._workers or ():
            worker.stop(kill=worker.task is not None)
        self._workers = None

    def _dispatch(self, queue, workers):
        for worker in workers:
            if worker.task is None and queue:
                case, dtypes = queue.popleft()
                if dtypes:
                    worker.task = (case, list(dtypes))
                    worker.connection.send(("case", case, list(dtypes)))

    def _loop(self, queue, workers):
        while True:
            self._dispatch(queue, workers)
            active = [w for w in workers if w.task is not None]
            if not active:
                return
            deadlines = [w.busy_since + self.timeout - time.monotonic() for w in active if w.busy_since is not None]
            ready = wait([w.connection for w in active], timeout=max(0.0, min(deadlines)) if deadlines else None)
            for worker in active:
                if worker.connection in ready:
                    yield from self._receive(worker, queue, workers)
                elif worker.busy_since is not None and time.monotonic() - worker.busy_since > self.timeout:
                    yield from self._replace(worker, queue, workers,
                                             f"timed out: the backend did not return within {self.timeout:g} s")

    def _receive(self, worker, queue, workers):
        try:
            message = worker.connection.recv()
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            yield from self._replace(worker, queue, workers,
                                     f"the backend process died (exit code {worker.process.exitcode})")
            return
        kind = message[0]
        if kind == "busy":
            worker.busy_since = time.monotonic()
        elif kind == "idle":
            worker.busy_since = None
        elif kind == "records":
            _, _, dtype, records, timings = message
            case, dtypes = worker.task
            worker.task = (case, [d for d in dtypes if d != dtype])
            yield case, dtype, records, timings
        elif kind == "done":
            worker.task, worker.busy_since = None, None
            for key in ("hits", "misses"):
                self.cache_stats[key] += message[2][key]

    def _replace(self, worker, queue, workers, reason):
        failure = self._failure(worker, reason)
        worker.task = None
        worker.stop(kill=True)
        workers[workers.index(worker)] = self._start()
        if failure is None:
            return
        case, dtype, records, timings, rest = failure
        if rest[1]:
            queue.appendleft(rest)
        yield case, dtype, records, timings
