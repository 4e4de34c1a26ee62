"""Terminal output of a run: progress while it runs (a bar on a terminal, a line every few seconds in a log), the
summary table, failures."""
import sys
import time
from collections import Counter

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..verdict.results import FAILING, MEASURED
from .judgement import describe_judgement

SHOWN_FAILURES = 20  # failure details printed in full; the JSON report has them all


PROGRESS_EVERY_S = 10.0  # a progress line this often when stderr is not a terminal (CI logs)


class ProgressLines:
    """The progress bar's interface for a log: one line every PROGRESS_EVERY_S seconds, and one at the end."""

    def __init__(self, stream=None, every=PROGRESS_EVERY_S):
        self.stream, self.every = stream or sys.stderr, every
        self.description, self.total, self.done, self.status = "", 0, 0, ""
        self.start = self.last = time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.done:
            self._line()

    def add_task(self, description, total, status=""):
        self.description, self.total, self.status = description, total, status
        return 0

    def update(self, task, advance=0, status=None):
        self.done += advance
        self.status = self.status if status is None else status
        if time.monotonic() - self.last >= self.every:
            self._line()

    def _line(self):
        self.last = time.monotonic()
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        status = f", {self.status}" if self.status else ""
        print(f"loss-conformance: {self.description}: {self.done}/{self.total} pairs{share}{status}, "
              f"{self.last - self.start:.0f} s", file=self.stream, flush=True)


def progress_bar(total, enabled):
    """A rich progress bar on a terminal; progress lines in a log (CI); nothing when not enabled (--quiet)."""
    console = Console(stderr=True)
    if enabled and not console.is_terminal:
        return ProgressLines()
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console,
                    disable=not enabled, transient=False)


def _ratio(value):
    return "" if value is None else f"{value:.3g}"


def print_summary(summary, console=None):
    console = console or Console(file=sys.stdout, width=140)
    table = Table(title="loss-conformance: checks per function and dtype")
    for column in ("function", "dtype", "passed", "failed", "xfailed", "xpassed", "skipped", "error",
                   "worst error / budget", "grade"):
        table.add_column(column, justify="left" if column in ("function", "dtype", "grade") else "right")
    for row in summary["table"]:
        table.add_row(row["function"], row["dtype"], *(str(row[s]) for s in
                      ("passed", "failed", "xfailed", "xpassed", "skipped", "error")),
                      _ratio(row["worst_error_over_budget"]), row.get("grade") or "")
    console.print(table)
    for line in describe_judgement(summary.get("judged_by")):
        console.print(line, markup=False)
    totals = summary["totals"]
    console.print(f"{summary['checks']} checks: " + ", ".join(f"{totals[s]} {s}" for s in totals if totals[s]))
    line = coverage_line(summary.get("coverage"))
    if line:
        console.print(line, markup=False)
    if summary.get("parity"):
        console.print(f"parity: {summary['parity']} checks passed as equal to torch's declared deviations",
                      markup=False)


def coverage_line(coverage):
    """The coverage line, e.g. "coverage: 1200 of 1500 applicable pairs ran (80.0 %); 300 unsupported, ...",
    or None when every pair ran."""
    if not coverage or coverage["ran"] == coverage["pairs"]:
        return None
    share = "" if coverage["share"] is None else f" ({100 * coverage['share']:.1f} %)"
    parts = [f"{coverage[key]} {label}" for key, label in (
        ("unsupported", "unsupported"), ("not_applicable", "not applicable (torch API conventions, layouts)"),
        ("skipped_otherwise", "skipped for another reason")) if coverage[key]]
    applicable = coverage["pairs"] - coverage["not_applicable"]
    return f"coverage: {coverage['ran']} of {applicable} applicable pairs ran{share}; " + ", ".join(parts)


def print_failures(records, console=None):
    console = console or Console(file=sys.stdout, width=140, highlight=False)
    bad = [r for r in records if r["status"] in FAILING]
    for record in bad[:SHOWN_FAILURES]:
        console.print(f"[bold red]{record['status'].upper()}[/] {record['case']} [{record['dtype']}] "
                      f"{record['check']}", markup=True)
        if record.get("message"):
            console.print(record["message"], markup=False)
        if record["status"] == "xpassed":
            console.print(f"expected to fail ({record.get('reason')}), but passed", markup=False)
        if record.get("reproduce"):
            console.print(f"reproduce: {record['reproduce']}", markup=False, soft_wrap=True)
    if len(bad) > SHOWN_FAILURES:
        console.print(f"... and {len(bad) - SHOWN_FAILURES} more (see the JSON report)", markup=False)


def print_deviations(records, console=None):
    """The declared deviations that this run met: one line per reason, with how many checks it covered."""
    console = console or Console(file=sys.stdout, width=140, highlight=False)
    by_reason = Counter(r.get("reason", "") for r in records if r["status"] == "xfailed")
    if by_reason:
        console.print(f"declared deviations met ({sum(by_reason.values())} checks xfailed):", markup=False)
    for reason, count in sorted(by_reason.items(), key=lambda item: -item[1]):
        console.print(f"  {count:5d}  {reason}", markup=False)


def print_diagnosis(sentences, console=None):
    console = console or Console(file=sys.stdout, width=140, highlight=False)
    for function, lines in sorted(sentences.items()):
        for line in lines:
            console.print(f"{function}: {line}", markup=False)


def budget_table(records):
    """{(function, dtype, check): (worst error_u, its budget_u, case)} over the measured value checks."""
    worst = {}
    for record in records:
        if record["status"] not in MEASURED or record.get("error_u") is None:
            continue
        key = (record["function"], record["dtype"], record["check"].removesuffix(".value"))
        ratio = record["error_u"] / record["budget_u"]
        if key not in worst or ratio > worst[key][0]:
            worst[key] = (ratio, record["error_u"], record["budget_u"], record["case"])
    return worst


def print_budgets(records, console=None):
    """Per function, dtype and check: the worst error met and the budget, in units of the dtype's roundoff."""
    console = console or Console(file=sys.stdout, width=140)
    table = Table(title="worst error against budget (units of u of the dtype)")
    for column in ("function", "dtype", "check", "worst error", "budget", "margin", "worst case"):
        table.add_column(column, justify="right" if column in ("worst error", "budget", "margin") else "left")
    for (function, dtype, check), (ratio, error, budget, case) in sorted(budget_table(records).items()):
        table.add_row(function, dtype, check, f"{error:.3g}", f"{budget:g}",
                      f"{1 / ratio:.3g}x" if ratio else "inf", case.split("/", 1)[1])
    console.print(table)


def print_mutants(results, score, torch_alarms, designs=None, console=None):
    """The mutation table: each mutant killed or survived, with the first check that killed it."""
    console = console or Console(file=sys.stdout, width=160)
    table = Table(title="mutants: deliberately broken torch, each must fail the corpus")
    for column in ("mutant", "family", "result", "first killing check", "checks run"):
        table.add_column(column, justify="right" if column == "checks run" else "left")
    for result in results:
        kill = result.first_kill
        where = escape(f"{kill['case']} [{kill['dtype']}] {kill['check']}") if result.killed else ""
        table.add_row(result.name, result.family, "killed" if result.killed else "[bold red]SURVIVED[/]", where,
                      str(result.checks_run))
    console.print(table)
    console.print(f"mutation score: {score['killed']}/{score['total']} killed", markup=False)
    if torch_alarms is not None:
        alarms, checked = torch_alarms
        console.print(f"torch: {len(alarms)} unexpected failures in {checked} checks (false alarms)", markup=False)
        for record in alarms[:10]:
            console.print(f"  {record['case']} [{record['dtype']}] {record['check']}: {record['status']}",
                          markup=False)
    for name, (alarms, checked) in (designs or {}).items():
        console.print(f"correct design {name}: {len(alarms)} unexpected failures in {checked} checks (false alarms)",
                      markup=False)
        for record in alarms[:5]:
            console.print(f"  {record['case']} [{record['dtype']}] {record['check']}: {record['status']}",
                          markup=False)
