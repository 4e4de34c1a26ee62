"""How worker processes start: forked from multiprocessing's fork server, which has imported the harness and, for
the built-in torch backends, torch, once for the whole run.

Spawned afresh, every worker imported them itself (torch alone takes 0.7-2 s of CPU, and its first autograd call
imports sympy), while the parent loaded the cases on the same cores. The fork server is a fresh interpreter (not a
copy of the parent, which may hold threads or CUDA); what it imports starts no thread of its own (numpy's BLAS
pool shuts itself down around a fork) and does not initialise CUDA, so forking it is safe. Measured on a warm
default run, 2 cores, alternating: docs/architecture.md.

multiprocessing keeps one fork server per process. A worker must see the environment its pool started in, as a
spawned one does (a test or a plugin session may change it between runs), and the server's imports read it: so the
server is started afresh when a pool wants other modules or the environment has changed since it started.
Where there is no fork server (Windows), or this Python offers no way to stop one, workers are spawned.
"""
import multiprocessing
import multiprocessing.forkserver
import os
import sys

# Imported by every worker before its first case: the harness (the worker's own module pulls in the rest)
HARNESS = ("__main__", "conformance.run.isolation")
# What the built-in torch backends import besides: torch, and what torch.autograd.grad imports on its first
# call (symbolic shapes and sympy: 0.36 s on a fast machine). Not inductor: it may start a compile pool.
FRAMEWORKS = {"torch": ("torch", "torch.nn.functional", "torch.fx.experimental.symbolic_shapes")}
FRAMEWORKS["torch-compile"] = FRAMEWORKS["torch"]
# Set to each worker's share of the cores, unless the user set them
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCHINDUCTOR_COMPILE_THREADS")

_server_started_with = None  # (modules, environment) of the fork server this module last started


def worker_context(spec):
    """The multiprocessing context that starts a pool's workers for the backend ``spec``: a fork server that has
    imported what such a worker needs, or spawn where that is not available."""
    if "forkserver" not in multiprocessing.get_all_start_methods() or not _server_importing(preload(spec)):
        return multiprocessing.get_context("spawn")
    return multiprocessing.get_context("forkserver")


def preload(spec):
    """The modules a worker for ``spec`` imports before its first case (the backend's framework for built-ins
    only: naming another backend's modules would mean importing them in the parent, which never imports one)."""
    return HARNESS + FRAMEWORKS.get(spec, ())


def _server_importing(modules):
    """Arrange for the fork server to be one that imports ``modules`` in the current environment (started on the
    next worker start); False where a running server of another kind cannot be stopped."""
    global _server_started_with
    wanted = (modules, dict(os.environ))
    if _server_started_with == wanted:
        return True  # the same server (multiprocessing starts it again with the same modules if it died)
    server = multiprocessing.forkserver._forkserver  # noqa: SLF001 -- the process's one server; no public handle
    if getattr(server, "_forkserver_pid", None) is not None:
        stop = getattr(server, "_stop", None)
        if stop is None:
            return False
        stop()
    multiprocessing.forkserver.set_forkserver_preload(list(modules))
    _server_started_with = wanted
    return True


def apply_thread_share(threads):
    """In a worker, before its backend loads: each worker computes with its share of the cores (workers that each
    used every core slowed each other down), and so does inductor's compile pool (its default, a process per core
    in every worker, was 4-10% slower cold: docs/backends.md). A value the user set is kept. torch, when the fork
    server imported it, read OMP_NUM_THREADS then, so it is told again."""
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, str(threads))
    torch = sys.modules.get("torch")
    if torch is not None and os.environ["OMP_NUM_THREADS"].isdigit():
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))


def start_server(context):
    """Start the fork server now, if ``context`` uses one, so that its imports overlap the caller's work."""
    if context.get_start_method() == "forkserver":
        multiprocessing.forkserver.ensure_running()
