"""How worker processes start: forked from multiprocessing's fork server, which has imported the harness and the
framework of a built-in backend (torch, jax) once for the whole run.

Spawned afresh, every worker imported them itself (torch alone takes 0.7-2 s of CPU, and its first autograd call
imports sympy), while the parent loaded the cases on the same cores. The fork server is a fresh interpreter (not a
copy of the parent, which may hold threads or CUDA); what it imports starts no thread of its own (numpy's BLAS
pool shuts itself down around a fork) and does not initialise CUDA, so forking it is safe. It starts with the
workers' thread share in its environment, which numpy's BLAS and torch read as they load. Measured, alternating
with spawned workers: docs/architecture.md.

multiprocessing keeps one fork server per process. A worker must see the environment its pool started in, as a
spawned one does (a test or a plugin session may change it between runs), and the server's imports read it: so the
server is started afresh when a pool wants other modules, another thread share or another environment.
Where there is no fork server (Windows), or this Python offers no way to stop one, workers are spawned.
"""
import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import threading

# Imported by every worker before its first case: the harness (the worker's own module pulls in the rest)
HARNESS = ("__main__", "conformance.run.isolation")
# What the built-in backends import besides: torch, and what torch.autograd.grad imports on its first
# call (symbolic shapes and sympy: 0.36 s on a fast machine), but not inductor, which may start a compile pool
FRAMEWORKS = {"torch": ("torch", "torch.nn.functional", "torch.fx.experimental.symbolic_shapes")}
FRAMEWORKS["torch-compile"] = FRAMEWORKS["torch"]
FRAMEWORKS["jax"] = ("jax", "jax.numpy", "optax")  # 1.8 s; jax starts its threads with its first computation
# Set to each worker's share of the cores, unless the user set them
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCHINDUCTOR_COMPILE_THREADS")

_server_started_with = None  # (modules, environment) of the fork server this module last arranged


def worker_context():
    """The multiprocessing context that starts a pool's workers: the fork server (start_server arranges and starts
    it), or spawn where there is none or this Python offers no way to stop one."""
    server = multiprocessing.forkserver._forkserver  # noqa: SLF001 -- the process's one server; no public handle
    usable = "forkserver" in multiprocessing.get_all_start_methods() and callable(getattr(server, "_stop", None))
    return multiprocessing.get_context("forkserver" if usable else "spawn")


def preload(spec):
    """The modules a worker for ``spec`` imports before its first case (the backend's framework for built-ins
    only: naming another backend's modules would mean importing them in the parent, which never imports one)."""
    return HARNESS + FRAMEWORKS.get(spec, ())


def thread_share(environment, threads):
    """``environment`` with each worker's share of the cores for the thread variables the user did not set:
    workers that each used every core slowed each other down, and so did inductor's compile pool (its default, a
    process per core in every worker, was 4-10% slower cold: docs/backends.md). numpy's BLAS and torch read
    them when they load, in the fork server: a server started without them ran every worker's BLAS on two
    threads (a cold run took 8-20% more CPU)."""
    return dict({variable: str(threads) for variable in THREAD_VARIABLES}, **environment)


def _server_importing(modules, environment):
    """Make the fork server one that imports ``modules`` in ``environment``: a running server of another kind is
    stopped (ensure_running then starts the wanted one; it starts it again, the same, if it died)."""
    global _server_started_with
    wanted = (modules, environment)
    if _server_started_with != wanted:
        multiprocessing.forkserver._forkserver._stop()  # noqa: SLF001 -- a no-op where none runs
        multiprocessing.forkserver.set_forkserver_preload(list(modules))
        _server_started_with = wanted


def start_server(context, spec, threads):
    """Start the fork server, if ``context`` uses one, importing what a worker for ``spec`` needs, in the
    environment with ``threads`` as the thread share (multiprocessing would start it in this process's own):
    before every worker start, since another pool of this process may have arranged another server since, and
    early, so that its imports overlap the caller's work. A no-op when that server is running."""
    if context.get_start_method() != "forkserver":
        return
    environment = thread_share(os.environ, threads)
    _server_importing(preload(spec), environment)
    added = {name: value for name, value in environment.items() if name not in os.environ}
    os.environ.update(added)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        for name in added:
            os.environ.pop(name, None)


def apply_thread_share(threads):
    """In a worker, before its backend loads: the thread variables of thread_share (a spawned worker has only
    its parent's environment)."""
    os.environ.update(thread_share(os.environ, threads))


@contextlib.contextmanager
def sigint_ignored():
    """SIGINT ignored while a worker process (or the fork server) starts: the ignored disposition is inherited
    across exec and fork, and Python then installs no KeyboardInterrupt handler, so a Ctrl-C during the start-up
    prints no traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
