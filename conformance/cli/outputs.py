"""The ``report`` and ``diff`` subcommands: an HTML page from a results file, and the comparison of two.

Both read results files (``run --json``) and exit EXIT_USAGE with one "error:" line for a file they cannot use.
The page and the diff are computed in conformance/report/; matplotlib is imported only when ``report`` runs.
"""
import argparse
import math
import sys
from pathlib import Path

from ..report.diff import DEFAULT_ERROR_FLOOR_U, DEFAULT_FACTOR
from ..verdict.results import EXIT_OK, EXIT_USAGE


def has_module(name):
    """Whether an optional dependency (an extra of the package) can be imported."""
    import importlib.util

    return importlib.util.find_spec(name) is not None


def add_report_arguments(parser):
    parser.add_argument("results", type=Path, metavar="RESULTS",
                        help="The results file to report on, as written by run --json.")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR",
                        help="The directory to write index.html and its PNG plots into; it is created if missing.")
    parser.add_argument("--title", default=None, metavar="TEXT",
                        help="The page title (default: the backend's name, version and device from the results).")
    parser.set_defaults(handler=report_command)


def report_command(args):
    """Write the report; EXIT_OK, or EXIT_USAGE (after one "error:" line) for a bad results file or output path."""
    if not has_module("matplotlib"):
        print("error: the HTML report draws its plots with matplotlib, which is not installed: "
              "pip install 'loss-conformance[plots]'", file=sys.stderr)
        return EXIT_USAGE
    from ..report import plots
    from ..report.html import OutputPathError, check_records, default_title, prepare_output, render_page
    from ..corpus.resources import write_atomic
    from ..report.results_file import ResultsFileError, load_results

    try:
        document = load_results(args.results)
        check_records(args.results, document["results"])
        output = prepare_output(args.output)
    except (ResultsFileError, OutputPathError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    records = document["results"]
    try:
        plot_counts = {"distribution": plots.draw_error_distribution(records, output / plots.DISTRIBUTION_PNG),
                       "size": plots.draw_error_vs_size(records, output / plots.SIZE_PNG)}
        environment = document.get("environment")
        title = args.title or default_title(environment if isinstance(environment, dict) else {})
        write_atomic(output / "index.html", render_page(document, title, Path(args.results).name, plot_counts))
        _copy_documents(output)
    except OSError as error:
        print(f"error: {output}: cannot write the report ({error.strerror or error})", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {output / 'index.html'}")
    return EXIT_OK


def _copy_documents(output):
    """The documents that the page's spec links point to (docs/*.md), copied beside it: the report is read where
    the suite is not installed."""
    from ..report.html_sections import DOCS_DIR
    from ..corpus.resources import write_atomic
    from ..corpus.resources import data_path

    for document in sorted(data_path("docs").glob("*.md")):
        write_atomic(output / DOCS_DIR / document.name, document.read_bytes())


def _number_above(minimum, inclusive):
    """An argparse type: a finite float above minimum (or equal to it when inclusive)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (value >= minimum if inclusive else value > minimum)):
            bound = f"of at least {minimum:g}" if inclusive else f"greater than {minimum:g}"
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number {bound}")
        return value
    return parse


def add_diff_arguments(parser):
    parser.add_argument("old", type=Path, metavar="OLD", help="The results file (run --json) of the earlier run.")
    parser.add_argument("new", type=Path, metavar="NEW", help="The results file of the run to judge against OLD.")
    parser.add_argument("--factor", type=_number_above(1.0, inclusive=True), default=DEFAULT_FACTOR, metavar="F",
                        help="Report a check whose error grew or shrank by more than this factor between the two "
                             f"runs (default {DEFAULT_FACTOR:g}); only checks with an error in both files count.")
    parser.add_argument("--error-floor", type=_number_above(0.0, inclusive=False),
                        default=DEFAULT_ERROR_FLOOR_U, metavar="U",
                        help="Errors below this many units of roundoff are raised to it before the ratio is taken, "
                             f"so that changes within one rounding are not reported (default {DEFAULT_ERROR_FLOOR_U:g}).")
    parser.add_argument("--markdown", type=Path, metavar="PATH",
                        help="Write the report as Markdown to PATH (stdout gets a terminal rendering unless --quiet).")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help='Write the differences as JSON ("schema": "loss-conformance/diff") to PATH.')
    parser.add_argument("--fail-on-error-growth", action="store_true",
                        help="Also exit with status 1 when an error grew by more than the factor, even if it is "
                             "still within its budget.")
    parser.add_argument("--quiet", action="store_true", help="Print nothing to stdout.")
    parser.set_defaults(handler=diff_command)


def diff_command(args):
    """Print and write the diff; EXIT_OK (no regression), EXIT_FAILED (a regression) or EXIT_USAGE (bad input)."""
    from ..report.diff import compare
    from ..report.diff_markdown import render_markdown
    from ..corpus.resources import write_atomic
    from ..report.results_file import ResultsFileError, load_results, write_json

    try:
        documents = [load_results(path) for path in (args.old, args.new)]
        diff = compare(args.old, documents[0], args.new, documents[1], args.factor, args.error_floor,
                       args.fail_on_error_growth)
    except ResultsFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    markdown = render_markdown(diff)
    for path, write in ((args.json, lambda p: write_json(p, diff)), (args.markdown, lambda p: write_atomic(p, markdown))):
        if path is None:
            continue
        try:
            write(path)
        except OSError as error:
            print(f"error: {path}: cannot be written ({error.strerror or error})", file=sys.stderr)
            return EXIT_USAGE
    if not args.quiet:
        from ..report.diff_console import print_diff

        print_diff(diff)
    return diff["verdict"]["exit_status"]


def add_merge_arguments(parser):
    parser.add_argument("shards", type=Path, nargs="+", metavar="SHARD",
                        help="The results files of every shard of one run (run --shard K/N --json).")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="PATH",
                        help="The merged results file: what the unsharded run would have written.")
    parser.add_argument("--cases", nargs="+", type=Path, metavar="PATH",
                        help="The case files the run loaded, if not the default corpus (for the diagnosis).")
    parser.set_defaults(handler=merge_command)


def merge_command(args):
    """Write the merged results; EXIT_OK once written (the verdict is run's and diff's), EXIT_USAGE for shards
    that do not make one run."""
    from ..corpus.casefile import CaseFileError, load_cases
    from ..report.merge import merge_results
    from ..report.results_file import ResultsFileError, write_json

    try:
        document = merge_results(args.shards, load_cases(args.cases or None))
        write_json(args.output, document)
    except (ResultsFileError, CaseFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"error: {args.output}: cannot be written ({error.strerror or error})", file=sys.stderr)
        return EXIT_USAGE
    totals = document["summary"]["totals"]
    print(f"merged {len(args.shards)} shards into {args.output}: {document['summary']['checks']} checks, "
          + ", ".join(f"{count} {status}" for status, count in totals.items() if count))
    return EXIT_OK
