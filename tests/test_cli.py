"""The command line: `cases` and `run`, their exit statuses (0 / 1 / 2), the JSON report and the oracle cache."""
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from case_texts import SOFTMAX, SOFTMAX_CASES, SOFTMAX_PAIRS

from conformance.cli import main
from conformance.expected import ENTRY_SUFFIX

NLL = """\
function: nll_loss
dtypes: [float32]
cases:
  - id: oob
    expect: {error: TargetOutOfRangeError}
    tags: [extreme]
    inputs: {input: {shape: [3, 4]}, target: {kind: index, out_of_range: high}}
"""
BROKEN = """\
import torch


class Namespace:  # softmax that is 1 % off
    @staticmethod
    def softmax(input, dim=None, **kwargs):
        return torch.softmax(input, dim) * 1.01
"""
PAIRS = len(SOFTMAX_PAIRS)  # every softmax case but huge (opt-in), in float64 and float32
CACHE_LINE = re.compile(r"cache (\d+) hits / (\d+) misses[;)]")


@pytest.fixture
def softmax_file(tmp_path):
    path = tmp_path / "softmax.yaml"
    path.write_text(SOFTMAX)
    return path


def run_main(capsys, *argv):
    """(exit status, stdout, stderr) of main(argv); argparse's SystemExit is turned into its status."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def cache_counts(out):
    match = CACHE_LINE.search(out.strip().splitlines()[-1])
    assert match, out[-500:]
    return int(match.group(1)), int(match.group(2))


def run_args(case_file, cache_dir, *extra):
    return ["run", "--cases", case_file, "--jobs", "0", "--cache-dir", cache_dir, "--xfails", "--quiet", *extra]


# --- cases --------------------------------------------------------------------------------------------------------


def test_cases_lists_each_selected_case_with_its_dtypes_and_counts(capsys, softmax_file, tmp_path):
    (tmp_path / "nll.yaml").write_text(NLL)
    status, out, _ = run_main(capsys, "cases", "--cases", softmax_file, tmp_path / "nll.yaml")
    lines = out.strip().splitlines()
    assert status == 0
    assert lines[:4] == ["softmax/rows  (float64,float32)", "softmax/columns  (float64,float32)",
                         "softmax/forward-only  (float64,float32)",
                         "nll_loss/oob  (float32)  raises TargetOutOfRangeError  [extreme]"]
    assert lines[-1] == "4 cases, 7 (case, dtype) pairs, from 5 loaded"  # huge is opt-in (large)


def test_cases_count_only_prints_the_totals(capsys, softmax_file):
    status, out, _ = run_main(capsys, "cases", "--cases", softmax_file, "--count", "--dtype", "float32",
                              "--include-tag", "large")
    assert status == 0 and out.strip() == "4 cases, 4 (case, dtype) pairs, from 4 loaded"


def test_cases_selects_with_k_and_id(capsys, softmax_file):
    _, out, _ = run_main(capsys, "cases", "--cases", softmax_file, "-k", "rows and not float64")
    assert out.strip().splitlines() == ["softmax/rows  (float32)", "1 cases, 1 (case, dtype) pairs, from 4 loaded"]
    _, out, _ = run_main(capsys, "cases", "--cases", softmax_file, "--id", "softmax/huge", "--count")
    assert out.strip() == "1 cases, 2 (case, dtype) pairs, from 4 loaded"  # --id reaches opt-in cases


# --- run ----------------------------------------------------------------------------------------------------------


def test_run_against_torch_passes_and_writes_the_json_report(capsys, softmax_file, tmp_path):
    report = tmp_path / "out" / "results.json"
    status, out, _ = run_main(capsys, *run_args(softmax_file, tmp_path / "cache", "--json", report))
    assert status == 0, out
    document = json.loads(report.read_text())
    assert {"schema", "schema_version", "environment", "summary", "results"} <= set(document)
    assert document["schema"] == "loss-conformance/results" and document["schema_version"] == 1
    assert document["environment"]["backend"]["name"] == "torch"
    summary, results = document["summary"], document["results"]
    assert summary["checks"] == len(results) and summary["totals"]["passed"] == len(results)
    assert {(r["case"], r["dtype"]) for r in results} == set(SOFTMAX_PAIRS)
    assert {r["check"] for r in results if r["case"] == "softmax/rows"} >= {"call", "value", "grad_input.value"}
    assert not any(r["check"].startswith("grad") for r in results if r["case"] == "softmax/forward-only")
    assert document["timings"]["cases"] == len(SOFTMAX_CASES)
    assert not [p for p in report.parent.iterdir() if p.name != "results.json"]  # written atomically, no leftovers


def test_an_error_case_passes_when_torch_raises(capsys, tmp_path):
    (tmp_path / "nll.yaml").write_text(NLL)
    status, out, _ = run_main(capsys, *run_args(tmp_path / "nll.yaml", tmp_path / "cache", "--json",
                                               tmp_path / "r.json"))
    assert status == 0, out
    records = json.loads((tmp_path / "r.json").read_text())["results"]
    assert [(r["check"], r["status"]) for r in records] == [("raises", "passed"), ("inputs.unchanged", "passed")]


def test_a_broken_backend_exits_1_and_says_how_to_reproduce(capsys, softmax_file, tmp_path, monkeypatch):
    (tmp_path / "lc_cli_broken.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    report = tmp_path / "r.json"
    status, _, _ = run_main(capsys, *run_args(softmax_file, tmp_path / "cache", "--backend", "lc_cli_broken:Namespace",
                                              "--json", report))
    assert status == 1
    failed = [r for r in json.loads(report.read_text())["results"] if r["status"] == "failed"]
    assert {r["check"] for r in failed} >= {"value"}
    value = next(r for r in failed if r["check"] == "value" and r["case"] == "softmax/rows")
    assert "Bad results (12 out of 12)" in value["message"]
    assert value["reproduce"].startswith("loss-conformance run --backend lc_cli_broken:Namespace --device cpu --cases ")
    assert value["reproduce"].endswith(f"--id softmax/rows --dtype {value['dtype']}")


def test_a_malformed_case_file_exits_2_naming_the_file(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("""\
        function: softmax
        cases:
          - id: a
            inputs: {input: {shape: [2], dist: gauss}}
        """))
    for command in (run_args(bad, tmp_path / "cache"), ["cases", "--cases", bad]):
        status, _, err = run_main(capsys, *command)
        assert status == 2
        assert err.startswith(f"error: {bad}: case 'a': field cases.0.inputs.input.dist:")


@pytest.mark.parametrize("jobs", ["0", "1"])
def test_an_unknown_backend_exits_2_with_the_accepted_forms(capsys, softmax_file, tmp_path, jobs):
    status, _, err = run_main(capsys, "run", "--cases", softmax_file, "--jobs", jobs, "--backend", "no such backend",
                              "--no-cache", "--xfails", "--quiet")
    assert status == 2
    assert err.startswith("error: ") and "'torch'" in err and "module.path[:attr]" in err


def test_a_bad_dtype_is_a_usage_error_listing_the_accepted_values(capsys, softmax_file):
    status, _, err = run_main(capsys, "run", "--cases", softmax_file, "--dtype", "float32,int8")
    assert status == 2
    assert "'int8' is not a dtype" in err and "float64, float32, float16, bfloat16" in err


def test_a_bad_function_is_a_usage_error(capsys):
    status, _, err = run_main(capsys, "cases", "--function", "hinge")
    assert status == 2 and "'hinge' is not a function" in err and "cross_entropy" in err


@pytest.mark.parametrize("command", ["run", "cases"])
def test_a_k_syntax_error_exits_2_with_the_column(capsys, softmax_file, tmp_path, command):
    status, _, err = run_main(capsys, command, "--cases", softmax_file, "-k", "rows and (float32")
    assert status == 2
    assert err.startswith("error: ") and "column" in err and "'rows and (float32'" in err


def test_a_selection_matching_nothing_exits_2(capsys, softmax_file, tmp_path):
    status, _, err = run_main(capsys, *run_args(softmax_file, tmp_path / "cache", "-k", "no_such_case"))
    assert status == 2 and "no case matches the selection" in err
    status, _, err = run_main(capsys, *run_args(softmax_file, tmp_path / "cache", "--id", "softmax/nope"))
    assert status == 2


def test_no_command_exits_2(capsys):
    status, _, err = run_main(capsys)
    assert status == 2 and "usage" in err


# --- the oracle cache ---------------------------------------------------------------------------------------------


def test_a_second_run_is_served_from_the_cache(capsys, softmax_file, tmp_path):
    cache = tmp_path / "cache"
    _, first, _ = run_main(capsys, *run_args(softmax_file, cache, "--json", tmp_path / "1.json"))
    status, second, _ = run_main(capsys, *run_args(softmax_file, cache, "--json", tmp_path / "2.json"))
    assert cache_counts(first) == (0, PAIRS)
    assert status == 0 and cache_counts(second) == (PAIRS, 0)
    assert json.loads((tmp_path / "2.json").read_text())["timings"]["cache"]["hits"] == PAIRS
    entries = [p for p in cache.rglob("*") if p.is_file() and "inputs" not in p.relative_to(cache).parts]
    assert len(entries) == PAIRS and all(p.suffix == ENTRY_SUFFIX and not p.name.startswith(".") for p in entries)


def test_no_cache_stores_nothing(capsys, softmax_file, tmp_path, monkeypatch):
    monkeypatch.setenv("LOSS_CONFORMANCE_CACHE", str(tmp_path / "env-cache"))
    for _ in range(2):
        status, out, _ = run_main(capsys, "run", "--cases", softmax_file, "--jobs", "0", "--no-cache", "--cache-dir",
                                  tmp_path / "cache", "--xfails", "--quiet")
        assert status == 0 and cache_counts(out) == (0, PAIRS)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "env-cache").exists()


def test_the_cache_directory_defaults_to_the_environment_variable(capsys, softmax_file, tmp_path, monkeypatch):
    monkeypatch.setenv("LOSS_CONFORMANCE_CACHE", str(tmp_path / "env-cache"))
    status, _, _ = run_main(capsys, "run", "--cases", softmax_file, "--jobs", "0", "--xfails", "--quiet")
    oracle_entries = [p for p in (tmp_path / "env-cache").rglob(f"*{ENTRY_SUFFIX}") if p.parent.name != "inputs"]
    assert status == 0 and len(oracle_entries) == PAIRS


def test_the_console_script_in_isolated_workers_reuses_the_cache(capsys, softmax_file, tmp_path):
    script = Path(sys.executable).with_name("loss-conformance")
    if not script.exists():
        pytest.skip("the loss-conformance console script is not installed beside this Python")
    cache, report = tmp_path / "cache", tmp_path / "r.json"
    run_main(capsys, *run_args(softmax_file, cache))  # fills the cache in-process
    environment = dict(os.environ, LOSS_CONFORMANCE_CACHE=str(tmp_path / "unused"))
    done = subprocess.run([str(script), "run", "--cases", str(softmax_file), "--cache-dir", str(cache), "--json",
                           str(report), "--xfails", "--quiet", "--dtype", "float32"],
                          capture_output=True, text=True, timeout=120, env=environment, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    float32 = len(SOFTMAX_CASES)  # the float32 pairs, all certified by the first run
    assert cache_counts(done.stdout) == (float32, 0)
    document = json.loads(report.read_text())
    counts = document["timings"]["cache"]
    assert (counts["hits"], counts["misses"], counts["damaged"], counts["forged"]) == (float32, 0, 0, 0)
    assert document["summary"]["checks"] == len(document["results"]) > 0
    leftovers = [p for p in cache.rglob("*") if p.is_file() and (".tmp" in p.name or p.suffix != ENTRY_SUFFIX)]
    assert not leftovers and not (tmp_path / "unused").exists()


def test_a_store_entry_gives_back_every_array_bit_for_bit_with_its_dtype_and_shape():
    import numpy as np

    from conformance.expected import pack_arrays, unpack_arrays
    arrays = {"scalar": np.array(2.5), "empty": np.zeros((0, 3)), "strided": np.arange(6).reshape(2, 3)[:, ::2],
              "half": np.array([1.5, -0.0, np.inf], dtype=np.float16), "big_endian": np.arange(3, dtype=">f4"),
              "mask": np.array([True, False]), "nan": np.array([np.nan])}
    stored, error = unpack_arrays(bytearray(pack_arrays(arrays, "OracleDomainError")))
    assert error == "OracleDomainError" and list(stored) == list(arrays)
    for name, array in arrays.items():
        assert stored[name].dtype == array.dtype and stored[name].shape == array.shape, name
        assert stored[name].tobytes() == np.ascontiguousarray(array).tobytes(), name
    with pytest.raises(ValueError, match="truncated"):
        unpack_arrays(pack_arrays(arrays)[:-1])


def test_a_damaged_cache_entry_is_recomputed_and_replaced(capsys, softmax_file, tmp_path):
    cache = tmp_path / "cache"
    run_main(capsys, *run_args(softmax_file, cache))
    damaged = min(p for p in cache.rglob(f"*{ENTRY_SUFFIX}") if p.parent.name != "inputs")
    damaged.write_bytes(b"not a store entry")
    status, out, _ = run_main(capsys, *run_args(softmax_file, cache))
    assert status == 0 and cache_counts(out) == (PAIRS - 1, 1)
    assert "cache: 1 entries damaged, re-certified" in out.strip().splitlines()[-1]
    assert cache_counts(run_main(capsys, *run_args(softmax_file, cache))[1]) == (PAIRS, 0)
