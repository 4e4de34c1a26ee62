"""The results model: the statuses a check can end with, the exit codes they lead to, one record per check,
the summary per function and dtype, and the environment a run reports.

Every rule about statuses and exit codes lives here; writers (conformance/report/) and entry points import it.
docs/results.md describes the record fields.
"""
import platform
import shlex
import sys
from collections import Counter, defaultdict
from dataclasses import asdict
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


def reproduction(case, dtype, spec, device, cases_arg=None):
    """The one-line command that re-runs exactly this case in this dtype."""
    parts = ["loss-conformance", "run", "--backend", spec, "--device", device]
    if cases_arg:
        parts += ["--cases", case.source]
    parts += ["--id", case.full_id, "--dtype", dtype]
    return " ".join(shlex.quote(p) for p in parts)


def make_record(case, dtype, result, context, size=None):
    """The record of one check (a CheckResult) of a case in a dtype; context holds spec, device, cases_arg."""
    record = {"case": case.full_id, "function": case.function, "dtype": dtype}
    if size is not None:
        record["size"] = size  # elements of the input: the x axis of a report's error-against-size plot
    record.update({k: v for k, v in asdict(result).items() if v not in (None, {}, "") or k == "status"})
    if result.status == "failed":
        record["reproduce"] = reproduction(case, dtype, context["spec"], context["device"], context.get("cases_arg"))
    if case.tags:
        record["tags"] = list(case.tags)
    return record


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
        "spec": options.backend, "backend": backend_description, "device": options.device,
        "oracle_version": oracle.__version__, "oracle_precision_bits": oracle.DEFAULT_PREC,
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
