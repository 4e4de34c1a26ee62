"""Running cases in isolated worker processes, so that a backend that hangs or crashes fails only its case.

Each worker loads the backend from its spec and runs ``check_case``; it marks itself "busy" before each backend
call and "working" after, and the parent enforces ``timeout`` only while a worker is busy (the oracle's time is
not the backend's). The mark is a status word in shared memory (``_Status``), not a message: a pipe message per
backend call cost 1.4 s of a 6 s run in system calls and parent wake-ups. A worker that times out is killed, and
the case in hand fails in that dtype. A worker that dies is noticed by its closed pipe; the pair it was running is
run once more, alone in a fresh worker, before it is blamed (a heap corrupted by an earlier call can kill the
process during a later one). Either way the remaining dtypes go to a fresh worker and the run goes on. Once the
backend is loaded, the worker restores the default action of the fatal signals, so that a crash ends the process
at once rather than in a handler that may hang.

The rest of a case's work (its inputs, the oracle, the comparison) is bounded too: a worker that holds a case
and is not in a backend call must mark progress (a record, "busy", or "oracle" when checks.py reports the
oracle call) within ``oracle_timeout`` seconds. Past it the worker is killed and the case ends as a case error
("error", not a backend failure) in the dtype in hand and in those it had left: the oracle is as slow in each.
Workers ignore SIGINT (from the moment they start): Ctrl-C reaches the whole process group, and the parent alone
handles it, with one line. They are forked from a fork server that imported the harness, and torch for the
built-in backends, once (startup.py).
"""
import atexit
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait

from ..backends import BackendLoadError, close_backend, declared_choices, load_backend
from ..spec.names import ORACLE_TIMEOUT_S, TIMEOUT_S
from ..verdict.checks import check_case
from ..verdict.compare import CheckResult
from ..expected import OracleCache
from ..expected.store import add_cache_stats
from ..verdict.results import make_record
from ..verdict.tolerances import Tolerances
from .startup import apply_thread_share, sigint_ignored, start_server, worker_context
from .tasks import TaskQueue, affinity


POLL_S = 0.1  # how often the parent reads the workers' status words while it waits: how late a timeout may fire
START_S = 600  # how long a worker may take to start and load its backend


class WorkerStartError(BackendLoadError):
    """A worker could not load the backend, or did not start (the message carries why)."""


class _Status:
    """What a worker is doing with its case ("working", "busy" in a backend call, or "oracle") and since when, in
    one double in shared memory: the worker writes it without a system call and the parent reads it when it wakes.
    One aligned 8-byte store, so a read never sees half a change: the state is the code's last two bits, the time
    (time.monotonic, one clock for every process of the machine) its milliseconds (1/1024 s) above them."""

    STATES = ("working", "busy", "oracle")
    TICKS = 1024  # per second

    def __init__(self, mp_context):
        self._cell = mp_context.RawValue("d", 0.0)

    @classmethod
    def stamp(cls, moment):
        """moment, floored to the status word's resolution (parent and worker compare stamps)."""
        return math.floor(moment * cls.TICKS) / cls.TICKS

    def set(self, state):
        self._cell.value = math.floor(time.monotonic() * self.TICKS) * 4 + self.STATES.index(state)

    def get(self):
        code = int(self._cell.value)
        return self.STATES[code % 4], (code // 4) / self.TICKS


def _worker_main(connection, status, spec, device, cache_dir, tolerances_path, context, threads):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the workers
    try:
        stopped = _serve(connection, status, spec, device, cache_dir, tolerances_path, context, threads)
    except (EOFError, OSError, KeyboardInterrupt):  # the parent is gone: nothing to report to
        return
    if stopped:
        _quick_exit()


def _quick_exit():
    """End a worker that was asked to stop without the interpreter's teardown: unloading torch's modules took
    0.35-0.45 s of every run's end (measured), and nothing in them is still needed. The exit handlers still run
    (multiprocessing's own, a library's pool shut down), the standard streams are flushed, and every cache
    entry was written atomically when it was made."""
    atexit._run_exitfuncs()  # noqa: SLF001 -- what sys.exit would run, without unloading every module after it
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _serve(connection, status, spec, device, cache_dir, tolerances_path, context, threads):
    apply_thread_share(threads)
    try:
        backend = load_backend(spec, device, context.get("world"))
        cache = OracleCache(cache_dir, verify=context.get("verify_cache", 0.0))
        tolerances = Tolerances.load(tolerances_path)
    except BaseException as error:  # noqa: BLE001 -- report why, then stop: the parent turns it into a usage error
        connection.send(("fatal", f"{type(error).__name__}: {error}"))
        return
    for fatal in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL):
        signal.signal(fatal, signal.SIG_DFL)  # a library's crash handler must not turn a crash into a hang
    ready = (backend.describe(), declared_choices(backend, context.get("conventions")))
    connection.send(("ready", *_plain(ready)))
    while True:
        message = connection.recv()
        if message[0] == "stop":
            close_backend(backend)
            return True
        _, case, dtypes = message
        status.set("working")
        for dtype, records, timings in check_case(case, dtypes, backend, cache, tolerances, context,
                                                  notify=lambda state: status.set(_NOTICES[state])):
            status.set("working")  # a dtype finished: the case's own time starts afresh
            connection.send(("records", case.full_id, dtype, records, timings))
        connection.send(("done", case.full_id, cache.stats()))
        cache.reset_stats()  # the parent adds up what each "done" reports


_NOTICES = {"busy": "busy", "idle": "working", "oracle": "oracle"}  # checks.py's words as status states


def _plain(value):
    """value with JSON's types only: a framework's own str subclass (torch's TorchVersion) would make the parent
    import the framework to unpickle it (0.9 s for torch, measured), and the parent never needs it."""
    return json.loads(json.dumps(value, default=str))


class _Worker:
    def __init__(self, mp_context, arguments):
        self.connection, child = mp_context.Pipe()
        self.status = _Status(mp_context)
        self.process = mp_context.Process(target=_worker_main, args=(child, self.status) + arguments, daemon=True)
        with sigint_ignored():
            self.process.start()
        child.close()
        self.task = None  # (case, remaining dtypes, whether this is the re-run of a pair whose worker died)
        self.dispatched_at = None  # when the case in hand was sent: its time counts from then until the worker's word
        self.fresh = True  # has run nothing yet: the only kind of worker a re-run goes to
        self.group = None  # the affinity group of its last case (tasks.py): it takes the next of that group first

    def state(self):
        """(state, since) for the case in hand: the status word once the worker has written it for this case."""
        state, since = self.status.get()
        return (state, since) if since >= self.dispatched_at else ("working", self.dispatched_at)

    def stop(self, kill=False):
        self.ask_to_stop(kill)
        self.await_stop()

    def ask_to_stop(self, kill=False):
        if kill:
            self.process.kill()
        else:
            try:
                self.connection.send(("stop",))
            except OSError:
                pass

    def await_stop(self):
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


class WorkerPool:
    """Up to ``jobs`` isolated workers; ``submit(tasks)`` yields (case, dtype, records, timings) as they finish."""

    def __init__(self, spec, device, cache_dir, tolerances_path, context, jobs=1, timeout=TIMEOUT_S,
                 oracle_timeout=None):
        threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
        self._arguments = (spec, device, str(cache_dir) if cache_dir else None,
                           str(tolerances_path) if tolerances_path else None, context, threads)
        self._mp = worker_context()  # never a fork of this process, which may hold CUDA or threads
        self._spec, self._threads = spec, threads
        self.jobs, self.timeout, self.context = max(1, jobs), timeout, context
        self.oracle_timeout = ORACLE_TIMEOUT_S if oracle_timeout is None else oracle_timeout
        self.backend_description, self.cache_stats = None, add_cache_stats({}, {})
        self.declared = {}  # the backend's declared design choices (backends.declared_choices)
        self._workers, self._launched = None, []  # awaited workers; started ones not yet awaited (launch)
        self._launching = None  # the thread starting them, where starting one waits for the fork server

    def _start(self):
        self._start_server()
        return self._ready(_Worker(self._mp, self._arguments))

    def _start_server(self):
        """Start the fork server where the workers come from one, in this (the main) thread: the server, and the
        workers forked from it, inherit the ignored Ctrl-C, and its environment is set up here alone."""
        with sigint_ignored():
            start_server(self._mp, self._spec, self._threads)

    def _ready(self, worker):
        """The worker, once it has loaded the backend; WorkerStartError (the worker stopped) if it cannot."""
        if not worker.connection.poll(START_S):
            worker.stop(kill=True)
            raise WorkerStartError(f"a worker did not start within {START_S} s")
        try:
            message = worker.connection.recv()
        except EOFError:
            worker.stop(kill=True)
            raise WorkerStartError(f"a worker died while starting (exit code {worker.process.exitcode})") from None
        if message[0] == "fatal":
            worker.stop(kill=True)
            raise WorkerStartError(message[1])
        self.backend_description, self.declared = message[1], message[2]
        return worker

    def _failure(self, worker, reason, died, queue):
        """The failed record of the dtype in hand, or None: when the worker had finished every dtype of its case
        (it died before saying "done"), or when it died on a pair not yet re-run alone (queued first). The rest
        of the case goes back to the queue."""
        case, dtypes, rerun = worker.task
        if not dtypes:
            return None
        if dtypes[1:]:
            queue.appendleft((case, dtypes[1:], False))
        if died and not rerun:
            queue.appendleft((case, dtypes[:1], True))
            return None
        record = make_record(case, dtypes[0], CheckResult("call", "failed", reason, n=1, bad=1), self.context)
        return case, dtypes[0], [record], {}

    def _case_errors(self, worker, reason):
        """The case in hand as a case error in the dtype in hand and in those it had left (its own work, the
        oracle above all, is as slow in each)."""
        case, dtypes, _ = worker.task
        for number, dtype in enumerate(dtypes):
            message = reason if number == 0 else f"not run: {reason} in {dtypes[0]}"
            record = make_record(case, dtype, CheckResult("oracle", "error", message), self.context)
            yield case, dtype, [record], {}

    def launch(self):
        """Start ``jobs`` worker processes without waiting for them: they (or the fork server they are forked
        from) import their framework while the caller does other work; open() awaits them."""
        if self._workers or self._launched or self._launching:
            return
        if self._mp.get_start_method() != "forkserver":
            self._launched = [_Worker(self._mp, self._arguments) for _ in range(self.jobs)]
            return
        self._start_server()
        # A start returns once the server has forked the worker, after its imports: wait in a thread
        self._launching = threading.Thread(target=self._start_launched, daemon=True)
        self._launching.start()

    def _start_launched(self):
        try:
            for _ in range(self.jobs):
                self._launched.append(_Worker(self._mp, self._arguments))
        except Exception as error:  # noqa: BLE001 -- open() reports it
            self._launched.append(error)

    def _await_launched(self):
        """The workers launch() started, once started; WorkerStartError if the fork server could not start one."""
        if self._launching is not None:
            self._launching.join(START_S)
            if self._launching.is_alive():
                raise WorkerStartError(f"the fork server did not start a worker within {START_S} s")
            self._launching = None
        launched, self._launched = self._launched, []
        errors = [item for item in launched if isinstance(item, Exception)]
        workers = [item for item in launched if not isinstance(item, Exception)]
        if errors:
            for worker in workers:
                worker.stop(kill=True)
            raise WorkerStartError(f"a worker could not be started: {type(errors[0]).__name__}: {errors[0]}")
        return workers

    def open(self, workers=None):
        """Start the workers (``jobs`` of them, or fewer when there is less work) and await them; a no-op when
        already open. Workers launched beyond what the work needs are stopped."""
        if not self._workers:
            wanted = max(1, min(self.jobs, workers or self.jobs))
            launched = self._await_launched()
            for extra in launched[wanted:]:
                extra.stop(kill=True)
            # All started at once, then awaited: each spends a second or two importing its framework
            self._start_server()
            launched = launched[:wanted] + [_Worker(self._mp, self._arguments) for _ in range(wanted - len(launched))]
            try:
                self._workers = [self._ready(worker) for worker in launched]
            except WorkerStartError:
                for worker in launched:
                    if worker.process.is_alive():
                        worker.stop(kill=True)
                raise

    def submit(self, tasks):
        """Run tasks (iterable of (case, dtypes)) on the open workers; yields (case, dtype, records, timings)."""
        self.open()
        yield from self._loop(TaskQueue((case, dtypes, False) for case, dtypes in tasks), self._workers)

    def close(self):
        """Stop every worker: all are asked first, then awaited, so that they exit together (a worker's exit,
        torch's teardown included, takes about 0.4 s)."""
        workers = list(self._workers or ())
        for worker in workers:
            worker.ask_to_stop(kill=worker.task is not None)
        if self._launching is not None:
            self._launching.join(START_S)
            self._launching = None
        launched = [worker for worker in self._launched if isinstance(worker, _Worker)]  # never awaited
        for worker in launched:
            worker.ask_to_stop(kill=True)
        for worker in workers + launched:
            worker.await_stop()
        self._workers, self._launched = None, []

    def _dispatch(self, queue, workers):
        for worker in workers:
            if worker.task is not None:
                continue
            held = {other.group for other in workers if other is not worker}
            task = queue.take(reruns=worker.fresh, own=worker.group, held=held)  # re-runs: fresh workers only
            if task is None:
                continue
            case, dtypes, rerun = task
            worker.task, worker.fresh, worker.group = (case, list(dtypes), rerun), False, affinity(case)
            worker.dispatched_at = _Status.stamp(time.monotonic())
            worker.connection.send(("case", case, list(dtypes)))

    def _deadline(self, worker):
        """When the worker's backend call (busy) or the case's own work (not busy) runs out of time."""
        state, since = worker.state()
        return since + (self.timeout if state == "busy" else self.oracle_timeout)

    def _loop(self, queue, workers):
        while True:
            self._dispatch(queue, workers)
            active = [w for w in workers if w.task is not None]
            if not active:
                return
            # A worker changes its status without waking the parent: look again at least every POLL_S.
            deadline = min(self._deadline(w) for w in active)
            ready = wait([w.connection for w in active], timeout=min(POLL_S, max(0.0, deadline - time.monotonic())))
            for worker in active:
                if worker.connection in ready:
                    yield from self._receive(worker, queue, workers)
                elif time.monotonic() > self._deadline(worker):
                    yield from self._expire(worker, queue, workers)

    def _expire(self, worker, queue, workers):
        state, _ = worker.state()
        if state == "busy":
            yield from self._replace(worker, queue, workers,
                                     f"timed out: the backend did not return within {self.timeout:g} s")
            return
        what = "the oracle" if state == "oracle" else "the case's own work (inputs, oracle, comparison)"
        failures = list(self._case_errors(worker, f"case problem: {what} did not finish within "
                                                  f"{self.oracle_timeout:g} s (--oracle-timeout); the case is too "
                                                  "large for the oracle, or give it more time"))
        worker.task = None
        worker.stop(kill=True)
        workers[workers.index(worker)] = self._start()
        yield from failures

    def _receive(self, worker, queue, workers):
        try:
            message = worker.connection.recv()
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            yield from self._replace(worker, queue, workers, f"the backend process died (exit code "
                                     f"{worker.process.exitcode}), also when re-run alone in a fresh worker",
                                     died=True)
            return
        kind = message[0]
        if kind == "records":
            _, _, dtype, records, timings = message
            case, dtypes, rerun = worker.task
            worker.task = (case, [d for d in dtypes if d != dtype], rerun)
            yield case, dtype, records, timings
        elif kind == "done":
            worker.task = None
            add_cache_stats(self.cache_stats, message[2])

    def _replace(self, worker, queue, workers, reason, died=False):
        failure = self._failure(worker, reason, died, queue)
        worker.task = None
        worker.stop(kill=True)
        workers[workers.index(worker)] = self._start()
        if failure is not None:
            yield failure
