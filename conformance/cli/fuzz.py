"""``loss-conformance fuzz``: check a backend on hypothesis-generated calls; write each failure, shrunk, as a case.

This module only defines the command line and imports nothing heavy: hypothesis, numpy and the backend are
imported when the command runs (conformance/fuzz/ is the fuzzer). docs/fuzzing.md describes the strategies,
profiles, the example database, the known-deviation rules and the found-case format.
"""
import argparse
import math
import sys
from pathlib import Path

from ..spec.dtypes import DTYPES
from ..spec.names import FUNCTIONS, list_argument
from ..verdict.results import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

PROGRESS_EVERY_S = 30.0


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (value > 0 and (kind is int or math.isfinite(value))):
            raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text}")
        return value
    return parse


def add_arguments(parser):
    """Define the options of ``fuzz`` and set its handler."""
    parser.add_argument("--backend", default="torch", metavar="SPEC", help="The backend to fuzz (as for run).")
    parser.add_argument("--device", default="cpu", help="Device for torch-based backends (default cpu).")
    parser.add_argument("--function", type=list_argument(FUNCTIONS, "function"), default=FUNCTIONS,
                        help="Comma-separated functions to fuzz (default: all five).")
    parser.add_argument("--dtype", type=list_argument(DTYPES, "dtype"), default=DTYPES,
                        help="Comma-separated dtypes (default: all four).")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--max-examples", type=_positive(int), metavar="N",
                        help="Generated calls to check (default: the profile's: ci 50, default 200, nightly 20000).")
    budget.add_argument("--minutes", type=_positive(float), metavar="M", help="Fuzz for M minutes instead.")
    parser.add_argument("--seed", type=int, metavar="S",
                        help="Fix hypothesis' seed: the same seed draws the same calls.")
    parser.add_argument("--profile", choices=("ci", "default", "nightly"), default="default",
                        help="Hypothesis settings: ci (derandomized, 50 examples, no database), default (200), "
                             "nightly (20000).")
    parser.add_argument("--database", type=Path, metavar="DIR",
                        help="Hypothesis example database, where failures are kept and tried first next time "
                             "(default: ~/.cache/loss-conformance/hypothesis, or "
                             "$LOSS_CONFORMANCE_CACHE/../hypothesis).")
    parser.add_argument("--no-database", action="store_true", help="Keep no example database.")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="Where found cases are written (default: cases/found of the corpus).")
    parser.add_argument("--timeout", type=_positive(float), metavar="SECONDS",
                        help="Run the backend in an isolated worker and fail a call that takes longer (default: "
                             "in-process, faster, but a hanging backend hangs the fuzzer).")
    parser.add_argument("--keep-going", action="store_true",
                        help="Continue after a finding: each distinct failing (function, check) is reported once.")
    parser.add_argument("--valid-only", action="store_true", help="Draw only valid calls (no error cases).")
    parser.add_argument("--full-range", action="store_true",
                        help="Draw values up to the largest of each dtype (default: 2**10 below it, so that sums of "
                             "drawn terms stay finite; at the very top torch's intermediates overflow).")
    parser.add_argument("--known", choices=("auto", "torch", "none"), default="auto",
                        help="Known-deviation rules: torch's (auto: for torch, torch-compile and the mutants) or none.")
    parser.add_argument("--shrink-seconds", type=_positive(float), default=120.0, metavar="S",
                        help="Stop shrinking a failure after S seconds and write the smallest so far (default 120).")
    parser.add_argument("--quiet", action="store_true", help="Print only findings and the summary line.")
    parser.set_defaults(handler=fuzz_command)


def _options(args):
    from ..corpus.casefile import CASES_DIR
    from ..fuzz.engine import FuzzOptions, default_database_dir

    database = None
    if not args.no_database and (args.database or args.profile != "ci"):
        database = args.database or default_database_dir()
    return FuzzOptions(
        backend=args.backend, device=args.device, functions=args.function, dtypes=args.dtype,
        max_examples=args.max_examples, minutes=args.minutes, seed=args.seed, profile=args.profile,
        database=database, out_dir=args.out or CASES_DIR / "found", timeout=args.timeout,
        keep_going=args.keep_going, invalid=not args.valid_only, full_range=args.full_range, known=args.known,
        shrink_seconds=args.shrink_seconds)


def _printer(quiet):
    """on_finding and on_progress callbacks that print to stdout / stderr."""
    import time

    last = [time.monotonic()]

    def on_finding(finding):
        record = finding.record
        first = (record.get("message") or "").strip().splitlines()
        print(f"FINDING {record['function']} {record['check']} ({record['status']}, {record['dtype']})"
              f"{': ' + first[0] if first else ''}")
        print(f"  case: {finding.path}")
        print(f"  reproduce: {finding.reproduce}")
        if finding.note:
            print(f"  note: {finding.note}")
        sys.stdout.flush()

    def on_progress(report):
        now = time.monotonic()
        if not quiet and now - last[0] > PROGRESS_EVERY_S:
            last[0] = now
            print(f"fuzz: {report.examples} examples, {len(report.findings)} findings so far", file=sys.stderr)

    return on_finding, on_progress


def summary_line(options, report):
    """One line: the examples run, examples per second, what the known rules explained, the findings."""
    declared = ", ".join(f"{name} {count}" for name, count in sorted(report.declared.items()))
    shrinking = f", {report.shrink_examples} of them while shrinking" if report.shrink_examples else ""
    return (f"fuzz {options.backend}: {report.examples} examples in {report.seconds:.1f} s "
            f"({report.rate:.1f} examples/s{shrinking}); {report.passed} passed; known deviations: "
            f"{declared or 'none'}; findings: {len(report.findings)}")


def fuzz_command(args):
    """Exit status 0 when nothing unexplained was found, 1 when a finding was written, 2 for a usage error."""
    from .outputs import has_module

    if not has_module("hypothesis"):
        print("error: the fuzzer draws its calls with hypothesis, which is not installed: "
              "pip install 'loss-conformance[fuzz]'", file=sys.stderr)
        return EXIT_USAGE
    from ..backends import BackendLoadError
    from ..corpus.casefile import CaseFileError
    from ..fuzz.engine import fuzz

    options = _options(args)
    on_finding, on_progress = _printer(args.quiet)
    try:
        report = fuzz(options, on_finding, on_progress)
    except (BackendLoadError, CaseFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fuzz: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary_line(options, report))
    return EXIT_FAILED if report.findings else EXIT_OK
