"""Isolation: a backend that hangs, dies, raises or returns garbage fails only its own case, and the run goes on.

The backends are tiny torch.nn.functional-compatible modules written to a temporary directory, which is put on
sys.path and on PYTHONPATH (workers are fresh processes, not forks of the test process). Every run uses isolated workers (jobs=1).
"""
import contextlib
import json
import multiprocessing
import os
import textwrap
import time

import pytest

from conformance.backends import BackendLoadError, load_backend
from conformance.run.isolation import WorkerStartError
from conformance.run.session import RunOptions, Session

BACKENDS = {
    # cross_entropy hangs on every call, the dtype probe included
    "lc_test_sleepy": """
        import time
        import torch.nn.functional as F
        softmax = F.softmax
        def cross_entropy(*args, **kwargs):
            time.sleep(60)
            return F.cross_entropy(*args, **kwargs)
    """,
    # declares its dtypes, and records every call
    "lc_test_declared": """
        import torch.nn.functional as F
        SUPPORTED_DTYPES = ("float32",)
        CALLS = []
        def cross_entropy(*args, **kwargs):
            CALLS.append("cross_entropy")
            return F.cross_entropy(*args, **kwargs)
    """,
    "lc_test_dying": """
        import os
        import signal
        import torch.nn.functional as F
        softmax = F.softmax
        def cross_entropy(*args, **kwargs):
            os._exit(3)
        def nll_loss(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGSEGV)
    """,
    "lc_test_faulty": """
        import torch
        import torch.nn.functional as F
        def cross_entropy(*args, **kwargs):
            raise RuntimeError("kernel exploded: bad launch configuration (grid 0)")
        def nll_loss(input, target, **kwargs):
            return [float(v) for v in F.nll_loss(input, target, reduction="none", **{k: v for k, v in kwargs.items() if k != "reduction"})]
        def log_softmax(input, dim=None, **kwargs):
            return F.log_softmax(input, dim=dim).narrow(dim, 0, 1)
        def kl_div(input, target, **kwargs):
            if input.dtype == torch.float16:
                raise NotImplementedError("no float16 kernel yet")
            return F.kl_div(input, target, **kwargs).double()
    """,
    "lc_test_nothing": """
        VERSION = 1
    """,
    # says when its process's exit handlers run and when its modules are torn down
    "lc_test_exiting": """
        import atexit
        import os
        import torch.nn.functional as F
        softmax = F.softmax
        def _said(word):
            with open(os.environ["LC_TEST_EXIT_LOG"], "a") as log:
                log.write(word + "\\n")
        atexit.register(_said, "atexit")
        class _Teardown:  # finalised when the interpreter tears the modules down, by then without globals
            def __del__(self, _open=open, _path=os.environ["LC_TEST_EXIT_LOG"]):
                with _open(_path, "a") as log:
                    log.write("teardown\\n")
        keeper = _Teardown()
        keeper.cycle = keeper
        print("printed, unflushed", end="")
    """,
    # writes the thread settings its worker was started with
    "lc_test_threads": """
        import os
        import torch.nn.functional as F
        softmax = F.softmax
        with open(os.environ["LC_TEST_THREADS_LOG"], "w") as log:
            log.write(" ".join(os.environ.get(name, "-") for name in
                               ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCHINDUCTOR_COMPILE_THREADS")))
    """,
}

CASES = {
    "cross_entropy": """
        function: cross_entropy
        dtypes: [float32]
        cases:
          - id: first
            inputs: {input: {shape: [3, 4]}, target: {kind: index}}
    """,
    "softmax": """
        function: softmax
        dtypes: [float32]
        cases:
          - id: after
            kwargs: {dim: 1}
            inputs: {input: {shape: [3, 4]}}
    """,
    "nll_loss": """
        function: nll_loss
        dtypes: [float32]
        cases:
          - id: second
            kwargs: {reduction: sum}
            inputs: {input: {shape: [3, 4], transform: log_softmax}, target: {kind: index}}
    """,
    "log_softmax": """
        function: log_softmax
        dtypes: [float32]
        cases:
          - id: rows
            kwargs: {dim: 1}
            inputs: {input: {shape: [3, 4]}}
    """,
    "kl_div": """
        function: kl_div
        dtypes: [float32, float16]
        cases:
          - id: batchmean
            kwargs: {reduction: batchmean}
            inputs: {input: {shape: [3, 4], transform: log_softmax}, target: {kind: probabilities}}
    """,
}


@pytest.fixture(scope="module")
def backend_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("backends")
    for name, source in BACKENDS.items():
        (directory / f"{name}.py").write_text(textwrap.dedent(source))
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(directory))
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")])))
        yield directory


def write_cases(directory, functions):
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for function in functions:
        path = directory / f"{function}.yaml"
        path.write_text(textwrap.dedent(CASES[function]))
        paths.append(path)
    return tuple(paths)


def run(directory, backend, functions, timeout=60.0, jobs=1):
    """(records by full case id, wall seconds) of a run of one case per function, in the order given."""
    options = RunOptions(backend=backend, case_paths=write_cases(directory / "cases", functions), jobs=jobs,
                         timeout=timeout, cache_dir=directory / "cache", xfail_paths=())
    start = time.monotonic()
    records, _ = Session(options).run()
    by_case = {}
    for record in records:
        by_case.setdefault(record["case"], []).append(record)
    return by_case, time.monotonic() - start


def status_of(records, check):
    (record,) = [r for r in records if r["check"] == check]
    return record["status"], record.get("message", "")


def all_passed(records):
    return records and all(r["status"] == "passed" for r in records)


# --- hanging ------------------------------------------------------------------------------------------------------


def test_a_hanging_call_times_out_and_the_next_case_still_runs(backend_dir, tmp_path):
    # 5 s, not less: the first call of a fresh worker (a cold torch) must not time out on a loaded CI machine
    by_case, elapsed = run(tmp_path, "lc_test_sleepy", ["cross_entropy", "softmax"], timeout=5)
    (record,) = by_case["cross_entropy/first"]
    assert (record["check"], record["status"]) == ("call", "failed")
    assert record["message"] == "timed out: the backend did not return within 5 s"
    assert "--id cross_entropy/first --dtype float32" in record["reproduce"]
    assert all_passed(by_case["softmax/after"])  # in a fresh worker
    assert elapsed < 50  # the worker was killed, not waited for (every call sleeps 60 s)
    assert not multiprocessing.active_children()  # and no worker outlives the run


class RecordingNamespace:
    """A torch.nn.functional-compatible namespace noting the worker's reported state at each call."""

    def __init__(self, states):
        import torch.nn.functional as F

        self.states, self.calls, self.F = states, [], F

    def cross_entropy(self, *args, **kwargs):
        self.calls.append(self.states[-1] if self.states else "never reported")
        return self.F.cross_entropy(*args, **kwargs)


def test_every_backend_call_is_made_while_the_worker_reports_busy(tmp_path):
    """The dtype probe of TorchBackend.supports() is a backend call too: it must run under the timeout."""
    from conformance.backends.torch_backend import TorchBackend
    from conformance.corpus.casefile import load_file
    from conformance.verdict.checks import check_case
    from conformance.expected import OracleCache
    from conformance.verdict.tolerances import Tolerances

    states = []
    namespace = RecordingNamespace(states)
    backend = TorchBackend(namespace=namespace, name="recording")
    (case,) = load_file(write_cases(tmp_path, ["cross_entropy"])[0])
    context = {"spec": "recording", "device": "cpu"}
    records = [r for _, rs, _ in check_case(case, ["float32"], backend, OracleCache(None), Tolerances.load(), context,
                                            notify=states.append) for r in rs]
    assert all(r["status"] == "passed" for r in records)
    assert namespace.calls and set(namespace.calls) == {"busy"}, namespace.calls


def test_the_status_word_holds_each_state_and_its_time_to_the_millisecond():
    from conformance.run.isolation import _Status

    status = _Status(multiprocessing.get_context("spawn"))
    for state in _Status.STATES:
        before = time.monotonic()
        status.set(state)
        read, since = status.get()
        assert read == state and before - 1 / 1024 <= since <= time.monotonic()


def test_a_status_word_written_before_the_case_was_sent_does_not_count_for_it():
    """The last word of a worker's previous case must not start (or time out) the next one."""
    from conformance.run.isolation import _Status, _Worker

    worker = _Worker.__new__(_Worker)  # its status alone: no process
    worker.status = _Status(multiprocessing.get_context("spawn"))
    worker.status.set("busy")
    worker.dispatched_at = _Status.stamp(time.monotonic() + 1)
    assert worker.state() == ("working", worker.dispatched_at)
    worker.dispatched_at = _Status.stamp(time.monotonic() - 1)
    assert worker.state()[0] == "busy"


def test_workers_started_early_are_stopped_when_the_cases_do_not_load(tmp_path):
    from conformance.corpus.casefile import CaseFileError

    broken = tmp_path / "broken.yaml"
    broken.write_text("function: cross_entropy\ncases: [\n")
    with pytest.raises(CaseFileError):
        Session(RunOptions(case_paths=(broken,), jobs=2, cache_dir=None), start_workers=True)
    assert not multiprocessing.active_children()


def test_workers_launched_beyond_the_work_are_stopped_when_it_starts(tmp_path):
    (path,) = write_cases(tmp_path, ["softmax"])
    session = Session(RunOptions(case_paths=(path,), jobs=2, cache_dir=None, xfail_paths=()), start_workers=True)
    try:
        # both launched while the case loaded (a thread awaits the fork server: they appear as it forks them)
        deadline = time.monotonic() + 120
        while len(multiprocessing.active_children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(multiprocessing.active_children()) == 2
        alive = []
        records, _ = session.run(lambda result: alive.append(len(multiprocessing.active_children())))
        assert records and all(r["status"] == "passed" for r in records)
        assert alive == [1]  # one pair: one worker is enough, the other was stopped
    finally:
        session.runner.close()
    assert not multiprocessing.active_children()


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(), reason="workers are spawned here")
def test_a_worker_the_fork_server_cannot_start_is_a_start_error(tmp_path, monkeypatch):
    """Workers launched early start in a thread (each start waits for the fork server's imports): a start that
    fails there is reported when the workers are awaited, as a start error, and nothing is left running."""
    from conformance.run import isolation

    def refused(*_):
        raise ConnectionRefusedError("the server is gone")

    monkeypatch.setattr(isolation, "_Worker", refused)
    (path,) = write_cases(tmp_path, ["softmax"])
    session = Session(RunOptions(case_paths=(path,), jobs=2, cache_dir=None, xfail_paths=()), start_workers=True)
    with pytest.raises(WorkerStartError, match="could not be started: ConnectionRefusedError: the server is gone"):
        session.open()
    session.runner.close()
    assert not multiprocessing.active_children()


def test_starting_torch_workers_does_not_import_torch_in_the_parent(tmp_path):
    """The parent unpickles what a worker says: a torch object in it (torch.__version__ is a TorchVersion) would
    import torch there, 0.9 s of every run. The backend's description reaches the parent as plain JSON types."""
    script = textwrap.dedent("""
        import sys
        from conformance.run.isolation import WorkerPool
        if __name__ == "__main__":
            pool = WorkerPool("torch", "cpu", None, None, {"spec": "torch", "device": "cpu"}, jobs=1)
            pool.open()
            print(type(pool.backend_description["version"]).__name__, "torch" in sys.modules)
            pool.close()
    """)
    (tmp_path / "parent.py").write_text(script)
    import subprocess
    import sys

    output = subprocess.run([sys.executable, str(tmp_path / "parent.py")], capture_output=True, text=True,
                            timeout=300, check=True).stdout
    assert output.split() == ["str", "False"]


def test_a_worker_asked_to_stop_runs_its_exit_handlers_and_skips_the_interpreter_teardown(backend_dir, tmp_path,
                                                                                      monkeypatch, capfd):
    """Unloading torch's modules took 0.35-0.45 s of every run's end; a stopped worker leaves without it, but
    still runs what atexit holds (a library's pool, coverage's data) and flushes what it printed."""
    log = tmp_path / "exit.log"
    monkeypatch.setenv("LC_TEST_EXIT_LOG", str(log))
    by_case, _ = run(tmp_path, "lc_test_exiting", ["softmax"])
    assert all_passed(by_case["softmax/after"])
    assert log.read_text().split() == ["atexit"]  # the handler ran; module teardown (the __del__) did not
    assert "printed, unflushed" in capfd.readouterr().out


@pytest.mark.parametrize("preset", [None, "3"])
def test_a_worker_uses_its_share_of_the_cores_for_threads_and_inductor_compiles(backend_dir, tmp_path, monkeypatch,
                                                                              preset):
    """Each worker's torch threads and inductor compile pool are its share of the cores (one each with as many
    workers as cores: inductor's default pool, a process per core in every worker, was 4-10% slower cold); a value
    the user set is kept."""
    log = tmp_path / "threads.log"
    monkeypatch.setenv("LC_TEST_THREADS_LOG", str(log))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCHINDUCTOR_COMPILE_THREADS"):
        monkeypatch.delenv(name, raising=False)
    if preset:
        monkeypatch.setenv("TORCHINDUCTOR_COMPILE_THREADS", preset)
    by_case, _ = run(tmp_path, "lc_test_threads", ["softmax"], jobs=2)
    assert all_passed(by_case["softmax/after"])
    share = str(max(1, (os.cpu_count() or 1) // 2))
    assert log.read_text().split() == [share, share, preset or share]


def test_a_namespace_declaring_its_dtypes_is_not_probed(backend_dir):
    import lc_test_declared

    from conformance.backends import Call

    backend = load_backend("lc_test_declared")
    assert "float32" in backend.capabilities.dtypes and "float16" not in backend.capabilities.dtypes
    assert backend.supports(Call("cross_entropy", "float32", {}, {})) is None
    assert lc_test_declared.CALLS == []


# --- dying --------------------------------------------------------------------------------------------------------


def test_a_backend_that_kills_its_process_fails_that_case_and_the_run_goes_on(backend_dir, tmp_path):
    by_case, _ = run(tmp_path, "lc_test_dying", ["cross_entropy", "nll_loss", "softmax"])
    (exited,) = by_case["cross_entropy/first"]
    assert (exited["check"], exited["status"]) == ("call", "failed")
    assert "died" in exited["message"] and "exit code 3" in exited["message"]
    (crashed,) = by_case["nll_loss/second"]
    assert crashed["status"] == "failed" and "died" in crashed["message"] and "exit code -11" in crashed["message"]
    assert all_passed(by_case["softmax/after"])
    assert not multiprocessing.active_children()


# --- misbehaving without crashing: one run, several cases -----------------------------------------------------------


@pytest.fixture(scope="module")
def faulty_run(backend_dir, tmp_path_factory):
    """One run shared by the tests below; under pytest-xdist, shared by the workers too (run once, under a lock)."""
    functions = ["cross_entropy", "nll_loss", "log_softmax", "kl_div", "softmax"]
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return run(tmp_path_factory.mktemp("faulty"), "lc_test_faulty", functions)[0]
    shared = tmp_path_factory.getbasetemp().parent  # the same directory for every worker of this pytest run
    try:
        from filelock import FileLock
    except ImportError:  # then each worker runs it: slower, not wrong
        lock = contextlib.nullcontext()
    else:
        lock = FileLock(str(shared / "faulty_run.lock"))
    with lock:
        stored = shared / "faulty_run.json"
        if not stored.exists():
            stored.write_text(json.dumps(run(shared / "faulty_run", "lc_test_faulty", functions)[0]))
        return json.loads(stored.read_text())


def test_a_raising_backend_fails_the_call_check_with_its_message(faulty_run):
    records = faulty_run["cross_entropy/first"]
    status, message = status_of(records, "call")
    assert status == "failed"
    assert message == ("raised RuntimeError: kernel exploded: bad launch configuration (grid 0), "
                       "but should return a value")
    assert [r["check"] for r in records] == ["call", "inputs.unchanged"]  # no value is compared


def test_a_backend_returning_a_list_fails_the_call_check_clearly(faulty_run):
    status, message = status_of(faulty_run["nll_loss/second"], "call")
    assert status == "failed" and "returned list, not a torch.Tensor" in message


def test_a_backend_returning_the_wrong_shape_fails_the_shape_check(faulty_run):
    records = faulty_run["log_softmax/rows"]
    assert status_of(records, "call")[0] == "passed"
    status, message = status_of(records, "shape")
    assert status == "failed" and message == "shape (3, 1), but should be (3, 4)"
    assert status_of(records, "value") == ("skipped", "not compared: the shape differs and so does the number of "
                                                      "elements (see the shape check)")


def test_a_backend_returning_the_wrong_dtype_fails_the_dtype_check(faulty_run):
    records = [r for r in faulty_run["kl_div/batchmean"] if r["dtype"] == "float32"]
    status, message = status_of(records, "dtype")
    assert status == "failed" and message == "dtype float64, but should be float32"


def test_a_dtype_whose_probe_raises_not_implemented_error_is_skipped(faulty_run):
    records = [r for r in faulty_run["kl_div/batchmean"] if r["dtype"] == "float16"]
    status, message = status_of(records, "call")
    assert status == "skipped" and "float16" in message


def test_a_backend_lacking_a_function_is_skipped_with_a_reason_naming_it(faulty_run):
    (record,) = faulty_run["softmax/after"]
    assert (record["check"], record["status"]) == ("call", "skipped")
    assert "'softmax'" in record["message"] and "lc_test_faulty" in record["message"]


# --- backends that cannot be loaded -------------------------------------------------------------------------------


def test_an_unimportable_backend_is_a_worker_start_error_naming_the_module(backend_dir, tmp_path):
    with pytest.raises(WorkerStartError) as info:
        run(tmp_path, "lc_test_no_such_module", ["softmax"])
    message = str(info.value)
    assert message.startswith("BackendLoadError: ") and "cannot import module 'lc_test_no_such_module'" in message


def test_a_spec_that_is_no_module_path_lists_the_accepted_forms(backend_dir, tmp_path):
    with pytest.raises(WorkerStartError) as info:
        run(tmp_path, "not a backend!", ["softmax"])
    message = str(info.value)
    assert "'torch'" in message and "'torch-compile'" in message and "entry point" in message
    assert "module.path[:attr]" in message


def test_a_module_offering_no_function_lists_the_functions_it_should_offer(backend_dir):
    with pytest.raises(BackendLoadError) as info:
        load_backend("lc_test_nothing")
    message = str(info.value)
    assert "softmax, log_softmax, nll_loss, cross_entropy, kl_div" in message and "Backend protocol" in message


def test_a_missing_attribute_names_the_module_and_attribute(backend_dir):
    with pytest.raises(BackendLoadError, match="module 'lc_test_faulty' has no attribute 'nope'"):
        load_backend("lc_test_faulty:nope")


def test_an_unimportable_spec_says_what_would_be_accepted(backend_dir):
    with pytest.raises(BackendLoadError) as info:
        load_backend("torch_compile")  # a plausible typo of torch-compile
    message = str(info.value)
    assert "'torch-compile'" in message and "entry point" in message


def test_cuda_cases_skip_with_a_reason_where_there_is_no_gpu(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the skip path is not reachable here")
    case_file = tmp_path / "softmax.yaml"
    case_file.write_text("function: softmax\ncases:\n  - id: a\n    kwargs: {dim: 1}\n"
                         "    inputs: {input: {shape: [2, 3]}}\n")
    options = RunOptions(device="cuda", jobs=0, case_paths=(case_file,), cache_dir=tmp_path / "cache",
                         xfail_paths=())
    records, _ = Session(options).run()
    assert records and all(r["status"] == "skipped" for r in records)
    assert all("CUDA is not available" in r["message"] for r in records)
