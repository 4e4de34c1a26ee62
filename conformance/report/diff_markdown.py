"""The Markdown form of a ``loss-conformance diff`` (diff.py computes it; this only renders it)."""
from ..verdict.results import STATUSES
from .diff import LISTED, SHOWN, STATUS_CHANGE_KINDS
from .markdown import _code as _literal_code
from .markdown import _text


def _cell(value):
    """A table cell: floats to 3 significant digits, any text literal (markdown._text: no HTML, no markup) on
    one line; '' for None."""
    if value is None:
        return ""
    return f"{value:.3g}" if isinstance(value, float) else _text(value)


def _code(text, cell=True):
    return _literal_code(text, cell=cell) if text else ""


def _table(header, rows):
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _more(total):
    return ["", f"... and {total - SHOWN} more (the --json output lists them all)."] if total > SHOWN else []


def _section(title, header, entries, row):
    """'## title (n)' and a table of the first SHOWN entries; no lines when there are none."""
    if not entries:
        return []
    return ["", f"## {title} ({len(entries)})", "", *_table(header, [row(e) for e in entries[:SHOWN]]),
            *_more(len(entries))]


def _bullets(title, items):
    if not items:
        return []
    return ["", f"## {title} ({len(items)})", "", *(f"- {_code(item, cell=False)}" for item in items[:SHOWN]), *_more(len(items))]


def _transition(entry):
    text = f"{_cell(entry['old_status'] or 'absent')} -> {_cell(entry['new_status'] or 'absent')}"
    return text + (f" ({_cell(entry['note'])})" if entry.get("note") else "")


def _error_over_budget(entry):
    return "" if entry["error_u"] is None else f"{_cell(float(entry['error_u']))} / {_cell(entry['budget_u'])}"


def _failure_row(entry):
    return [_code(entry["case"]), _cell(entry["dtype"]), _cell(entry["check"]), _transition(entry),
            _error_over_budget(entry), _code(entry["reproduce"])]


def _change_row(entry):
    kind = entry.get("kind", "fix").replace("_", " ")
    return [_code(entry["case"]), _cell(entry["dtype"]), _cell(entry["check"]), _cell(kind), _transition(entry),
            _error_over_budget(entry)]


def _error_row(entry):
    return [_code(entry["case"]), _cell(entry["dtype"]), _cell(entry["check"]), _cell(float(entry["old_error_u"])),
            _cell(float(entry["error_u"])), _cell(entry["budget_u"]), _cell(float(entry["ratio"]))]


def _header_lines(diff):
    old, new = diff["old"], diff["new"]
    lines = [f"# loss-conformance diff: {_text(old['label'])} -> {_text(new['label'])}", "",
             f"**{_text(diff['verdict']['text'])}**", ""]
    rows = [["file", _code(old["path"]), _code(new["path"]), ""]]
    rows += [[_cell(r["field"]), _cell(r["old"]), _cell(r["new"]), "**changed**" if r["differs"] else ""]
             for r in diff["environment"] if r["old"] is not None or r["new"] is not None]
    lines += _table(["", "OLD", "NEW", ""], rows)
    if not diff["errors_comparable"]:
        note = "> The oracle differs between the runs: errors are measured against different references."
        lines += ["", note + " They are not strictly comparable."]
    return lines


def _count_lines(diff):
    counts, kinds, factor = diff["counts"], diff["counts"]["status_changes"], f"{diff['factor']:g}x"
    in_files = f"{counts['checks_old']} / {counts['checks_new']} / {counts['checks_in_both']}"
    rows = [("checks in OLD / NEW / both", in_files),
            ("new failures (regressions)", counts["new_failures"]),
            ("... of which declared deviations now passing", counts["declared_deviations_now_passing"]),
            ("still failing", counts["still_failing"]), ("fixes (failing -> passed)", counts["fixes"]),
            *((f"status changes: {kind.replace('_', ' ')}", kinds[kind]) for kind in STATUS_CHANGE_KINDS),
            (f"errors grew by more than {factor}", counts["error_grew"]),
            (f"errors shrank by more than {factor}", counts["error_shrank"]),
            ("cases added / removed", f"{counts['cases_added']} / {counts['cases_removed']}"),
            ("(case, dtype) pairs added / removed", f"{counts['pairs_added']} / {counts['pairs_removed']}"),
            ("failing checks in added pairs", counts["failing_in_added_pairs"])]
    totals = [[status, str(diff["old"]["totals"][status]), str(diff["new"]["totals"][status])] for status in STATUSES]
    return ["", "## Counts", "", *_table(["", "count"], [[name, str(value)] for name, value in rows]),
            "", *_table(["status", "OLD", "NEW"], totals)]


def _pair_lines(diff):
    """Pairs added to or removed from cases that both runs have (whole cases are listed on their own)."""
    added_cases, removed_cases = set(diff["cases_added"]), set(diff["cases_removed"])
    added = [f"{p['case']} [{p['dtype']}]" for p in diff["pairs_added"] if p["case"] not in added_cases]
    removed = [f"{p['case']} [{p['dtype']}]" for p in diff["pairs_removed"] if p["case"] not in removed_cases]
    return [*_bullets("dtypes added to cases in both runs", added),
            *_bullets("dtypes removed from cases in both runs", removed)]


def render_markdown(diff):
    """The diff as Markdown: title, verdict, environments, counts, then one section per non-empty category."""
    failure = ["case", "dtype", "check", "OLD -> NEW", "error u / budget", "reproduce"]
    change = ["case", "dtype", "check", "change", "OLD -> NEW", "error u / budget"]
    error = ["case", "dtype", "check", "OLD u", "NEW u", "budget u", "ratio"]
    factor = f"{diff['factor']:g}x"
    lines = [*_header_lines(diff), *_count_lines(diff),
             *_section("Regressions: new failures", failure, diff["new_failures"], _failure_row),
             *_section("Failing in added cases or dtypes (nothing to compare with)", failure,
                       diff["failing_in_added_pairs"], _failure_row),
             *_section("Still failing", failure, diff["still_failing"], _failure_row),
             *_section("Fixes", change, diff["fixes"], _change_row),
             *_section("Status changes", change, diff["status_changes"], _change_row),
             *_section(f"Errors that grew by more than {factor}", error, diff["error_grew"], _error_row),
             *_section(f"Errors that shrank by more than {factor}", error, diff["error_shrank"], _error_row),
             *_bullets("Cases added", diff["cases_added"]), *_bullets("Cases removed", diff["cases_removed"]),
             *_pair_lines(diff)]
    if not any(diff[name] for name in LISTED):
        lines += ["", "Nothing changed: no status, no error beyond the factor, no case or dtype added or removed."]
    return "\n".join(lines) + "\n"
