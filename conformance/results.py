"""The results of a run: statuses, the summary per function and dtype, the environment, and atomic JSON output.

The JSON document is versioned (``schema_version``); docs/results.md describes every field.
"""
import json
import math
import os
import platform
import sys
import tempfile
from collections import Counter, defaultdict
from importlib import metadata
from pathlib import Path

SCHEMA_VERSION = 1
STATUSES = ("passed", "failed", "xfailed", "xpassed", "skipped", "error")
MEASURED = ("passed", "failed", "xpassed")  # statuses whose error counts toward the worst error of a cell


def _version(distribution):
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def environment(backend_description, options):
    import oracle

    return {
        "backend": backend_description, "device": options.device, "oracle_version": oracle.__version__,
        "oracle_precision_bits": oracle.DEFAULT_PREC, "loss_conformance": _version("loss-conformance"),
        "versions": {name: _version(name) for name in ("torch", "numpy", "mpmath", "gmpy2")},
        "python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
        "argv": sys.argv[1:],
    }


def summarize(records):
    """Counts per status, and per (function, dtype): counts, and the worst error relative to its budget."""
    totals = Counter(record["status"] for record in records)
    table = defaultdict(lambda: {"counts": Counter(), "worst_ratio": None, "worst_case": None})
    for record in records:
        cell = table[(record["function"], record["dtype"])]
        cell["counts"][record["status"]] += 1
        # Declared deviations are reported as such, not as the worst error of a conforming backend.
        if record.get("budget_u") and record.get("error_u") is not None and record["status"] in MEASURED:
            ratio = record["error_u"] / record["budget_u"]
            if cell["worst_ratio"] is None or ratio > cell["worst_ratio"]:
                cell["worst_ratio"], cell["worst_case"] = ratio, f"{record['case']} [{record['check']}]"
    rows = [{"function": f, "dtype": d, **{s: cell["counts"][s] for s in STATUSES},
             "worst_error_over_budget": cell["worst_ratio"], "worst_case": cell["worst_case"]}
            for (f, d), cell in sorted(table.items())]
    return {"totals": {s: totals[s] for s in STATUSES}, "checks": len(records), "table": rows}


def exit_status(records):
    """0: nothing failed unexpectedly; 1: a check failed or a strict xfail passed; 2: a case or harness error."""
    statuses = {record["status"] for record in records}
    if "error" in statuses:
        return 2
    return 1 if statuses & {"failed", "xpassed"} else 0


def write_atomic(path, text):
    """Write text so that a reader sees the old file or the complete new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def json_safe(value):
    """The value with non-finite floats spelled "inf", "-inf", "nan" (JSON has no literal for them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def write_json(path, document):
    write_atomic(path, json.dumps(json_safe(document), indent=1, allow_nan=False, default=str) + "\n")


def results_document(env, records, summary, timings, warnings):
    return {"schema": "loss-conformance/results", "schema_version": SCHEMA_VERSION, "environment": env,
            "summary": summary, "timings": timings, "warnings": warnings, "results": records}
