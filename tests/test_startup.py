"""How workers start (conformance/run/startup.py): forked from a fork server that imported torch once for the
built-in torch backends, told their thread share afterwards, and always in the environment their pool started in."""
import multiprocessing
import os
import sys

import pytest

from conformance.run import startup

pytestmark = pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(),
                                reason="no fork server on this platform: workers are spawned")


def _report(connection):
    """In the worker: what it found imported when it started, its thread settings, and a variable of the test."""
    found = {name: name in sys.modules for name in ("torch", "sympy", "jax")}
    import torch

    threads = (os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads())
    connection.send((found, threads, os.environ.get("LC_TEST_STARTUP")))
    connection.close()


def _start_and_hear(spec, threads=1, context=None):
    """Start a worker as the pool does (the server first, in the main thread); what it reports."""
    context = context or startup.worker_context()
    startup.start_server(context, spec, threads)
    ours, theirs = context.Pipe()
    process = context.Process(target=_report, args=(theirs,))
    process.start()
    theirs.close()
    try:
        return context.get_start_method(), ours.recv()
    finally:
        process.join(timeout=60)


def test_a_torch_worker_starts_with_torch_imported_on_its_share_of_the_cores(monkeypatch):
    """The fork server imported torch (and the sympy its first autograd call needs) before the worker was forked,
    with the worker's thread share in its environment: torch and numpy's BLAS read it when they load, so a server
    started without it ran every worker on all the cores."""
    for name in startup.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    method, (found, threads, _) = _start_and_hear("torch", threads=1)
    assert method == "forkserver"
    assert found == {"torch": True, "sympy": True, "jax": False}
    assert threads == ("1", 1)
    assert "OMP_NUM_THREADS" not in os.environ  # the parent's own environment is left as it was


def test_another_backend_is_not_given_torch():
    """Only the built-in torch backends have torch imported for them: a worker of another framework would carry
    torch's import for nothing (and the parent never imports a backend's module to find out)."""
    _, (found, _, _) = _start_and_hear("lc_some.namespace")
    assert found == {"torch": False, "sympy": False, "jax": False}


def test_a_jax_worker_starts_with_jax_imported():
    """jax's import (1.8 s) starts no thread and no backend (those come with its first computation): the server
    imports it for the jax adapter."""
    pytest.importorskip("jax")
    _, (found, _, _) = _start_and_hear("jax")
    assert found == {"torch": False, "sympy": False, "jax": True}


def test_a_worker_sees_the_environment_its_pool_started_in(monkeypatch):
    """The server is one per process and hands its environment to every worker it forks: when the environment has
    changed since it started (a test, a plugin session), it is started afresh, as a spawned worker would see it."""
    monkeypatch.setenv("LC_TEST_STARTUP", "first")
    assert _start_and_hear("torch")[1][2] == "first"
    monkeypatch.setenv("LC_TEST_STARTUP", "second")
    assert _start_and_hear("torch")[1][2] == "second"
    monkeypatch.delenv("LC_TEST_STARTUP")
    assert _start_and_hear("torch")[1][2] is None


def test_a_pool_starts_its_workers_from_its_own_server_after_another_pool_arranged_one():
    """Two pools in one process (a plugin session checking two backends): each worker start asks for its pool's
    server again, so a torch pool does not fork its next worker from the server another pool arranged since."""
    torch_context = startup.worker_context()
    _start_and_hear("lc_another.namespace")
    _, (found, _, _) = _start_and_hear("torch", context=torch_context)
    assert found["torch"]
