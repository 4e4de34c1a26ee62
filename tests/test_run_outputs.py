"""What `run` writes besides the terminal: the streamed JSON and --resume, JUnit XML and the Markdown summary."""
import json
import xml.etree.ElementTree as ET

import pytest
from case_texts import SOFTMAX, SOFTMAX_PAIRS

from conformance.backends import load_backend
from conformance.cli import main
from conformance.report.journal import Journal, journal_path, run_key
from conformance.run.session import RunOptions

PAIRS = SOFTMAX_PAIRS
BROKEN = """\
import os

import torch

class Namespace:  # softmax that is 1 % off in float32, and right in float64
    @staticmethod
    def softmax(input, dim=None, **kwargs):
        return torch.softmax(input, dim) * (1.01 if input.dtype == torch.float32 else 1.0)


class Interrupted:  # a user pressing Ctrl-C once the rows case is done, in the columns case
    @staticmethod
    def softmax(input, dim=None, **kwargs):
        if os.environ.get("LC_TEST_INTERRUPT") and dim == 0 and tuple(input.shape) == (3, 4):
            raise KeyboardInterrupt
        return torch.softmax(input, dim)
"""
XFAILS = """\
entries:
  - id: "softmax/columns"
    dtypes: [float32]
    checks: ["value", "grad_input.value"]
    reason: "a deviation declared for this test"
    spec: "docs/spec-notes.md#test"
"""


@pytest.fixture
def files(tmp_path, monkeypatch):
    (tmp_path / "softmax.yaml").write_text(SOFTMAX)
    (tmp_path / "xfails.yaml").write_text(XFAILS)
    (tmp_path / "lc_outputs_backend.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def run(capsys, files, *extra, backend="torch"):
    """(status, stdout, stderr) of `run` in-process; the broken backend runs with its declared deviation."""
    xfails = [files / "xfails.yaml"] if backend.endswith(":Namespace") else []
    argv = ["run", "--cases", files / "softmax.yaml", "--jobs", "0", "--cache-dir", files / "cache", "--quiet",
            "--backend", backend, "--xfails", *xfails, *extra]
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def pairs_of(document):
    return list(dict.fromkeys((r["case"], r["dtype"]) for r in document["results"]))


def without_timings(document):
    return {key: value for key, value in document.items() if key not in ("timings", "environment")}


# --- streaming and --resume ---------------------------------------------------------------------------------------


def test_a_complete_run_leaves_only_the_results_in_selection_order(capsys, files):
    status, _, _ = run(capsys, files, "--json", files / "out" / "r.json")
    assert status == 0
    assert [p.name for p in (files / "out").iterdir()] == ["r.json"]  # the journal is gone
    assert pairs_of(json.loads((files / "out" / "r.json").read_text())) == PAIRS


def test_an_interrupted_run_keeps_the_finished_pairs_and_resume_completes_it(capsys, files, monkeypatch):
    report = files / "r.json"
    monkeypatch.setenv("LC_TEST_INTERRUPT", "1")
    status, _, err = run(capsys, files, "--json", report, backend="lc_outputs_backend:Interrupted")
    assert status == 130 and "--resume" in err and not report.exists()
    lines = journal_path(report).read_text().splitlines()
    assert len(lines) == 1 + 2  # the header, then the two pairs of the rows case
    monkeypatch.delenv("LC_TEST_INTERRUPT")
    status, out, _ = run(capsys, files, "--json", report, "--resume", backend="lc_outputs_backend:Interrupted")
    assert status == 0 and "2 pairs kept from the earlier run" in out
    resumed = json.loads(report.read_text())
    assert resumed["timings"]["resumed_pairs"] == 2 and not journal_path(report).exists()
    status, _, _ = run(capsys, files, "--json", files / "fresh.json", backend="lc_outputs_backend:Interrupted")
    assert without_timings(resumed) == without_timings(json.loads((files / "fresh.json").read_text()))


def test_resume_ignores_a_last_line_cut_short(capsys, files):
    report = files / "r.json"
    options = RunOptions(backend="torch", cache_dir=files / "cache")
    key = run_key(options, load_backend("torch").describe())
    journal = Journal(journal_path(report), key).open(keep_existing=False)
    run(capsys, files, "--json", files / "full.json")
    full = json.loads((files / "full.json").read_text())
    first = [r for r in full["results"] if (r["case"], r["dtype"]) == PAIRS[0]]
    journal.append(*PAIRS[0], first, {})
    journal.close(remove=False)
    with open(journal_path(report), "a") as file:
        file.write('{"case": "softmax/rows", "dtype": "float32", "records": [{"ca')  # killed mid-write
    status, out, _ = run(capsys, files, "--json", report, "--resume")
    assert status == 0 and "1 pairs kept" in out
    assert pairs_of(json.loads(report.read_text())) == PAIRS


def test_resume_of_a_complete_results_file_runs_nothing_again(capsys, files):
    report = files / "r.json"
    run(capsys, files, "--json", report)
    status, out, _ = run(capsys, files, "--json", report, "--resume")
    assert status == 0 and f"{len(PAIRS)} pairs kept" in out
    assert pairs_of(json.loads(report.read_text())) == PAIRS


def test_resume_refuses_results_of_another_backend(capsys, files):
    report = files / "r.json"
    run(capsys, files, "--json", report, backend="lc_outputs_backend:Namespace")
    status, _, err = run(capsys, files, "--json", report, "--resume")
    assert status == 2 and "another configuration" in err and str(report) in err


def test_resume_needs_json(capsys, files):
    status, _, err = run(capsys, files, "--resume")
    assert status == 2 and "give --json" in err


# --- JUnit and Markdown -------------------------------------------------------------------------------------------


def test_junit_has_a_testcase_per_pair_with_failures_and_declared_deviations(capsys, files):
    status, _, _ = run(capsys, files, "--junit", files / "j.xml", backend="lc_outputs_backend:Namespace")
    assert status == 1
    root = ET.parse(files / "j.xml").getroot()
    (suite,) = root.findall("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == {f"{case.partition('/')[2]}[{dtype}]" for case, dtype in PAIRS}
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == (str(len(PAIRS)), "2", "0")  # rows, forward-only
    failure = cases["rows[float32]"].find("failure")
    assert failure.get("type") == "value" and "Bad results (12 out of 12)" in failure.text
    assert "reproduce: loss-conformance run --backend lc_outputs_backend:Namespace" in failure.text
    assert cases["columns[float32]"].find("failure") is None  # its value check is a declared deviation
    assert "a deviation declared for this test" in cases["columns[float32]"].find("system-out").text
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["device"] == "cpu" and properties["torch_version"].startswith("2.")


def test_markdown_says_the_verdict_the_table_the_failures_and_the_deviations(capsys, files):
    run(capsys, files, "--markdown", files / "s.md", backend="lc_outputs_backend:Namespace")
    text = (files / "s.md").read_text()
    assert text.startswith("# loss-conformance: ")
    assert "**FAILED**: " in text and "2 xfailed" in text
    assert "| softmax | float32 | " in text and "| softmax | float64 | " in text
    assert "| 2 | softmax | value | error over budget in float32 |" in text  # the 1 % error, grouped
    assert "<summary>2 x softmax value: error over budget in float32</summary>" in text
    assert "- `softmax/rows` [float32] failed" in text
    assert "reproduce: `loss-conformance run --backend lc_outputs_backend:Namespace" in text
    assert "| 2 | a deviation declared for this test | docs/spec-notes.md#test |" in text


def test_markdown_of_a_conforming_run_says_passed(capsys, files):
    status, _, _ = run(capsys, files, "--markdown", files / "s.md")
    assert status == 0
    text = (files / "s.md").read_text()
    assert "**PASSED**: " in text and "## Failures" not in text


# --- reports/produce.sh -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["--help"]])
def test_the_version_report_script_says_its_usage(argv):
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "reports" / "produce.sh"
    result = subprocess.run(["bash", str(script), *argv], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stderr.startswith("usage: reports/produce.sh TORCH_VERSION")


def test_stale_xfail_entries_are_counted_in_one_line_when_cases_are_given(capsys, files):
    (files / "more.yaml").write_text(XFAILS.replace("softmax/columns", "kl_div/never"))
    argv = ["run", "--cases", files / "softmax.yaml", "--jobs", "0", "--cache-dir", files / "cache", "--quiet",
            "--xfails", files / "more.yaml", "--not-strict"]
    main([str(a) for a in argv])
    _, err = capsys.readouterr()
    assert err.splitlines() == ["warning: 1 of 1 xfail entries match no case of the files given to --cases"]
