"""Vocab-parallel cross-entropy on torch.distributed (docs/vocab-parallel.md): the shards, the reference at R = 1 to
4 in both shardings, every vocab-parallel mutant killed, and a world that hangs, dies or disagrees failing its case
only. Ranks run on gloo, each a process of its own: the subset is small (the whole cross_entropy corpus at R = 2
takes about 25 s on 2 cores; tests/test_vocab_parallel runs a fifth of it)."""
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conformance.backends.distributed.backend import assemble
from conformance.backends.distributed.contract import ShardingError, keyword_arguments, plan
from conformance.backends.distributed.world import RankFailure
from conformance.mutants.score import _first_failure
from conformance.mutants.vocab_parallel import CATALOG
from conformance.run.session import RunOptions, Session
from conformance.verdict.results import FAILING

pytest.importorskip("torch.distributed")
SUBSET = "ncd1 or pairwise or ls=0.1"  # k-dim inputs, ignore_index, weights, smoothing, every reduction


@pytest.fixture(scope="module")
def options(tmp_path_factory):
    return RunOptions(functions=("cross_entropy",), keyword=SUBSET, jobs=0, world_size=2,
                      cache_dir=tmp_path_factory.getbasetemp().parent / "oracle-cache")


def _records(options):
    records, _ = Session(options).run()
    return records


def _failures(records):
    return [f"{r['case']} [{r['dtype']}] {r['check']}: {r.get('message', '')[:200]}" for r in records
            if r["status"] in FAILING]


def test_the_shards_cover_the_vocabulary_once():
    for vocab_size in (2, 5, 7, 1025):
        for world_size in (1, 2, 3, 4):
            if vocab_size < world_size:
                continue
            uneven = plan(vocab_size, world_size, "uneven")
            assert [s.start for s in uneven[1:]] == [s.stop for s in uneven[:-1]]
            assert uneven[-1].stop == vocab_size and all(s.padding == 0 and s.classes >= 1 for s in uneven)
            assert max(s.width for s in uneven) - min(s.width for s in uneven) <= 1
            padded = plan(vocab_size, world_size, "padded")
            assert len({s.width for s in padded}) == 1 and padded[-1].stop == vocab_size
            assert sum(s.classes for s in padded) == vocab_size
    assert [s.classes for s in plan(5, 4, "padded")] == [2, 2, 1, 0]  # a rank of padding only
    with pytest.raises(ShardingError):
        plan(3, 4, "uneven")


def test_megatron_smoothing_is_torch_smoothing_restated():
    arguments = keyword_arguments({"label_smoothing": 0.1}, 5, "megatron")
    assert arguments["label_smoothing"] == pytest.approx(0.1 * 4 / 5)  # alpha = epsilon (V - 1) / V
    assert keyword_arguments({"label_smoothing": 0.1}, 5, "torch")["label_smoothing"] == 0.1
    with pytest.raises(ShardingError, match="softcap"):
        keyword_arguments({"softcap": 30.0}, 5, "torch")


@pytest.mark.parametrize("world_size,sharding", [(1, "uneven"), (2, "uneven"), (3, "uneven"), (4, "uneven"),
                                                 (3, "padded"), (4, "padded")])
def test_the_reference_passes_on_every_world(world_size, sharding, options):
    records = _records(replace(options, backend="reference", world_size=world_size, sharding=sharding))
    ran = sum(r["status"] == "passed" for r in records)
    assert ran > 2000, f"only {ran} checks passed"
    assert not _failures(records), "\n".join(_failures(records)[:10])


def test_the_megatron_convention_reference_passes(options):
    records = _records(replace(options, backend="reference-megatron", world_size=3))
    assert not _failures(records), "\n".join(_failures(records)[:10])


@pytest.mark.parametrize("name", list(CATALOG))
def test_every_vocab_parallel_mutant_is_killed(name, options):
    mutant = CATALOG[name]
    mutant_options = replace(options, backend=f"conformance.mutants.vocab_parallel:{mutant.__name__}",
                             sharding=mutant.sharding_needed, world_size=3, xfail_paths=())
    failure, checks = _first_failure(mutant_options)
    assert failure is not None, f"{name} ({mutant.__doc__.strip()}) survived {checks} checks"


def _stray_ranks(mark):
    """The rank processes whose environment carries ``mark`` (ranks inherit the test's environment): this test's
    only, not those of a test running beside it in another xdist worker."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            command = (environ.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "conformance.backends.distributed.rank" in command and mark.encode() in environ.read_bytes():
                parent = (environ.parent / "stat").read_text().split(") ")[1].split()[1]
                found.append(f"pid {environ.parent.name} (parent {parent}): {command}")
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


@pytest.mark.parametrize("jobs", [0, 1])
@pytest.mark.parametrize("fault,words", [("HungRank", "did not answer within 5 s"), ("DeadRank", "rank 1 died")])
def test_a_hung_or_dead_rank_fails_its_case_and_the_run_goes_on(fault, words, jobs, options, tmp_path,
                                                                 monkeypatch):
    mark = f"{fault}-{jobs}-{time.time_ns()}"
    monkeypatch.setenv("LOSS_CONFORMANCE_TEST_MARK", mark)
    cases = tmp_path / "few.yaml"
    cases.write_text("function: cross_entropy\ncases:\n" + "".join(
        f"  - id: {reduction}-{n}\n    kwargs: {{reduction: {reduction}}}\n    inputs:\n"
        f"      input: {{shape: [3, {5 + n}]}}\n      target: {{kind: index}}\n"
        for n, reduction in enumerate(["sum", "mean", "sum", "none"])))
    start = time.monotonic()
    records = _records(replace(options, backend=f"conformance.mutants.vocab_parallel:{fault}", keyword="",
                               case_paths=(cases,), dtypes=("float32",), timeout=10.0, jobs=jobs))
    failed = {r["case"] for r in records if r["status"] == "failed"}
    assert failed == {"cross_entropy/sum-0", "cross_entropy/sum-2"}
    assert all(words in r["message"] for r in records if r["status"] == "failed")
    assert {r["case"] for r in records if r["status"] == "passed"} >= {"cross_entropy/mean-1", "cross_entropy/none-3"}
    assert time.monotonic() - start < 60
    if Path("/proc").is_dir():  # an orphaned rank notices its coordinator's death within 0.5 s
        deadline = time.monotonic() + 5
        while _stray_ranks(f"LOSS_CONFORMANCE_TEST_MARK={mark}") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _stray_ranks(f"LOSS_CONFORMANCE_TEST_MARK={mark}")


def _reply(value, error=None, grad=None, padding=None):
    return {"unsupported": None, "error": error, "grad_error": None, "value": np.asarray(value, float),
            "dtype": "float32", "grad": grad, "padding_grad": padding, "grad_dtype": "float32", "modified": []}


def test_ranks_that_disagree_fail_the_call_even_where_an_error_is_expected():
    with pytest.raises(RankFailure, match="rank 1's value"):
        assemble([_reply([1.0]), _reply([1.5])], 2, False)
    with pytest.raises(RankFailure, match="rank 0 raised, rank 1 returned a value"):
        assemble([_reply(0.0, error=("IndexError", "out of bounds")), _reply([1.0])], 2, False)
    from conformance.verdict.checks import _error_case_checks

    class Case:
        expect_error = "TargetOutOfRangeError"

    class Expected:
        error = "TargetOutOfRangeError"

    from conformance.backends import Outcome

    for breakdown in ("RankFailure", "WorldError"):
        (check,) = _error_case_checks(Case, Expected, Outcome(error=(breakdown, "rank 1 died")))
        assert check.status == "failed" and "broke down" in check.message


def test_padding_gets_no_gradient_where_the_row_is_finite():
    grad = np.array([[0.1, -0.1]])
    outcome = assemble([_reply([1.0], grad=grad[:, :1], padding=np.zeros((1, 1))),
                        _reply([1.0], grad=grad[:, 1:], padding=np.array([[0.5]]))], 2, True)
    assert outcome.grad_error[0] == "PaddingGradient" and "rank 1" in outcome.grad_error[1]
    nan_row = np.array([[np.nan]])
    outcome = assemble([_reply([1.0], grad=nan_row, padding=np.array([[np.nan]])),
                        _reply([1.0], grad=nan_row, padding=np.array([[np.nan]]))], 2, True)
    assert outcome.grad_error is None and outcome.grads["input"].shape == (1, 2)


def test_ranks_launched_by_torchrun_join_a_listening_coordinator(options, tmp_path, monkeypatch):
    import secrets
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    key = secrets.token_hex(16)
    monkeypatch.setenv("LOSS_CONFORMANCE_AUTHKEY", key)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "conformance.backends.distributed.rank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**__import__("os").environ, "LOSS_CONFORMANCE_COORDINATOR": f"127.0.0.1:{port}"})
    try:
        records = _records(replace(options, backend="reference", keyword="pairwise",
                                   rank_listen=f"127.0.0.1:{port}"))
        assert launcher.wait(timeout=60) == 0  # the ranks stop when the run ends
    finally:
        launcher.kill()
    assert sum(r["status"] == "passed" for r in records) > 50 and not _failures(records)
