"""The HTML report (``loss-conformance report``): one page with plots, made from a results file (``run --json``).

DIR/index.html needs nothing but the PNG files written beside it: no JavaScript, no external CSS or fonts.
Every string taken from the results file is escaped. Plotting (matplotlib) lives in conformance/plots.py and
is imported only when the command runs, so building the CLI parser stays cheap.
"""
import math
from pathlib import Path

from ..verdict.results import FAILING, STATUSES, backend_label, summarize_as
from .judgement import describe_judgement
from .html_sections import cases_section, diagnosis_section, escape, failures_section, grouped_section
from .results_file import ResultsFileError

REQUIRED_KEYS = ("case", "function", "dtype", "check", "status")
NUMERIC_KEYS = ("error_u", "budget_u", "size")  # what the plots compute with
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em auto;
       max-width: 1400px; padding: 0 1em; color: #1a1a1a; line-height: 1.4; }
h1 { margin-bottom: 0.1em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f0f0f0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.bad { background: #f8d0d0; font-weight: bold; color: #8b0000; }
td.zero { color: #aaa; }
table.env th { width: 14em; }
pre { background: #f6f6f6; border: 1px solid #e0e0e0; padding: 0.5em; overflow-x: auto; white-space: pre-wrap; }
.status { font-weight: bold; padding: 0 0.3em; border-radius: 3px; color: white; }
.status-failed, .status-error { background: #b00020; } .status-xpassed { background: #b06000; }
.failure { margin-bottom: 1.2em; } .note { color: #555; } code { background: #f3f3f3; padding: 0 0.2em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #333; max-width: 1100px; } footer { margin-top: 2em; color: #666; font-size: 0.9em; }
"""


class OutputPathError(Exception):
    """An output directory that cannot be used: names the path and what is wrong with it."""

    def __init__(self, path, message):
        super().__init__(f"{path}: {message}")


def check_records(path, records):
    """Raise ResultsFileError naming the first record that lacks a field the report reads or has a bad one."""
    for number, record in enumerate(records):
        missing = [key for key in REQUIRED_KEYS if not isinstance(record.get(key), str)]
        if missing:
            raise ResultsFileError(path, f"record {number} has no {', '.join(missing)} (docs/results.md)")
        if record["status"] not in STATUSES:
            raise ResultsFileError(path, f"record {number} has the unknown status {record['status']!r}")
        for key in NUMERIC_KEYS:
            value = record.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ResultsFileError(path, f"record {number} has {key} {value!r}, which is not a number")


def prepare_output(directory):
    """The output directory, created if missing; OutputPathError if it is not (or cannot be) a directory."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputPathError(directory, "is not a directory (give -o a directory for index.html and the plots)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputPathError(directory, f"cannot be created ({error.strerror or error})") from None
    return directory


def default_title(environment):
    """The page title, "<backend> <version> on <device>" from the environment, or a generic one when it says nothing."""
    return backend_label(environment) or "loss-conformance report"


def as_number(value):
    """A number from the summary table, where run --json spells non-finite ones "inf"/"nan"; None otherwise.

    load_results turns these strings back into floats in the records only, not in summary.table.
    """
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def ratio_text(value):
    """A ratio as 3 significant digits, "inf"/"nan" for non-finite ones, "" for none."""
    if value is None:
        return ""
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def render_page(document, title, source_name, plot_counts):
    """The whole HTML page as a string."""
    records = document["results"]
    summary = document.get("summary") if isinstance(document.get("summary"), dict) else None
    table = summary.get("table") if summary else None
    if not isinstance(table, list) or not all(isinstance(row, dict) for row in table) \
            or not isinstance(summary.get("totals"), dict):
        summary = summarize_as(records, summary)  # an older or hand-made file: recompute what run would have written
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        header_section(document, title, summary),
        summary_section(summary),
        failures_section(records),
        diagnosis_section(document),
        grouped_section("Declared deviations met (xfailed)", [r for r in records if r["status"] == "xfailed"],
                        "reason", "No declared deviation was met."),
        grouped_section("Skipped", [r for r in records if r["status"] == "skipped"], "message", None),
        plots_section(plot_counts),
        cases_section(records),
        f"<footer>Made by <code>loss-conformance report</code> from <code>{escape(source_name)}</code>.</footer>",
        "</body>", "</html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def _rows(pairs):
    return "\n".join(f"<tr><th>{escape(str(key))}</th><td>{escape(str(value))}</td></tr>"
                     for key, value in pairs if value not in (None, ""))


def header_section(document, title, summary):
    """The title, the environment, the totals per status and the timings."""
    environment = document.get("environment") if isinstance(document.get("environment"), dict) else {}
    backend = environment.get("backend") if isinstance(environment.get("backend"), dict) else {}
    versions = environment.get("versions") if isinstance(environment.get("versions"), dict) else {}
    timings = document.get("timings") if isinstance(document.get("timings"), dict) else {}
    backend_text = " ".join(str(backend[k]) for k in ("name", "version") if backend.get(k))
    extra = ", ".join(f"{k} {v}" for k, v in backend.items() if k not in ("name", "version") and v not in (None, ""))
    precision = environment.get("oracle_precision_bits")
    rows = [("backend", f"{backend_text} ({extra})" if extra else backend_text),
            ("backend spec", environment.get("spec")),
            ("device", environment.get("device")),
            *((name, version) for name, version in versions.items()),
            ("oracle", " ".join(part for part in (
                str(environment.get("oracle_version") or ""), f"({precision} bits)" if precision else "") if part)),
            ("oracle engine", environment.get("oracle_engine")),
            ("loss-conformance", environment.get("loss_conformance")), ("python", environment.get("python")),
            ("platform", environment.get("platform")),
            ("wall time", f"{timings['wall_s']:.1f} s" if isinstance(timings.get("wall_s"), (int, float)) else None),
            ("time in oracle / backend", _time_split(timings)), ("cases", timings.get("cases"))]
    totals = summary["totals"]
    total_text = ", ".join(f"{totals.get(s, 0)} {s}" for s in STATUSES)
    warnings = document.get("warnings") if isinstance(document.get("warnings"), list) else []
    warning_html = "".join(f"<li>{escape(str(w))}</li>" for w in warnings)
    return "\n".join([
        f"<h1>{escape(title)}</h1>", '<p class="note">loss-conformance report</p>',
        f"<p><strong>{len(document['results'])} checks:</strong> {escape(total_text)}</p>",
        f'<table class="env">{_rows(rows)}</table>',
        f"<h3>Warnings</h3><ul>{warning_html}</ul>" if warning_html else ""])


def _time_split(timings):
    oracle_s, backend_s = timings.get("oracle_s"), timings.get("backend_s")
    if not isinstance(oracle_s, (int, float)) or not isinstance(backend_s, (int, float)):
        return None
    cache = timings.get("cache") if isinstance(timings.get("cache"), dict) else {}
    return (f"{oracle_s:.1f} s / {backend_s:.1f} s (summed over workers; oracle cache "
            f"{cache.get('hits', 0)} hits, {cache.get('misses', 0)} misses)")


def summary_section(summary):
    """The function x dtype table of counts per status and the worst error over budget."""
    head = "".join(f"<th>{escape(c)}</th>" for c in ("function", "dtype", *STATUSES, "worst error / budget",
                                                      "grade", "worst case"))
    body = []
    for row in summary["table"]:
        cells = [f"<td>{escape(str(row.get('function')))}</td>", f"<td>{escape(str(row.get('dtype')))}</td>"]
        for status in STATUSES:
            count = row.get(status, 0)
            style = "num bad" if count and status in FAILING else "num zero" if not count else "num"
            cells.append(f'<td class="{style}">{escape(count)}</td>')
        worst = as_number(row.get("worst_error_over_budget"))
        over = worst is not None and not worst <= 1  # NaN counts as over the budget
        cells.append(f'<td class="num{" bad" if over else ""}">{escape(ratio_text(worst))}</td>')
        cells.append(f"<td>{escape(str(row.get('grade') or ''))}</td>")
        cells.append(f"<td><code>{escape(str(row.get('worst_case') or ''))}</code></td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    judged = "".join(f"<li>{escape(line)}</li>" for line in describe_judgement(summary.get("judged_by")))
    return "\n".join([
        "<h2>Summary per function and dtype</h2>",
        ('<p class="note">Counts of checks per status. The worst error is in units of its budget over the passed, '
         "failed and xpassed value checks (above 1 fails); highlighted cells need attention. The grade is the "
         'tightest summation order whose bound holds every measured error (<a href="docs/tolerances.md">'
         "docs/tolerances.md</a>).</p>"),
        f"<table><thead><tr>{head}</tr></thead><tbody>", *body, "</tbody></table>",
        *([f'<ul class="note">{judged}</ul>'] if judged else [])])


def _scale_text(axis, edge_name):
    """The caption's sentence on what is drawn at the ends of a plot's ratio axis."""
    floor = f"{axis.limits[0] * 1.5:g}"
    text = (f"Errors below {floor} of the budget, exact results (error 0) included, are drawn at {floor} (grey "
            "band). xfailed checks (declared deviations, listed above) are left out. The dashed line is the "
            "budget: anything beyond it fails.")
    if axis.off_scale:
        text += (f" Off the scale (beyond {axis.top:g} times the budget, or infinite or NaN): {axis.off_scale}, "
                 f"drawn at the {edge_name} edge on the dotted line.")
    return text


def plots_section(plot_counts):
    """The two plots as <img> with captions saying what is drawn and what is left out."""
    from .plots import DISTRIBUTION_PNG, EMPTY_SIZE_AT, SIZE_PNG

    checks, distribution_axis = plot_counts["distribution"]
    pairs, unsized, size_axis = plot_counts["size"]
    unsized_text = (f" {unsized} (case, dtype) pairs are left out because their records have no size (a results "
                    "file written before the size was recorded)." if unsized else "")
    return "\n".join([
        "<h2>Plots</h2>",
        f'<figure><img src="{DISTRIBUTION_PNG}" alt="Distribution of error over budget per function and dtype">',
        (f"<figcaption>Cumulative distribution of error / budget over the {checks} measured value checks "
         "(value and gradient values; statuses passed, failed and xpassed), one panel per function and one line "
         "per dtype: the height at x is the fraction of checks whose error is at most x times its budget. "
         f"{escape(_scale_text(distribution_axis, 'right'))}</figcaption></figure>"),
        f'<figure><img src="{SIZE_PNG}" alt="Worst error over budget against input size">',
        (f"<figcaption>For each of {pairs} (case, dtype) pairs, the worst error / budget over its value checks, "
         f"against the number of elements of the input (log scale; empty inputs are drawn at {EMPTY_SIZE_AT:g}), "
         "one panel per function, coloured by dtype; triangles are errors off the scale. "
         f"{escape(_scale_text(size_axis, 'top') + unsized_text)}</figcaption></figure>")])
