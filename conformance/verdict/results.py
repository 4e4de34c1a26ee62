"""The results model: the statuses a check can end with, the exit codes they lead to, one record per check,
the summary per function and dtype, and the environment a run reports.

Every rule about statuses and exit codes lives here; writers (conformance/report/) and entry points import it.
docs/results.md describes the record fields.
"""
import platform
import re
import shlex
import sys
from collections import Counter, defaultdict
from dataclasses import fields
from functools import cache
from importlib import metadata

STATUSES = ("passed", "failed", "xfailed", "xpassed", "skipped", "error")
FAILING = ("failed", "error", "xpassed")  # a run with one of these is not green
MEASURED = ("passed", "failed", "xpassed")  # statuses whose error counts toward the worst error of a cell
RAN = ("passed", "xfailed")  # a check that ran without failing

EXIT_OK = 0  # nothing failed unexpectedly
EXIT_FAILED = 1  # a check failed, or a strict expected failure passed
EXIT_USAGE = 2  # a usage or configuration error: bad arguments, case, xfail or results file, unloadable backend
EXIT_INTERRUPTED = 130  # the shell's status for a command ended by SIGINT


def is_failing(record):
    return record["status"] in FAILING


def reproduction(case, dtype, spec, device, cases_arg=None, world=None):
    """The one-line command that re-runs exactly this case in this dtype (on the same vocab-parallel world)."""
    parts = ["loss-conformance", "run", "--backend", spec, "--device", device]
    if world:
        parts += ["--world-size", str(world["world_size"])] + (["--sharding", world["sharding"]]
                                                                if world.get("sharding") else [])
    if cases_arg:
        parts += ["--cases", case.source]
    parts += ["--id", case.full_id, "--dtype", dtype]
    return " ".join(shlex.quote(p) for p in parts)


_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _escape(match):
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean_text(text):
    """Text as every writer can hold it: lone surrogates (which UTF-8 cannot encode), control characters other
    than tab and newline (which XML 1.0 cannot hold) and U+FFFE/U+FFFF become backslash escapes such as \\ud800."""
    return _UNPRINTABLE.sub(_escape, text) if isinstance(text, str) else text


def _clean_value(value):
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(key): _clean_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_value(item) for item in value]
    return value


@cache
def _field_names(result_type):
    return tuple(f.name for f in fields(result_type))


def make_record(case, dtype, result, context, size=None):
    """The record of one check (a CheckResult) of a case in a dtype; context holds spec, device, cases_arg. Text
    (a backend's error message above all) is cleaned once, here, by clean_text."""
    record = {"case": case.full_id, "function": case.function, "dtype": dtype}
    if size is not None:
        record["size"] = size  # elements of the input: the x axis of a report's error-against-size plot
    # A shallow read of the fields: _clean_value copies the dicts and lists (dataclasses.asdict's deep copy
    # took 3 s of a 20 s profiled warm run).
    for name in _field_names(type(result)):
        value = getattr(result, name)
        if value not in (None, {}, "") or name == "status":
            record[name] = _clean_value(value)
    if result.status == "failed":
        record["reproduce"] = reproduction(case, dtype, context["spec"], context["device"], context.get("cases_arg"),
                                           context.get("world"))
    if case.tags:
        record["tags"] = list(case.tags)
    return record


def summarize(records, grades=()):
    """Counts per status, and per (function, dtype): counts, the worst error relative to its budget, and the
    accuracy grade: the loosest of the checks' grades, on the ladder ``grades`` (tightest order first)."""
    totals = Counter(record["status"] for record in records)
    table = defaultdict(lambda: {"counts": Counter(), "worst_ratio": None, "worst_case": None, "grade": None,
                                 "grade_rank": -1})
    for record in records:
        cell = table[(record["function"], record["dtype"])]
        cell["counts"][record["status"]] += 1
        # Declared deviations are reported as such, not as the worst error of a conforming backend.
        if record.get("budget_u") and record.get("error_u") is not None and record["status"] in MEASURED:
            ratio = record["error_u"] / record["budget_u"]
            if cell["worst_ratio"] is None or ratio > cell["worst_ratio"]:
                cell["worst_ratio"], cell["worst_case"] = ratio, f"{record['case']} [{record['check']}]"
        grade = record.get("grade")
        if grade and record["status"] in MEASURED:
            rank = grades.index(grade) if grade in grades else len(grades)
            if rank > cell["grade_rank"]:
                cell["grade"], cell["grade_rank"] = grade, rank
    rows = [{"function": f, "dtype": d, **{s: cell["counts"][s] for s in STATUSES},
             "worst_error_over_budget": cell["worst_ratio"], "worst_case": cell["worst_case"],
             "grade": cell["grade"]}
            for (f, d), cell in sorted(table.items())]
    return {"totals": {s: totals[s] for s in STATUSES}, "checks": len(records), "table": rows,
            "coverage": coverage(records), "parity": sum(1 for record in records if record.get("parity"))}


def summarize_as(records, summary):
    """The summary of records judged as an earlier ``summary`` says (its judged_by and grade ladder): what a
    merge of shards or a report of an older file computes again."""
    judged = (summary or {}).get("judged_by") if isinstance(summary, dict) else None
    judged = judged if isinstance(judged, dict) else None
    result = summarize(records, tuple((judged or {}).get("grades", ())))
    return dict(result, judged_by=judged) if judged else result


def coverage(records):
    """How much of the selection the backend could run: (case, dtype) pairs that ran at least one check, those
    skipped whole as unsupported, and those that do not apply to it (torch API conventions); ``share`` is the
    pairs run over the pairs that apply."""
    kinds = defaultdict(set)
    for record in records:
        kinds[(record["case"], record["dtype"])].add(
            record.get("skip_kind", "skipped") if record["status"] == "skipped" else "ran")
    counts = Counter("ran" if "ran" in found else "not-applicable" if found == {"not-applicable"} else
                     "unsupported" if "unsupported" in found else "skipped" for found in kinds.values())
    applicable = len(kinds) - counts["not-applicable"]
    return {"pairs": len(kinds), "ran": counts["ran"], "unsupported": counts["unsupported"],
            "not_applicable": counts["not-applicable"], "skipped_otherwise": counts["skipped"],
            "share": counts["ran"] / applicable if applicable else None}


def exit_status(records):
    """EXIT_OK, EXIT_FAILED for a failed check or a strict xfail that passed, EXIT_USAGE for a case or harness
    error (a configuration problem, not a verdict on the backend)."""
    statuses = {record["status"] for record in records}
    if "error" in statuses:
        return EXIT_USAGE
    return EXIT_FAILED if statuses & {"failed", "xpassed"} else EXIT_OK


def _version(distribution):
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def environment(backend_description, options):
    import oracle

    return {
        "spec": options.backend, "backend": _clean_value(backend_description), "device": options.device,
        "oracle_version": oracle.__version__, "oracle_precision_bits": oracle.DEFAULT_PREC,
        "oracle_engine": oracle.engine_label(),
        "loss_conformance": _version("loss-conformance"),
        "versions": {name: _version(name) for name in ("torch", "numpy", "mpmath", "gmpy2")},
        "python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
        "argv": sys.argv[1:],
    }


def backend_label(environment):
    """The backend's name, version and device from a results environment, e.g. "torch 2.13.0+cpu on cpu";
    None when the environment names no backend (a hand-made or damaged file)."""
    environment = environment if isinstance(environment, dict) else {}
    backend = environment.get("backend") if isinstance(environment.get("backend"), dict) else {}
    if not backend.get("name"):
        return None
    device = backend.get("device") or environment.get("device")
    return " ".join(str(part) for part in (backend["name"], backend.get("version"), device and "on", device) if part)
