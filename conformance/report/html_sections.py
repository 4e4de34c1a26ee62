"""The parts of the HTML report that list checks: the failures grouped by (function, check, cause) with an
anchor per group and per failing check, every instance listed (folded, nothing capped); the diagnosis; and the
groups of declared deviations and skips, whose spec notes link to the documents copied beside the page."""
from collections import defaultdict
from html import escape as _escape_html

from ..verdict.results import FAILING, clean_text
from .groups import case_anchor, failure_groups, record_anchor

DOCS_DIR = "docs"  # where the report copies the documents that spec links point to (beside index.html)


def escape(text):
    """Text for HTML: &, <, >, and quotes as entities; control characters and lone surrogates, which a valid page
    cannot hold, as backslash escapes (clean_text)."""
    return _escape_html(clean_text(str(text)))


def spec_link(spec):
    """A spec reference ("docs/spec-notes.md#anchor") as a link into the copied documents, else as code."""
    spec = str(spec)
    if spec.startswith(f"{DOCS_DIR}/") and ".md" in spec:
        return f'<a href="{escape(spec)}"><code>{escape(spec)}</code></a>'
    return f"<code>{escape(spec)}</code>"


def _failure_detail(record):
    status = record["status"]
    parts = [f'<div class="failure" id="{record_anchor(record)}">',
             f'<h4><span class="status status-{escape(status)}">{escape(status.upper())}</span> '
             f'<a href="#{case_anchor(record["case"])}">{escape(record["case"])}</a> [{escape(record["dtype"])}] '
             f"{escape(record['check'])}</h4>"]
    if record.get("message"):
        parts.append(f"<pre>{escape(str(record['message']))}</pre>")
    if status == "xpassed":
        parts.append(f"<p>Expected to fail ({escape(str(record.get('reason') or 'no reason given'))}), but passed.</p>")
    if record.get("reproduce"):
        parts.append(f"<p>Reproduce:</p><pre>{escape(str(record['reproduce']))}</pre>")
    parts.append("</div>")
    return "\n".join(parts)


def failures_section(records):
    """Every failing check, grouped: a table of the groups (counts, links), then each group folded open."""
    groups = failure_groups(records)
    total = sum(len(group.records) for group in groups)
    parts = [f"<h2 id=\"failures\">Failures ({total} checks in {len(groups)} groups)</h2>"]
    if not groups:
        parts.append("<p>No failures: every check passed, was skipped or met a declared deviation.</p>")
        return "\n".join(parts)
    parts.append("<table><thead><tr><th>checks</th><th>function</th><th>check</th><th>cause</th></tr></thead><tbody>")
    for group in groups:
        cause = f'<a href="#{group.anchor}">{escape(group.cause)}</a>'
        parts.append(f'<tr><td class="num">{len(group.records)}</td><td>{escape(group.function)}</td>'
                     f"<td>{escape(group.check)}</td><td>{cause}</td></tr>")
    parts.append("</tbody></table>")
    for group in groups:
        links = ", ".join(f'<a href="#{record_anchor(r)}">{escape(r["case"])} [{escape(r["dtype"])}]</a>'
                          for r in group.records)
        parts += [f'<h3 id="{group.anchor}">{len(group.records)} x {escape(group.function)} {escape(group.check)}: '
                  f"{escape(group.cause)}</h3>", f'<p class="note">{links}</p>',
                  "<details><summary>every instance with its message and reproduction</summary>",
                  *(_failure_detail(record) for record in group.records), "</details>"]
    return "\n".join(parts)


def diagnosis_section(document):
    """The parameters whose values separate failures from passes, as the run printed them."""
    sentences = document.get("diagnosis") if isinstance(document.get("diagnosis"), dict) else {}
    items = [f"<li><code>{escape(function)}</code>: {escape(line)}</li>"
             for function, lines in sorted(sentences.items()) if isinstance(lines, list) for line in lines]
    if not items:
        return ""
    return "\n".join(["<h2>Diagnosis</h2>", '<p class="note">Parameters whose values separate the failing (case, '
                      "dtype) pairs from the passing ones.</p>", f"<ul>{''.join(items)}</ul>"])


def grouped_section(heading, records, key, empty_text):
    """A table of records grouped by one field (a deviation's reason, a skip's message), largest group first;
    "" when there are no records and no empty_text."""
    if not records and empty_text is None:
        return ""
    groups = defaultdict(list)
    for record in records:
        groups[str(record.get(key) or "(none given)")].append(record)
    parts = [f"<h2>{escape(heading)} ({len(records)} checks)</h2>"]
    if not records:
        return "\n".join(parts + [f"<p>{escape(empty_text)}</p>"])
    with_spec = any(r.get("spec") for r in records)  # declared deviations link their spec note; skips have none
    spec_head = "<th>spec</th>" if with_spec else ""
    parts.append(f"<table><thead><tr><th>checks</th><th>{escape(key)}</th>{spec_head}<th>in</th></tr></thead><tbody>")
    for text, members in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        spec = next((str(r["spec"]) for r in members if r.get("spec")), "")
        spec_cell = f"<td>{spec_link(spec) if spec else ''}</td>" if with_spec else ""
        where = ", ".join(sorted({f"{r['function']} {r['dtype']}" for r in members}))
        parts.append(f'<tr><td class="num">{len(members)}</td><td>{escape(text)}{_member_list(members)}</td>'
                     f"{spec_cell}<td>{escape(where)}</td></tr>")
    parts.append("</tbody></table>")
    return "\n".join(parts)


def _member_list(members):
    """Every check of a group, folded (HTML <details>, which needs no script)."""
    listed = "".join(f'<li><a href="#{case_anchor(r["case"])}"><code>{escape(r["case"])}</code></a> '
                     f"[{escape(r['dtype'])}] {escape(r['check'])}</li>" for r in members)
    return f"<details><summary>the {len(members)} checks</summary><ul>{listed}</ul></details>"


def _dtype_cell(dtype, checks):
    passed = sum(r["status"] == "passed" for r in checks)
    others = [f'<a href="#{record_anchor(r)}">{escape(r["check"])}</a> {escape(r["status"])}' if r["status"] in FAILING
              else f"{escape(r['check'])} {escape(r['status'])}" for r in checks if r["status"] != "passed"]
    return f"{escape(dtype)}: {passed} passed" + "".join(f", {other}" for other in others)


def cases_section(records):
    """One anchor per case (the target of every link to it): the statuses of its checks per dtype."""
    by_case = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_case[record["case"]][record["dtype"]].append(record)
    rows = [f'<tr id="{case_anchor(case)}"><td><code>{escape(case)}</code></td><td>'
            f"{'; '.join(_dtype_cell(dtype, checks) for dtype, checks in by_dtype.items())}</td></tr>"
            for case, by_dtype in by_case.items()]
    return "\n".join(["<h2>Cases</h2>", f"<details><summary>all {len(rows)} cases, with the statuses of their "
                      "checks per dtype</summary>", "<table><tbody>", *rows, "</tbody></table></details>"])
