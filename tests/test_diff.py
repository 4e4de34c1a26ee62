"""``loss-conformance diff``: categories, error ratios, exit statuses, JSON and Markdown output, bad input."""
import json
import math
import re

import pytest

from conformance.cli import main
from conformance.report.diff import SHOWN, classify, error_ratio
from conformance.report.results_file import write_json

CHECKS = ("call", "value")


def record(case, check, status, dtype="float32", error_u=None, budget_u=8.0, **extra):
    """A results record; value checks carry an error and a budget, failures a reproduction."""
    entry = {"case": f"softmax/{case}", "function": "softmax", "dtype": dtype, "check": check, "status": status}
    if error_u is not None:
        entry.update(error_u=error_u, budget_u=budget_u)
    if status in ("failed", "xpassed", "error"):
        entry["reproduce"] = f"loss-conformance run --id softmax/{case} --dtype {dtype}"
    return {**entry, **extra}


def document(records, backend_version="2.12.0", oracle_version="0.1.0"):
    return {"schema": "loss-conformance/results", "schema_version": 1,
            "environment": {"backend": {"name": "torch", "version": backend_version, "device": "cpu"},
                            "device": "cpu", "oracle_version": oracle_version, "oracle_precision_bits": 128,
                            "loss_conformance": "0.1.0", "versions": {"torch": backend_version}},
            "summary": {}, "timings": {}, "warnings": [], "results": records}


def run_diff(tmp_path, capsys, old_records, new_records, *options, old_env=None, new_env=None):
    """(exit status, the diff JSON, the Markdown report) of ``diff`` on two documents written to tmp_path."""
    old_path, new_path, json_path = tmp_path / "old.json", tmp_path / "new.json", tmp_path / "diff.json"
    markdown_path = tmp_path / "diff.md"
    write_json(old_path, document(old_records, **(old_env or {})))
    write_json(new_path, document(new_records, **({"backend_version": "2.13.0"} if new_env is None else new_env)))
    capsys.readouterr()
    status = main(["diff", str(old_path), str(new_path), "--json", str(json_path), "--markdown", str(markdown_path),
                   *options])
    return status, json.loads(json_path.read_text()), markdown_path.read_text()


def keys(entries):
    return [(e["case"].split("/")[1], e["dtype"], e["check"]) for e in entries]


def pair(case, call="passed", value="passed", error_u=0.5, dtype="float32"):
    return [record(case, "call", call, dtype), record(case, "value", value, dtype, error_u=error_u)]


@pytest.mark.parametrize("old, new, category, kind", [
    ("passed", "failed", "new_failures", None), ("xfailed", "xpassed", "new_failures", None),
    ("skipped", "error", "new_failures", None), (None, "failed", "new_failures", None),
    ("failed", "error", "still_failing", None), ("xpassed", "failed", "still_failing", None),
    ("failed", "passed", "fixes", None), ("error", "xfailed", "status_changes", "deviation_declared"),
    ("failed", "skipped", "status_changes", "coverage_lost"), ("failed", None, "status_changes", "coverage_lost"),
    ("passed", "xfailed", "status_changes", "deviation_declared"),
    ("xfailed", "passed", "status_changes", "deviation_resolved"),
    ("passed", "skipped", "status_changes", "coverage_lost"), ("xfailed", None, "status_changes", "coverage_lost"),
    ("skipped", "passed", "status_changes", "coverage_gained"), (None, "xfailed", "status_changes", "coverage_gained"),
    (None, "skipped", "status_changes", "check_added"), ("skipped", None, "status_changes", "check_removed"),
    ("passed", "passed", None, None), ("xfailed", "xfailed", None, None), ("skipped", "skipped", None, None),
])
def test_every_status_transition_has_one_category(old, new, category, kind):
    assert classify(old, new) == (category, kind)


def test_a_file_diffed_with_itself_is_empty_and_exits_0(tmp_path, capsys):
    records = pair("a") + pair("b", value="xfailed") + pair("c", call="skipped")[:1]
    status, diff, out = run_diff(tmp_path, capsys, records, records, new_env={})
    assert status == 0 and diff["verdict"] == {"regression": False, "text": "no regression", "exit_status": 0}
    for name in ("new_failures", "still_failing", "fixes", "status_changes", "error_grew", "error_shrank",
                 "failing_in_added_pairs", "cases_added", "cases_removed", "pairs_added", "pairs_removed"):
        assert diff[name] == [], name
    assert diff["counts"]["checks_in_both"] == len(records) and diff["errors_comparable"]
    assert "Nothing changed" in out and not any(row["differs"] for row in diff["environment"])


def test_categories_end_to_end(tmp_path, capsys):
    old = (pair("regress") + pair("fixed", value="failed") + pair("stuck", value="failed")
           + pair("declared") + pair("lost") + pair("gained", call="skipped")[:1] + pair("gone")
           + pair("dtype-added") + pair("dtype-removed", dtype="float16") + pair("dtype-removed"))
    new = (pair("regress", value="failed") + pair("fixed") + pair("stuck", value="error")
           + pair("declared", value="xfailed") + pair("lost", call="skipped")[:1] + pair("gained")
           + pair("dtype-added") + pair("dtype-added", value="failed", dtype="bfloat16")
           + pair("dtype-removed") + pair("brand-new"))
    status, diff, out = run_diff(tmp_path, capsys, old, new)
    assert status == 1 and diff["verdict"]["text"] == "REGRESSION: 1 new failure"
    assert keys(diff["new_failures"]) == [("regress", "float32", "value")]
    assert keys(diff["still_failing"]) == [("stuck", "float32", "value")]
    assert keys(diff["fixes"]) == [("fixed", "float32", "value")]
    assert [(k[0], k[2], e["kind"]) for k, e in zip(keys(diff["status_changes"]), diff["status_changes"])] == [
        ("declared", "value", "deviation_declared"), ("lost", "call", "coverage_lost"),
        ("gained", "call", "coverage_gained"), ("gained", "value", "coverage_gained"),
        ("lost", "value", "coverage_lost")]
    assert keys(diff["failing_in_added_pairs"]) == [("dtype-added", "bfloat16", "value")]
    assert diff["cases_added"] == ["softmax/brand-new"] and diff["cases_removed"] == ["softmax/gone"]
    assert {(p["case"], p["dtype"]) for p in diff["pairs_added"]} == {
        ("softmax/dtype-added", "bfloat16"), ("softmax/brand-new", "float32")}
    assert [(p["case"], p["dtype"]) for p in diff["pairs_removed"]] == [
        ("softmax/gone", "float32"), ("softmax/dtype-removed", "float16")]
    assert diff["counts"]["status_changes"]["coverage_lost"] == 2 and diff["counts"]["pairs_added"] == 2
    assert "- `softmax/dtype-removed [float16]`" in out and "- `softmax/brand-new`" in out


def test_a_failure_in_an_added_pair_is_listed_but_not_a_regression(tmp_path, capsys):
    status, diff, out = run_diff(tmp_path, capsys, pair("a"), pair("a") + pair("b", value="failed"))
    assert status == 0 and diff["verdict"]["text"] == "no regression (1 failing check in added cases or dtypes)"
    assert "## Failing in added cases or dtypes (nothing to compare with) (1)" in out


def test_xfailed_to_xpassed_is_a_new_failure_marked_as_a_declared_deviation(tmp_path, capsys):
    old = [record("dev", "value", "xfailed", error_u=30.0, reason="torch rounds twice")]
    new = [record("dev", "value", "xpassed", error_u=1.5, reason="torch rounds twice")]
    status, diff, out = run_diff(tmp_path, capsys, old, new)
    assert status == 1
    [entry] = diff["new_failures"]
    assert entry["note"] == "declared deviation now passes" and entry["reason"] == "torch rounds twice"
    assert diff["verdict"]["text"] == "REGRESSION: 1 new failure (1 declared deviation now passing)"
    assert "| xfailed -> xpassed (declared deviation now passes) | 1.5 / 8 |" in out


def test_still_failing_alone_is_no_regression(tmp_path, capsys):
    records = pair("a", value="failed", error_u=20.0)
    status, diff, _ = run_diff(tmp_path, capsys, records, records)
    assert status == 0 and keys(diff["still_failing"]) == [("a", "float32", "value")]


def test_new_failure_markdown_row_shows_error_budget_and_reproduction(tmp_path, capsys):
    _, _, out = run_diff(tmp_path, capsys, pair("a"), pair("a", value="failed", error_u=12.5))
    lines = out.splitlines()
    assert lines[0] == "# loss-conformance diff: torch 2.12.0 on cpu -> torch 2.13.0 on cpu"
    assert lines[2] == "**REGRESSION: 1 new failure**"
    assert ("| `softmax/a` | float32 | value | passed -> failed | 12.5 / 8 | "
            "`loss-conformance run --id softmax/a --dtype float32` |") in lines
    assert "| backend version | 2.12.0 | 2.13.0 | **changed** |" in lines


def test_markdown_of_hostile_names_and_messages_holds_no_html(tmp_path, capsys):
    hostile = "<img src=x onerror=alert(1)>|*x*"
    old = pair("a") + [record("b", "call", "passed", check_note="")]
    new = [*pair("a", value="failed", error_u=12.5),
           record("b", "call", "failed", reproduce=f"loss-conformance run --id '{hostile}'")]
    old_env = {"backend_version": hostile}
    _, _, out = run_diff(tmp_path, capsys, old, new, old_env=old_env)
    assert "&lt;img src=x onerror=alert(1)&gt;" in out.splitlines()[0]  # the label, as text
    assert f"`loss-conformance run --id '{hostile.replace('|', chr(92) + '|')}'`" in out  # literal in code
    outside_code = re.sub(r"(`+).*?\1", "", out)
    assert "<" not in outside_code and ">" not in outside_code.replace("->", "")


@pytest.mark.parametrize("old_u, new_u, floor, listed, ratio", [
    (1.0, 2.0, 1.0, None, None), (1.0, 2.001, 1.0, "error_grew", 2.001), (2.0, 1.0, 1.0, None, None),
    (2.1, 1.0, 1.0, "error_shrank", 1 / 2.1), (0.0, 1.9, 1.0, None, None), (0.0, 2.5, 1.0, "error_grew", 2.5),
    (0.0, 0.03, 0.01, "error_grew", 3.0), (0.0, 0.0, 1.0, None, None), (3.0, math.inf, 1.0, "error_grew", math.inf),
    (math.inf, 3.0, 1.0, "error_shrank", 0.0), (math.inf, math.inf, 1.0, None, None), (math.nan, 9.0, 1.0, None, None),
])
def test_error_changes_at_the_factor_floor_and_nonfinite(tmp_path, capsys, old_u, new_u, floor, listed, ratio):
    status, diff, _ = run_diff(tmp_path, capsys, pair("a", error_u=old_u), pair("a", error_u=new_u),
                               "--error-floor", str(floor))
    assert status == 0 and diff["error_floor_u"] == floor
    changed = {name: diff[name] for name in ("error_grew", "error_shrank") if diff[name]}
    if listed is None:
        assert changed == {}
        return
    [entry] = changed[listed]
    # JSON spells inf as the string "inf"
    assert float(entry["ratio"]) == pytest.approx(ratio)
    assert (float(entry["old_error_u"]), float(entry["error_u"])) == (old_u, new_u)


def test_error_ratio_is_none_without_both_errors():
    assert error_ratio(None, 1.0, 1.0) is None and error_ratio(1.0, None, 1.0) is None


def test_error_changes_are_sorted_by_ratio_and_factor_is_an_option(tmp_path, capsys):
    old = pair("x", error_u=1.0) + pair("y", error_u=1.0) + pair("z", error_u=8.0) + pair("w", error_u=4.0)
    new = pair("x", error_u=1.6) + pair("y", error_u=4.0) + pair("z", error_u=1.0) + pair("w", error_u=1.0)
    status, diff, out = run_diff(tmp_path, capsys, old, new, "--factor", "1.5")
    assert status == 0 and diff["factor"] == 1.5
    assert [k[0] for k in keys(diff["error_grew"])] == ["y", "x"]
    assert [k[0] for k in keys(diff["error_shrank"])] == ["z", "w"]
    assert "| `softmax/y` | float32 | value | 1 | 4 | 8 | 4 |" in out


def test_fail_on_error_growth_gates_growth_within_budget(tmp_path, capsys):
    old, new = pair("a", error_u=0.5), pair("a", error_u=5.0)
    assert run_diff(tmp_path, capsys, old, new)[0] == 0
    status, diff, _ = run_diff(tmp_path, capsys, old, new, "--fail-on-error-growth")
    assert status == 1 and diff["verdict"]["text"] == "REGRESSION: 1 error grew by more than 2x"


def test_json_output_fields(tmp_path, capsys):
    _, diff, _ = run_diff(tmp_path, capsys, pair("a"), pair("a", value="failed", error_u=9.0),
                          new_env={"backend_version": "2.13.0", "oracle_version": "0.2.0"})
    assert diff["schema"] == "loss-conformance/diff" and diff["schema_version"] == 1
    assert diff["old"]["label"] == "torch 2.12.0 on cpu" and diff["new"]["path"].endswith("new.json")
    assert diff["new"]["totals"] == {"passed": 1, "failed": 1, "xfailed": 0, "xpassed": 0, "skipped": 0, "error": 0}
    assert (diff["factor"], diff["error_floor_u"], diff["fail_on_error_growth"]) == (2.0, 1.0, False)
    assert diff["verdict"] == {"regression": True, "text": "REGRESSION: 1 new failure", "exit_status": 1}
    differing = {row["field"]: (row["old"], row["new"]) for row in diff["environment"] if row["differs"]}
    assert differing == {"backend version": ("2.12.0", "2.13.0"), "torch": ("2.12.0", "2.13.0"),
                         "oracle": ("0.1.0", "0.2.0")}
    assert diff["errors_comparable"] is False
    [entry] = diff["new_failures"]
    assert entry["reproduce"] == "loss-conformance run --id softmax/a --dtype float32"
    assert (entry["old_status"], entry["new_status"], entry["old_error_u"], entry["error_u"], entry["budget_u"]) == (
        "passed", "failed", 0.5, 9.0, 8.0)
    assert diff["counts"]["new_failures"] == 1 and diff["counts"]["checks_in_both"] == 2


def test_oracle_change_is_noted_in_markdown(tmp_path, capsys):
    _, _, out = run_diff(tmp_path, capsys, pair("a"), pair("a"), new_env={"oracle_version": "0.2.0"})
    assert "not strictly comparable" in out


def test_long_lists_are_truncated_in_markdown_but_complete_in_json(tmp_path, capsys):
    added = [r for number in range(SHOWN + 5) for r in pair(f"case-{number:03d}")]
    _, diff, out = run_diff(tmp_path, capsys, pair("a"), pair("a") + added)
    assert len(diff["cases_added"]) == SHOWN + 5
    assert "- `softmax/case-049`" in out and "case-050" not in out
    assert "... and 5 more (the --json output lists them all)." in out


def test_stdout_gets_a_terminal_rendering_and_quiet_prints_nothing(tmp_path, capsys):
    old_path, new_path = tmp_path / "old.json", tmp_path / "new.json"
    write_json(old_path, document(pair("a")))
    write_json(new_path, document(pair("a", value="failed"), backend_version="2.13.0"))
    capsys.readouterr()
    assert main(["diff", str(old_path), str(new_path)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out.upper() and "Regressions: new failures (1)" in out
    assert "# loss-conformance diff" not in out and "|---" not in out  # not Markdown
    assert main(["diff", str(old_path), str(new_path), "--quiet"]) == 1 and capsys.readouterr().out == ""


@pytest.mark.parametrize("content, message", [
    (None, "cannot be read"), ("{not json", "is not JSON"), ({"schema": "other"}, "is not a loss-conformance"),
    (document([{"case": "softmax/a", "dtype": "float32", "check": "value"}]), 'record 0 has no "status" string'),
    (document([record("a", "value", "maybe")]), "record 0 has status 'maybe'"),
    (document([record("a", "value", "passed", error_u="big")]), 'non-numeric "error_u"'),
    (document(pair("a") + pair("a")[1:]), "record 2 repeats softmax/a [float32] value"),
    ({**document([]), "environment": []}, '"environment" is not an object'),
])
def test_invalid_input_exits_2_with_one_line_naming_the_file(tmp_path, capsys, content, message):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    write_json(good, document(pair("a")))
    if isinstance(content, str):
        bad.write_text(content)
    elif content is not None:
        write_json(bad, content)
    assert main(["diff", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"error: {bad}: ") and message in captured.err
    assert captured.err.count("\n") == 1


def test_unwritable_output_exits_2(tmp_path, capsys):
    path = tmp_path / "old.json"
    write_json(path, document(pair("a")))
    blocked = tmp_path / "old.json" / "diff.json"  # a file stands where the folder should be
    assert main(["diff", str(path), str(path), "--json", str(blocked), "--quiet"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {blocked}: cannot be written")


@pytest.mark.parametrize("option", [["--factor", "0.5"], ["--factor", "nan"], ["--error-floor", "0"]])
def test_bad_option_values_are_usage_errors(tmp_path, option):
    with pytest.raises(SystemExit) as raised:
        main(["diff", "old.json", "new.json", *option])
    assert raised.value.code == 2
