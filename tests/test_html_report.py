"""The ``report`` command: the HTML page (table, failures, deviations, escaping), its PNG plots and bad input."""
import math
import re

import pytest

from conformance.cli import main
from conformance.report import plots
from conformance.report.results_file import results_document, write_json
from conformance.verdict.results import summarize

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCRIPT_MESSAGE = "Bad results (1 out of 4)\n  (2,) => <script>alert(1)</script> != 0.5"
REPRODUCE = "loss-conformance run --backend torch --device cpu --id softmax/rows --dtype float32"
DEVIATION = "torch 2.13 returns NaN where the docs give 0 & more"
SPEC = "docs/spec-notes.md#zero-coefficients-0--log-0--0"


def record(case, dtype, check, status, **fields):
    return {"case": case, "function": case.split("/")[0], "dtype": dtype, "check": check, "status": status,
            **fields}


def synthetic_records():
    """One record or more of every status, with an exact (0) error, an infinite one and one without a size."""
    return [
        record("softmax/rows", "float32", "value", "passed", size=12, error_u=0.0, budget_u=8.0, n=12, bad=0),
        record("softmax/rows", "float32", "grad_input.value", "failed", size=12, error_u=math.inf, budget_u=8.0,
               n=12, bad=1, message=SCRIPT_MESSAGE, reproduce=REPRODUCE),
        record("softmax/empty", "float16", "value", "passed", size=0, error_u=0.5, budget_u=2.0, n=0, bad=0),
        record("cross_entropy/ls", "float64", "value", "xfailed", size=6, error_u=math.nan, budget_u=8.0,
               reason=DEVIATION, spec=SPEC, message="NaN/inf pattern differs"),
        record("cross_entropy/ls", "float64", "grad_input.value", "xfailed", size=6, reason=DEVIATION, spec=SPEC),
        record("cross_entropy/w", "float64", "value", "xpassed", size=6, error_u=4.0, budget_u=8.0,
               reason="a deviation that no longer happens", reproduce="loss-conformance run --id cross_entropy/w"),
        record("nll_loss/oob", "float32", "inputs", "error", message="the oracle contradicts the case"),
        record("nll_loss/rows", "bfloat16", "call", "skipped", size=4, message="the backend lacks bfloat16"),
        record("kl_div/old", "float64", "value", "passed", error_u=2.0, budget_u=8.0, n=4, bad=0),  # no size
    ]


def write_results(path, records):
    environment = {"backend": {"name": "torch", "version": "2.13.0+cpu", "device": "cpu"}, "device": "cpu",
                   "oracle_version": "0.1.0", "oracle_precision_bits": 128,
                   "versions": {"torch": "2.13.0+cpu", "numpy": "2.4.6", "mpmath": "1.3.0"},
                   "python": "3.11.7", "platform": "Linux-test"}
    timings = {"wall_s": 12.5, "oracle_s": 3.0, "backend_s": 1.0, "cache": {"hits": 3, "misses": 1}, "cases": 7}
    write_json(path, results_document(environment, records, summarize(records), timings, []))
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """(exit status, output directory, index.html text) of one report on the synthetic results."""
    base = tmp_path_factory.mktemp("report")
    results = write_results(base / "results.json", synthetic_records())
    status = main(["report", str(results), "-o", str(base / "out")])
    return status, base / "out", (base / "out" / "index.html").read_text(encoding="utf-8")


def test_report_exits_0_and_writes_the_page_and_both_plots(report):
    status, output, _ = report
    assert status == 0
    for name in ("index.html", plots.DISTRIBUTION_PNG, plots.SIZE_PNG):
        assert (output / name).is_file()
    for name in (plots.DISTRIBUTION_PNG, plots.SIZE_PNG):
        assert (output / name).read_bytes().startswith(PNG_SIGNATURE)
    assert not [p.name for p in output.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_page_has_header_with_title_environment_totals_and_wall_time(report):
    html = report[2]
    assert "<title>torch 2.13.0+cpu on cpu</title>" in html
    assert "0.1.0 (128 bits)" in html and "<th>mpmath</th><td>1.3.0</td>" in html
    assert "9 checks:</strong> 3 passed, 1 failed, 2 xfailed, 1 xpassed, 1 skipped, 1 error" in html
    assert "12.5 s" in html
    assert "from <code>results.json</code>" in html


def test_summary_table_has_a_row_per_function_and_dtype_with_counts_and_highlights(report):
    html = report[2]
    softmax_row = next(line for line in html.splitlines() if line.startswith("<tr><td>softmax</td><td>float32"))
    # passed 1, failed 1 (highlighted), the rest 0; the worst error is inf, over the budget
    assert '<td class="num">1</td><td class="num bad">1</td>' in softmax_row
    assert '<td class="num bad">inf</td>' in softmax_row and "softmax/rows [grad_input.value]" in softmax_row
    rows = [line for line in html.splitlines() if line.startswith("<tr><td>")]
    assert [r.split("</td>")[0][8:] + " " + r.split("</td>")[1][4:] for r in rows[:6]] == [
        "cross_entropy float64", "kl_div float64", "nll_loss bfloat16", "nll_loss float32", "softmax float16",
        "softmax float32"]


def test_failures_show_escaped_message_and_reproduction(report):
    html = report[2]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; != 0.5" in html
    assert f"<pre>{REPRODUCE}</pre>" in html
    assert "Failures (3 checks in 3 groups)" in html  # failed, xpassed and error, each its own cause
    assert "Expected to fail (a deviation that no longer happens), but passed." in html
    assert "the oracle contradicts the case" in html


def test_declared_deviations_are_grouped_by_reason_with_spec(report):
    html = report[2]
    assert "Declared deviations met (xfailed) (2 checks)" in html
    assert '<td class="num">2</td><td>torch 2.13 returns NaN where the docs give 0 &amp; more' in html
    assert f"<code>{SPEC}</code>" in html
    assert "the backend lacks bfloat16" in html  # the skip reason has its own group


def test_plot_captions_say_what_is_left_out(report):
    html = report[2]
    assert '<img src="error-distribution.png"' in html and '<img src="error-vs-size.png"' in html
    # measured value checks: the 3 passed ones, the failed and the xpassed one; xfailed are left out
    assert "over the 5 measured value checks" in html
    assert "For each of 3 (case, dtype) pairs" in html
    assert "1 (case, dtype) pairs are left out because their records have no size" in html
    # the infinite error is off the scale in both plots (the axis ends at 10 times the budget here)
    assert html.count("Off the scale (beyond 10 times the budget, or infinite or NaN): 1, drawn at the") == 2


def test_page_is_well_formed(report):
    """Every element opened is closed, in order (void elements aside): a browser renders what the test read."""
    from html.parser import HTMLParser

    class TagChecker(HTMLParser):
        def __init__(self):
            super().__init__()
            self.open_tags, self.problems = [], []

        def handle_starttag(self, tag, attrs):
            if tag not in ("meta", "img", "br"):
                self.open_tags.append(tag)

        def handle_endtag(self, tag):
            if not self.open_tags or self.open_tags.pop() != tag:
                self.problems.append(tag)

    checker = TagChecker()
    checker.feed(report[2])
    assert checker.problems == [] and checker.open_tags == []


def test_same_results_give_byte_identical_plots(report, tmp_path):
    _, first, _ = report
    results = write_results(tmp_path / "again.json", synthetic_records())
    assert main(["report", str(results), "-o", str(tmp_path / "again"), "--title", "Mine"]) == 0
    for name in (plots.DISTRIBUTION_PNG, plots.SIZE_PNG):
        assert (tmp_path / "again" / name).read_bytes() == (first / name).read_bytes()
    assert "<h1>Mine</h1>" in (tmp_path / "again" / "index.html").read_text(encoding="utf-8")


def test_every_failure_is_listed_grouped_with_links_and_nothing_is_cut(tmp_path):
    failures = [record(f"softmax/c{i}", "float64", "value", "failed", message=f"m{i}") for i in range(205)]
    results = write_results(tmp_path / "many.json", failures)
    assert main(["report", str(results), "-o", str(tmp_path / "out")]) == 0
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "<pre>m0</pre>" in html and "<pre>m204</pre>" in html  # every instance, none cut
    assert "Failures (205 checks in" in html
    ids = set(re.findall(r'id="([^"]+)"', html))
    links = set(re.findall(r'href="#([^"]+)"', html))
    assert links and links <= ids  # every link has its anchor
    assert "over the 0 measured value checks" in html


def test_unreadable_results_file_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["report", str(bad), "-o", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and str(bad) in error and "is not JSON" in error
    assert error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_record_without_a_status_exits_2(tmp_path, capsys):
    results = tmp_path / "r.json"
    no_status = {"case": "softmax/x", "function": "softmax", "dtype": "float32", "check": "value"}
    write_json(results, results_document({}, [no_status], {}, {}, []))
    assert main(["report", str(results), "-o", str(tmp_path / "out")]) == 2
    assert "record 0 has no status" in capsys.readouterr().err


def test_record_with_a_non_numeric_error_exits_2(tmp_path, capsys):
    results = tmp_path / "r.json"
    bad = record("softmax/x", "float32", "value", "passed", error_u="small", budget_u=8.0)
    write_json(results, results_document({}, [bad], {}, {}, []))
    assert main(["report", str(results), "-o", str(tmp_path / "out")]) == 2
    assert "record 0 has error_u 'small', which is not a number" in capsys.readouterr().err


def test_output_path_that_is_a_file_exits_2(tmp_path, capsys):
    results = write_results(tmp_path / "r.json", synthetic_records()[:1])
    occupied = tmp_path / "occupied"
    occupied.write_text("a file")
    assert main(["report", str(results), "-o", str(occupied)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "is not a directory" in error
    assert occupied.read_text() == "a file"


def test_budget_ratio_and_worst_by_case():
    records = synthetic_records()
    assert [plots.budget_ratio(r) for r in records] == [0.0, math.inf, 0.25, None, None, 0.5, None, None, 0.25]
    points, unsized = plots.worst_by_case(records)
    assert points == {"softmax": {"float32": [(12, math.inf)], "float16": [(0, 0.25)]},
                      "cross_entropy": {"float64": [(6, 0.5)]}}
    assert unsized == 1
