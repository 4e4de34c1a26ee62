"""Command line: ``loss-conformance`` (also ``python -m conformance``).

Exit status of ``run``: 0 when nothing failed unexpectedly, 1 when a check failed (or a strict expected
failure passed), 2 for a usage, configuration (case file, xfail file, case problem) or backend-loading error.
"""
import argparse
import os
import sys
from pathlib import Path

from ..dtypes import DTYPES
from ..names import FUNCTIONS, list_argument
from ..results import EXIT_USAGE


def default_jobs():
    return max(1, min(8, os.cpu_count() or 1))


def _add_selection(parser):
    parser.add_argument("--cases", nargs="+", type=Path, metavar="PATH",
                        help="Case files or directories to load instead of the default corpus (cases/).")
    parser.add_argument("--function", type=list_argument(FUNCTIONS, "function"), default=None,
                        help="Comma-separated functions to check (default: all).")
    parser.add_argument("--dtype", type=list_argument(DTYPES, "dtype"), default=DTYPES,
                        help=f"Comma-separated dtypes to check (default: {','.join(DTYPES)}).")
    parser.add_argument("-k", dest="keyword", default="", metavar="EXPR",
                        help="Select cases whose id, dtype or tags match a keyword expression such as "
                             "'cross_entropy and not float16' (names match as case-insensitive substrings).")
    parser.add_argument("--id", dest="ids", action="append", default=[], metavar="FULL_ID",
                        help="Run exactly this case id (function/case-id); may be repeated.")
    parser.add_argument("--include-tag", action="append", default=[], metavar="TAG",
                        help="Also run cases tagged TAG, which are opt-in (large, slow).")


def _parser():
    parser = argparse.ArgumentParser(
        prog="loss-conformance",
        description="Check loss-function implementations against an arbitrary-precision oracle.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("run", help="Run the cases against a backend and report.")
    run.add_argument("--backend", default="torch", metavar="SPEC",
                     help="torch (default), torch-compile, an installed loss_conformance.backends entry point, "
                          "or module.path[:attr] naming torch.nn.functional-compatible callables.")
    run.add_argument("--device", default="cpu", help="Device for torch-based backends: cpu, cuda, cuda:N or mps.")
    _add_selection(run)
    run.add_argument("--xfails", nargs="*", type=Path, default=None, metavar="FILE",
                     help="Expected-deviation files (default: cases/xfails/<backend>.yaml if it exists; "
                          "give the option with no file to use none).")
    run.add_argument("--not-strict", dest="strict", action="store_false",
                     help="Report an expected failure that passes without failing the run.")
    run.add_argument("--jobs", type=int, default=default_jobs(), metavar="N",
                     help=f"Worker processes (default: the CPU count up to 8, here {default_jobs()}); 0 runs in "
                          "this process, without timeout or isolation.")
    run.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                     help="Time allowed for one backend call before its case fails (default 60).")
    run.add_argument("--cache-dir", type=Path, default=None,
                     help="Where certified oracle results are kept (default: $LOSS_CONFORMANCE_CACHE or "
                          "~/.cache/loss-conformance/oracle).")
    run.add_argument("--no-cache", action="store_true", help="Compute every oracle result afresh; store nothing.")
    run.add_argument("--tolerances", type=Path, default=None, help="Budget file (default: cases/tolerances.yaml).")
    run.add_argument("--json", type=Path, metavar="PATH",
                     help="Write the results as JSON (docs/results.md). Results are streamed to PATH.partial as "
                          "they arrive, so an interrupted run keeps what it finished.")
    run.add_argument("--resume", action="store_true",
                     help="Continue the run whose results --json names: (case, dtype) pairs already recorded "
                          "there (or in its .partial file) are kept, not run again.")
    run.add_argument("--junit", type=Path, metavar="PATH", help="Write the results as JUnit XML for CI systems.")
    run.add_argument("--markdown", type=Path, metavar="PATH",
                     help="Write a Markdown summary (fits a CI step summary such as $GITHUB_STEP_SUMMARY).")
    run.add_argument("--quiet", action="store_true", help="No progress bar and no failure details.")
    run.add_argument("--show-budgets", action="store_true",
                     help="Also print, per function, dtype and check, the worst error met and its budget.")
    mutants = commands.add_parser(
        "mutants", help="Run the corpus against every mutant (a deliberately broken torch) and against torch: "
                        "the mutation score and the false alarms.")
    mutants.add_argument("--mutant", action="append", default=[], metavar="NAME",
                         help="Run only this mutant (may be repeated; default: all of conformance/mutants).")
    mutants.add_argument("--cases", nargs="+", type=Path, metavar="PATH",
                         help="Case files or directories instead of the default corpus.")
    mutants.add_argument("--skip-torch", action="store_true",
                         help="Do not run torch itself (the check that the corpus raises no false alarm).")
    mutants.add_argument("--cache-dir", type=Path, default=None, help="Where certified oracle results are kept.")
    mutants.add_argument("--json", type=Path, metavar="PATH", help="Write the mutation results as JSON.")
    from . import fuzz, outputs

    outputs.add_report_arguments(commands.add_parser(
        "report", help="Make an HTML report with plots from a results file (run --json)."))
    outputs.add_diff_arguments(commands.add_parser(
        "diff", help="Compare two results files: new failures, fixes, changed errors, cases added or removed; "
                     "exit status 1 on a regression."))
    fuzz.add_arguments(commands.add_parser(
        "fuzz", help="Check a backend on hypothesis-generated inputs; write each failure, shrunk, as a YAML case."))
    cases = commands.add_parser("cases", help="List and validate the cases.")
    _add_selection(cases)
    cases.add_argument("--count", action="store_true", help="Print only the number of (case, dtype) pairs.")
    demo = commands.add_parser(
        "demo", help="Print certified oracle values for a few documented calls, beside torch's errors if installed.")
    demo.add_argument("--seed", type=int, default=0, help="Seed of the generated inputs (default 0).")
    demo.add_argument("--prec", type=int, default=None,
                      help="Working precision of the oracle in bits (default: the oracle's, 128).")
    return parser


def _options(args):
    from ..reference import default_cache_dir
    from ..session import RunOptions

    return RunOptions(
        backend=getattr(args, "backend", "torch"), device=getattr(args, "device", "cpu"), dtypes=args.dtype,
        functions=args.function, keyword=args.keyword, ids=tuple(args.ids), case_paths=tuple(args.cases or ()),
        xfail_paths=None if getattr(args, "xfails", None) is None else tuple(args.xfails),
        include_tags=tuple(args.include_tag), jobs=getattr(args, "jobs", 1), timeout=getattr(args, "timeout", 60.0),
        cache_dir=None if getattr(args, "no_cache", False) else getattr(args, "cache_dir", None) or default_cache_dir(),
        tolerances=getattr(args, "tolerances", None), strict=getattr(args, "strict", True))


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(seed=args.seed, prec=args.prec)
    if args.command in ("report", "diff", "fuzz"):
        return args.handler(args)
    from .run import list_cases, mutants_command, run_command

    if args.command == "mutants":
        return mutants_command(args)
    return run_command(_options(args), args) if args.command == "run" else list_cases(_options(args), args)
