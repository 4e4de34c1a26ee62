"""The terminal form of a ``loss-conformance diff`` (diff.py computes it; diff_markdown.py writes Markdown for a
file given with --markdown): the verdict, the counts that are not zero, one table per non-empty list."""
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .diff import SHOWN

SECTIONS = (  # (key, title, kind of row)
    ("new_failures", "Regressions: new failures", "failure"),
    ("failing_in_added_pairs", "Failing in added cases or dtypes (nothing to compare with)", "failure"),
    ("still_failing", "Still failing", "failure"),
    ("fixes", "Fixes", "change"), ("status_changes", "Status changes", "change"),
    ("error_grew", "Errors that grew beyond the factor", "error"),
    ("error_shrank", "Errors that shrank beyond the factor", "error"),
)
COLUMNS = {"failure": ("case", "dtype", "check", "old -> new", "error u / budget"),
           "change": ("case", "dtype", "check", "change", "old -> new"),
           "error": ("case", "dtype", "check", "old u", "new u", "budget u", "ratio")}


def _number(value):
    return "" if value is None else f"{float(value):.3g}"


def _row(entry, kind):
    head = [entry["case"], entry["dtype"], entry["check"]]
    transition = f"{entry.get('old_status') or 'absent'} -> {entry.get('new_status') or 'absent'}"
    if kind == "failure":
        budget = "" if entry.get("error_u") is None else f"{_number(entry['error_u'])} / {_number(entry['budget_u'])}"
        return head + [transition, budget]
    if kind == "change":
        return head + [entry.get("kind", "fix").replace("_", " "), transition]
    return head + [_number(entry["old_error_u"]), _number(entry["error_u"]), _number(entry["budget_u"]),
                   _number(entry["ratio"])]


def _counts_table(diff):
    counts = diff["counts"]
    table = Table(title="counts", show_header=False)
    for name, value in counts.items():
        if isinstance(value, dict):
            for kind, number in value.items():
                if number:
                    table.add_row(f"{name.replace('_', ' ')}: {kind.replace('_', ' ')}", str(number))
        elif value:
            table.add_row(name.replace("_", " "), str(value))
    return table


def print_diff(diff, console=None):
    console = console or Console(file=sys.stdout, width=160, highlight=False)
    old, new = diff["old"], diff["new"]
    console.print(f"loss-conformance diff: {old['label']} -> {new['label']}", markup=False)
    style = "bold red" if diff["verdict"]["regression"] else "bold green"
    console.print(diff["verdict"]["text"], style=style, markup=False)
    changed = [row for row in diff["environment"] if row["differs"]]
    for row in changed:
        console.print(f"  {row['field']}: {row['old']} -> {row['new']}", markup=False)
    console.print(_counts_table(diff))
    for key, title, kind in SECTIONS:
        entries = diff.get(key) or []
        if not entries:
            continue
        table = Table(title=f"{title} ({len(entries)})")
        for column in COLUMNS[kind]:
            table.add_column(column)
        for entry in entries[:SHOWN]:
            table.add_row(*(Text(str(cell)) for cell in _row(entry, kind)))
        console.print(table)
        if len(entries) > SHOWN:
            console.print(f"... and {len(entries) - SHOWN} more (--markdown or --json lists them all)", markup=False)
    for key in ("cases_added", "cases_removed"):
        if diff.get(key):
            console.print(f"{key.replace('_', ' ')} ({len(diff[key])}): " + ", ".join(diff[key][:SHOWN]),
                          markup=False)
