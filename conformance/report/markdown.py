"""A Markdown summary of a results document (``run --markdown PATH``), sized for a CI step summary.

On top: the verdict, the coverage, the parameters that separate failures from passes and the failures grouped
by cause (each group folded, its first instances with their messages and reproductions). Folded below: the
environment, the table of checks per function and dtype with the worst error against its budget, the declared
deviations met. GitHub caps a step summary at 1 MiB; the failure messages are cut to stay far below.
"""
import re
from collections import Counter

from ..verdict.results import FAILING, STATUSES, backend_label, clean_text
from .judgement import describe_judgement
from .groups import failure_groups

SHOWN_FAILURES = 50
MESSAGE_LINES = 12
_SPECIAL = re.compile(r"([\\`*\[\]|])")  # Markdown punctuation that could start markup: made literal


def _text(text):
    """Any string from the results (a backend's name, case ids, messages) as literal Markdown text on one line:
    &, < and > as entities, so that no HTML gets through, and the punctuation of code, emphasis, links and table
    cells (pipes) backslash-escaped."""
    text = clean_text(str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def _cell(text):
    return _text(text)


def _code(text, cell=False):
    """Inline code: literal in Markdown (no entity or escape applies inside), so the delimiter is a run of
    backticks longer than any in the text; in a table cell pipes are still escaped; newlines become spaces."""
    text = clean_text(str(text)).replace("\r", " ").replace("\n", " ")
    text = text.replace("|", "\\|") if cell else text
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _block(lines):
    """A fenced code block of lines, its fence longer than any run of backticks in them."""
    lines = [clean_text(str(line)) for line in lines]
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *lines, fence]


def _ratio(value):
    return "" if value is None else f"{value:.3g}"


def title_of(environment):
    """The title of a summary: the backend's name, version and device, e.g. "torch 2.13.0+cpu on cpu" (else the
    --backend spec given)."""
    return backend_label(environment) or str(environment.get("spec") or "backend")


def _verdict(summary):
    totals = summary["totals"]
    bad = {status: totals.get(status, 0) for status in FAILING if totals.get(status, 0)}
    counts = ", ".join(f"{totals[s]} {s}" for s in STATUSES if totals.get(s))
    word = "FAILED" if bad else "PASSED"
    return f"**{word}**: {summary['checks']} checks: {counts}"


def _environment_lines(environment):
    versions = environment.get("versions") or {}
    parts = [f"{name} {version}" for name, version in versions.items() if version]
    oracle = f"oracle {environment.get('oracle_version')} at {environment.get('oracle_precision_bits')} bits"
    oracle += f" ({environment['oracle_engine']}); " if environment.get("oracle_engine") else "; "
    return ["- " + _text(oracle + ", ".join(parts)),
            "- " + _text(f"Python {environment.get('python')} on {environment.get('platform')}")]


def _table(summary):
    header = ["function", "dtype", *STATUSES, "worst error / budget", "grade", "worst case"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(STATUSES) + 1) + "---|---|"]
    for row in summary["table"]:
        cells = [row["function"], row["dtype"], *(str(row[s]) for s in STATUSES),
                 _ratio(row["worst_error_over_budget"]), row.get("grade") or ""]
        lines.append("| " + " | ".join(_cell(c) for c in cells)
                     + f" | {_code(row['worst_case'], cell=True) if row['worst_case'] else ''} |")
    judged = describe_judgement(summary.get("judged_by"))
    return lines + ([""] + [f"- {_text(line)}" for line in judged] if judged else [])


def _instance(record):
    """One failing check, for the folded list of its group: its id, message (cut) and reproduction."""
    lines = [f"- {_code(record['case'])} [{_text(record['dtype'])}] {_text(record['status'])}"]
    message = (record.get("message") or "").splitlines()
    if record["status"] == "xpassed":
        message.insert(0, f"expected to fail ({record.get('reason')}), but passed")
    if message:
        cut = message[:MESSAGE_LINES] + (["..."] if len(message) > MESSAGE_LINES else [])
        lines += ["", *_block(cut)]
    if record.get("reproduce"):
        lines += ["", f"reproduce: {_code(record['reproduce'])}"]
    return lines + [""]


def _failures(records):
    """The failures grouped by (function, check, cause), each group folded with every instance: the first
    SHOWN_FAILURES with their messages and reproductions, the others by id."""
    groups = failure_groups(records)
    if not groups:
        return []
    total = sum(len(group.records) for group in groups)
    lines = [f"## Failures: {total} checks in {len(groups)} groups", "",
             "| checks | function | check | cause |", "|---:|---|---|---|"]
    lines += [f"| {len(g.records)} | {_cell(g.function)} | {_cell(g.check)} | {_cell(g.cause)} |" for g in groups]
    lines.append("")
    shown = 0
    for group in groups:
        lines += ["<details>", f"<summary>{len(group.records)} x {_text(group.function)} {_text(group.check)}: "
                  f"{_text(group.cause)}</summary>", ""]
        for record in group.records:  # in full while the budget of messages lasts, then by id only
            lines += _instance(record) if shown < SHOWN_FAILURES else \
                [f"- {_code(record['case'])} [{_text(record['dtype'])}] {_text(record['status'])}"]
            shown += 1
        lines += ["", "</details>", ""]
    return lines


def _deviations(records):
    by_reason = Counter((r.get("reason", ""), r.get("spec", "")) for r in records if r["status"] == "xfailed")
    if not by_reason:
        return []
    lines = ["| checks | reason | spec |", "|---:|---|---|"]
    for (reason, spec), count in by_reason.most_common():
        lines.append(f"| {count} | {_cell(reason)} | {_cell(spec)} |")
    return lines + [""]


def _folded(title, lines):
    return ["<details>", f"<summary>{title}</summary>", "", *lines, "", "</details>", ""] if lines else []


def _coverage_line(summary):
    coverage = summary.get("coverage")
    if not coverage or coverage["ran"] == coverage["pairs"]:
        return []
    share = "" if coverage["share"] is None else f" ({100 * coverage['share']:.1f} %)"
    return [f"Coverage: {coverage['ran']} of {coverage['pairs'] - coverage['not_applicable']} applicable "
            f"(case, dtype) pairs ran{share}; {coverage['unsupported']} unsupported, {coverage['not_applicable']} "
            "not applicable (torch API conventions, layouts).", ""]


def _diagnosis(document):
    sentences = document.get("diagnosis") if isinstance(document.get("diagnosis"), dict) else {}
    return [f"- {_text(function)}: {_text(line)}" for function, lines in sorted(sentences.items()) for line in lines]


def markdown_summary(document):
    """The Markdown text of a results document: the verdict, coverage and the failure groups on top, the rest
    folded (<details>), so that a failing run's step summary stays short."""
    environment, summary, records = document.get("environment", {}), document["summary"], document["results"]
    lines = [f"# loss-conformance: {_text(title_of(environment))}", "", _verdict(summary), "",
             *_coverage_line(summary)]
    diagnosis = _diagnosis(document)
    if diagnosis:
        lines += ["Parameters that separate the failures from the passes:", "", *diagnosis, ""]
    lines += _failures(records)
    lines += _folded("Environment", _environment_lines(environment))
    lines += _folded("Checks per function and dtype", _table(summary))
    lines += _folded(f"Declared deviations met ({sum(r['status'] == 'xfailed' for r in records)} checks)",
                     _deviations(records))
    if document.get("warnings"):
        lines += _folded("Warnings", [f"- {_cell(w)}" for w in document["warnings"]])
    return "\n".join(lines).rstrip() + "\n"
