"""What changed between two results files, and whether it is a regression. The rules (what counts as a new
failure, a fix, a status change, an error change) are in docs/reports.md, "Comparing two runs"; diff_markdown.py
renders the result and conformance/cli/outputs.py is the command."""
import math
from collections import Counter
from pathlib import Path

from ..verdict.results import FAILING, RAN, STATUSES, backend_label
from .results_file import ResultsFileError

DIFF_SCHEMA_VERSION = 1
DEFAULT_FACTOR = 2.0
DEFAULT_ERROR_FLOOR_U = 1.0
SHOWN = 50  # rows per Markdown list; the JSON output keeps every row
STATUS_CHANGE_KINDS = ("deviation_declared", "deviation_resolved", "coverage_lost", "coverage_gained",
                       "check_added", "check_removed")
ENVIRONMENT_FIELDS = (  # (label, path into the environment)
    ("backend", ("backend", "name")), ("backend version", ("backend", "version")),
    ("device", ("backend", "device")), ("compiled", ("backend", "compile")), ("torch", ("versions", "torch")),
    ("oracle", ("oracle_version",)), ("oracle precision (bits)", ("oracle_precision_bits",)),
    ("oracle engine", ("oracle_engine",)),
    ("loss-conformance", ("loss_conformance",)), ("python", ("python",)), ("machine", ("machine",)))
ORACLE_FIELDS = ("oracle", "oracle precision (bits)")
LISTED = ("new_failures", "still_failing", "fixes", "status_changes", "error_grew", "error_shrank",
          "failing_in_added_pairs", "cases_added", "cases_removed", "pairs_added", "pairs_removed")


def index_checks(path, document):
    """{(case, dtype, check): record} of a loaded results document; ResultsFileError for an invalid record."""
    checks = {}
    for number, record in enumerate(document["results"]):
        for key in ("case", "dtype", "check", "status"):
            if not isinstance(record.get(key), str):
                raise ResultsFileError(path, f'record {number} has no "{key}" string')
        if record["status"] not in STATUSES:
            raise ResultsFileError(path, f"record {number} has status {record['status']!r}; expected one of "
                                         f"{', '.join(STATUSES)}")
        for key in ("error_u", "budget_u"):
            value = record.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ResultsFileError(path, f'record {number} has a non-numeric "{key}": {value!r}')
        key = (record["case"], record["dtype"], record["check"])
        if key in checks:
            raise ResultsFileError(path, f"record {number} repeats {key[0]} [{key[1]}] {key[2]}")
        checks[key] = record
    if not isinstance(document.get("environment", {}), dict):
        raise ResultsFileError(path, '"environment" is not an object')
    return checks


def classify(old_status, new_status):
    """(category, kind) of a check's change; None for absent. Category None: nothing to report."""
    if new_status in FAILING:
        return ("still_failing" if old_status in FAILING else "new_failures"), None
    if old_status in FAILING:
        if new_status == "passed":
            return "fixes", None
        return "status_changes", "deviation_declared" if new_status == "xfailed" else "coverage_lost"
    if old_status == new_status:
        return None, None
    if old_status in RAN and new_status in RAN:
        return "status_changes", "deviation_declared" if new_status == "xfailed" else "deviation_resolved"
    if old_status in RAN:
        return "status_changes", "coverage_lost"
    if new_status in RAN:
        return "status_changes", "coverage_gained"
    return "status_changes", "check_added" if old_status is None else "check_removed"


def error_ratio(old_error, new_error, floor):
    """max(new, floor) / max(old, floor): inf when only new is inf, 0 when only old is; None if not comparable."""
    if old_error is None or new_error is None or math.isnan(old_error) or math.isnan(new_error):
        return None
    if math.isinf(old_error) and math.isinf(new_error):
        return 1.0
    return max(new_error, floor) / max(old_error, floor)


def _entry(key, old, new, **extra):
    """One reported check: identity, both statuses, and error, budget, reproduction from NEW (OLD if it is gone)."""
    source = new or old
    entry = {"case": key[0], "function": source.get("function"), "dtype": key[1], "check": key[2],
             "old_status": old and old["status"], "new_status": new and new["status"],
             "old_error_u": old and old.get("error_u"), "error_u": source.get("error_u"),
             "budget_u": source.get("budget_u"), "reproduce": source.get("reproduce")}
    if source.get("reason"):
        entry["reason"] = source["reason"]
    if new and new.get("message"):
        entry["message"] = new["message"]
    return {**entry, **extra}


def _compare_statuses(old_checks, new_checks, diff):
    old_pairs = {key[:2] for key in old_checks}
    new_pairs = {key[:2] for key in new_checks}
    # NEW's checks in NEW's order, then those only in OLD in OLD's order: the output is deterministic.
    for key in [*new_checks, *(key for key in old_checks if key not in new_checks)]:
        old, new = old_checks.get(key), new_checks.get(key)
        if key[:2] not in old_pairs:  # a pair OLD never ran: nothing to compare with
            if new["status"] in FAILING:
                diff["failing_in_added_pairs"].append(_entry(key, None, new))
            continue
        if key[:2] not in new_pairs:  # a removed pair is reported as such, not check by check
            continue
        category, kind = classify(old and old["status"], new and new["status"])
        if category == "new_failures":
            note = "declared deviation now passes" if new["status"] == "xpassed" else None
            diff[category].append(_entry(key, old, new, note=note))
        elif category:
            diff[category].append(_entry(key, old, new, **({"kind": kind} if kind else {})))


def _compare_errors(old_checks, new_checks, factor, floor, diff):
    for key, new in new_checks.items():
        old = old_checks.get(key)
        ratio = error_ratio(old.get("error_u"), new.get("error_u"), floor) if old else None
        if ratio is None or 1 / factor <= ratio <= factor:
            continue
        entry = _entry(key, old, new, old_budget_u=old.get("budget_u"), ratio=ratio)
        diff["error_grew" if ratio > factor else "error_shrank"].append(entry)
    diff["error_grew"].sort(key=lambda e: -e["ratio"])  # stable: equal ratios keep NEW's order
    diff["error_shrank"].sort(key=lambda e: e["ratio"])


def _added(new_items, old_items):
    """The items of new_items (in order, each once) that old_items lacks."""
    old_set = set(old_items)
    return [item for item in dict.fromkeys(new_items) if item not in old_set]


def _compare_cases(old_checks, new_checks, diff):
    old_pairs, new_pairs = [k[:2] for k in old_checks], [k[:2] for k in new_checks]
    diff["cases_added"] = _added((p[0] for p in new_pairs), (p[0] for p in old_pairs))
    diff["cases_removed"] = _added((p[0] for p in old_pairs), (p[0] for p in new_pairs))
    diff["pairs_added"] = [{"case": c, "dtype": d} for c, d in _added(new_pairs, old_pairs)]
    diff["pairs_removed"] = [{"case": c, "dtype": d} for c, d in _added(old_pairs, new_pairs)]


def _get(environment, path):
    for part in path:
        environment = environment.get(part) if isinstance(environment, dict) else None
    return environment


def environment_rows(old_env, new_env):
    """[{field, old, new, differs}] for the fields a reader needs to know what was compared."""
    rows = []
    for label, path in ENVIRONMENT_FIELDS:
        old, new = _get(old_env, path), _get(new_env, path)
        if label == "device":  # a backend without its own device entry ran on the run's --device
            old, new = old or old_env.get("device"), new or new_env.get("device")
        rows.append({"field": label, "old": old, "new": new, "differs": old != new})
    return rows


def run_label(environment, path):
    """'name version on device' of a run's backend, or the file name when the environment does not say."""
    return backend_label(environment) or Path(path).name


def _totals(checks):
    counted = Counter(record["status"] for record in checks.values())
    return {status: counted[status] for status in STATUSES}


def _counts(diff, old_checks, new_checks):
    counted = Counter(entry["kind"] for entry in diff["status_changes"])
    kinds = {kind: counted[kind] for kind in STATUS_CHANGE_KINDS}
    return {"checks_old": len(old_checks), "checks_new": len(new_checks),
            "checks_in_both": sum(key in old_checks for key in new_checks),
            "new_failures": len(diff["new_failures"]),
            "declared_deviations_now_passing": sum(e["new_status"] == "xpassed" for e in diff["new_failures"]),
            "still_failing": len(diff["still_failing"]), "fixes": len(diff["fixes"]), "status_changes": kinds,
            **{name: len(diff[name]) for name in ("error_grew", "error_shrank", "failing_in_added_pairs",
                                                   "cases_added", "cases_removed", "pairs_added", "pairs_removed")}}


def _plural(count, word):
    return f"{count} {word}" + ("" if count == 1 else "s")


def verdict(counts, factor, fail_on_error_growth):
    """(regression, one-line text): 'REGRESSION: ...' or 'no regression', with what decided it."""
    reasons = []
    if counts["new_failures"]:
        now_passing = counts["declared_deviations_now_passing"]
        reasons.append(_plural(counts["new_failures"], "new failure")
                       + (f" ({_plural(now_passing, 'declared deviation')} now passing)" if now_passing else ""))
    if fail_on_error_growth and counts["error_grew"]:
        reasons.append(f"{_plural(counts['error_grew'], 'error')} grew by more than {factor:g}x")
    if reasons:
        return True, "REGRESSION: " + ", ".join(reasons)
    notes = []
    if counts["error_grew"]:
        notes.append(f"{_plural(counts['error_grew'], 'error')} grew by more than {factor:g}x")
    if counts["failing_in_added_pairs"]:
        notes.append(f"{_plural(counts['failing_in_added_pairs'], 'failing check')} in added cases or dtypes")
    return False, "no regression" + (f" ({'; '.join(notes)})" if notes else "")


def compare(old_path, old_document, new_path, new_document, factor=DEFAULT_FACTOR, floor=DEFAULT_ERROR_FLOOR_U,
            fail_on_error_growth=False):
    """The diff document (schema loss-conformance/diff); ResultsFileError for an invalid results record."""
    old_checks, new_checks = index_checks(old_path, old_document), index_checks(new_path, new_document)
    old_env, new_env = old_document.get("environment", {}), new_document.get("environment", {})
    diff = {name: [] for name in ("new_failures", "still_failing", "fixes", "status_changes", "error_grew",
                                  "error_shrank", "failing_in_added_pairs")}
    _compare_statuses(old_checks, new_checks, diff)
    _compare_errors(old_checks, new_checks, factor, floor, diff)
    _compare_cases(old_checks, new_checks, diff)
    counts = _counts(diff, old_checks, new_checks)
    regression, text = verdict(counts, factor, fail_on_error_growth)
    rows = environment_rows(old_env, new_env)
    return {"schema": "loss-conformance/diff", "schema_version": DIFF_SCHEMA_VERSION,
            "old": {"path": str(old_path), "label": run_label(old_env, old_path), "totals": _totals(old_checks)},
            "new": {"path": str(new_path), "label": run_label(new_env, new_path), "totals": _totals(new_checks)},
            "factor": factor, "error_floor_u": floor, "fail_on_error_growth": fail_on_error_growth,
            "verdict": {"regression": regression, "text": text, "exit_status": int(regression)},
            "environment": rows,
            "errors_comparable": not any(r["differs"] for r in rows if r["field"] in ORACLE_FIELDS),
            "counts": counts, **diff}
