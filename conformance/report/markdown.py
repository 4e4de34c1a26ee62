"""A Markdown summary of a results document (``run --markdown PATH``), sized for a CI step summary.

It holds a verdict line, the environment, the table of checks per function and dtype with the worst error
against its budget, the failures with their reproductions (the first ``SHOWN_FAILURES``), and the declared
deviations met. GitHub caps a step summary at 1 MiB; the failure messages are cut to stay far below.
"""
from collections import Counter

from ..results import FAILING, STATUSES, backend_label

SHOWN_FAILURES = 50
MESSAGE_LINES = 12


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _ratio(value):
    return "" if value is None else f"{value:.3g}"


def title_of(environment):
    """The title of a summary: the backend's name, version and device, e.g. "torch 2.13.0+cpu on cpu" (else the
    --backend spec given)."""
    return backend_label(environment) or environment.get("spec") or "backend"


def _verdict(summary):
    totals = summary["totals"]
    bad = {status: totals.get(status, 0) for status in FAILING if totals.get(status, 0)}
    counts = ", ".join(f"{totals[s]} {s}" for s in STATUSES if totals.get(s))
    word = "FAILED" if bad else "PASSED"
    return f"**{word}**: {summary['checks']} checks: {counts}"


def _environment_lines(environment):
    versions = environment.get("versions") or {}
    parts = [f"{name} {version}" for name, version in versions.items() if version]
    return [f"- oracle {environment.get('oracle_version')} at {environment.get('oracle_precision_bits')} bits; "
            + ", ".join(parts), f"- Python {environment.get('python')} on {environment.get('platform')}"]


def _table(summary):
    header = ["function", "dtype", *STATUSES, "worst error / budget", "worst case"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(STATUSES) + 1) + "---|"]
    for row in summary["table"]:
        cells = [row["function"], row["dtype"], *(str(row[s]) for s in STATUSES),
                 _ratio(row["worst_error_over_budget"]), f"`{row['worst_case']}`" if row["worst_case"] else ""]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _failures(records):
    bad = [r for r in records if r["status"] in FAILING]
    if not bad:
        return []
    lines = [f"## Failures ({len(bad)})", ""]
    for record in bad[:SHOWN_FAILURES]:
        lines.append(f"### {record['status']}: `{record['case']}` [{record['dtype']}] {record['check']}")
        message = (record.get("message") or "").splitlines()
        if record["status"] == "xpassed":
            message.insert(0, f"expected to fail ({record.get('reason')}), but passed")
        if message:
            cut = message[:MESSAGE_LINES] + (["..."] if len(message) > MESSAGE_LINES else [])
            lines += ["```", *cut, "```"]
        if record.get("reproduce"):
            lines += ["", f"reproduce: `{record['reproduce']}`"]
        lines.append("")
    if len(bad) > SHOWN_FAILURES:
        lines += [f"... and {len(bad) - SHOWN_FAILURES} more (see the JSON results).", ""]
    return lines


def _deviations(records):
    by_reason = Counter((r.get("reason", ""), r.get("spec", "")) for r in records if r["status"] == "xfailed")
    if not by_reason:
        return []
    lines = [f"## Declared deviations met ({sum(by_reason.values())} checks)", "",
             "| checks | reason | spec |", "|---:|---|---|"]
    for (reason, spec), count in by_reason.most_common():
        lines.append(f"| {count} | {_cell(reason)} | {_cell(spec)} |")
    return lines + [""]


def markdown_summary(document):
    """The Markdown text of a results document."""
    environment, summary = document.get("environment", {}), document["summary"]
    lines = [f"# loss-conformance: {title_of(environment)}", "", _verdict(summary), "",
             *_environment_lines(environment), "", "## Checks per function and dtype", "", *_table(summary), ""]
    lines += _failures(document["results"]) + _deviations(document["results"])
    if document.get("warnings"):
        lines += ["## Warnings", "", *(f"- {_cell(w)}" for w in document["warnings"]), ""]
    return "\n".join(lines).rstrip() + "\n"
