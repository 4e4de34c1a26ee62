"""Command line: ``loss-conformance`` (also ``python -m conformance``).

Exit status of ``run``: 0 when nothing failed unexpectedly, 1 when a check failed (or a strict expected
failure passed), 2 for a usage, configuration (case file, xfail file, case problem) or backend-loading error.
"""
import argparse
import math
import os
import sys
from pathlib import Path

from ..spec.dtypes import DTYPES
from ..spec.names import (ALL_FUNCTIONS, CONVENTIONS, ORACLE_TIMEOUT_S, PARITY_TARGETS, TIMEOUT_S, fraction_argument,
                          list_argument)
from ..verdict.results import EXIT_INTERRUPTED, EXIT_USAGE


def default_jobs():
    return max(1, min(8, os.cpu_count() or 1))


def _seconds(text):
    """An argparse type: a finite number of seconds greater than 0 (NaN or inf would never time out)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds greater than 0")
    return value


def _count(text):
    """An argparse type: an integer of at least 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer of at least 0")
    return value


def _add_selection(parser):
    parser.add_argument("--cases", nargs="+", type=Path, metavar="PATH",
                        help="Case files or directories to load instead of the default corpus (cases/).")
    parser.add_argument("--function", type=list_argument(ALL_FUNCTIONS, "function"), default=None,
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


def version_text():
    """loss-conformance's version, and the oracle's (it keys cached results) with the engine it would use."""
    import oracle

    from .. import __version__

    engine = oracle.engine_label() if hasattr(oracle, "engine_label") else "mpmath"
    return f"loss-conformance {__version__} (oracle {oracle.__version__}, engine {engine})"


class _VersionAction(argparse.Action):
    """--version, computed only when asked for: the oracle is not imported to build the parser."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="Print the versions and exit.")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def _shard(text):
    from ..corpus.shard import ShardError, parse_shard

    try:
        return parse_shard(text)
    except ShardError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _ranks(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"expected a number of ranks from 1 to 1024, got {text!r}")
    return value


def _parser():
    parser = argparse.ArgumentParser(
        prog="loss-conformance",
        description="Check loss-function implementations against an arbitrary-precision oracle.")
    parser.add_argument("--version", action=_VersionAction)
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
    run.add_argument("--parity", choices=PARITY_TARGETS, default=None,
                     help="For kernels that aim at torch's behaviour: on torch's declared deviations, a result "
                          "equal to torch's also passes (reported as a parity pass).")
    run.add_argument("--conventions", choices=CONVENTIONS, default=None,
                     help="Judge a torch-API namespace on torch's API conventions too (module classes, legacy "
                          "arguments, accepted target dtypes and shapes, ...), not only on the documented semantics; "
                          "torch and torch-compile always are.")
    run.add_argument("--check-determinism", dest="determinism", action="store_true", default=None,
                     help="Also check that a call repeated gives the same bits, and that a row of a 'none' loss or a "
                          "softmax gives the same bits alone and in a batch of 64 (default: on for torch on the CPU).")
    run.add_argument("--no-check-determinism", dest="determinism", action="store_false",
                     help="Skip the determinism and batch-invariance checks.")
    run.add_argument("--jobs", type=_count, default=default_jobs(), metavar="N",
                     help=f"Worker processes (default: the CPU count up to 8, here {default_jobs()}); 0 runs in "
                          "this process, without timeout or isolation.")
    run.add_argument("--timeout", type=_seconds, default=TIMEOUT_S, metavar="SECONDS",
                     help=f"Time allowed for one backend call before its case fails (default {TIMEOUT_S:g}).")
    run.add_argument("--world-size", type=_ranks, default=None, metavar="R",
                     help="The backend is a vocab-parallel implementation (an entry point of "
                          "loss_conformance.vocab_parallel: reference, reference-megatron, megatron-core; or "
                          "module.path[:attr]): run it on R ranks of torch.distributed (gloo on the CPU, nccl on "
                          "CUDA) with the vocabulary sharded, and check the gathered loss and gradient against the "
                          "unsharded oracle (docs/vocab-parallel.md).")
    run.add_argument("--sharding", choices=("uneven", "padded"), default=None,
                     help="With --world-size: torch.tensor_split's shards, or equal shards of a vocabulary padded "
                          "with -inf columns (default: the first the implementation takes).")
    run.add_argument("--rank-listen", default=None, metavar="HOST:PORT",
                     help="With --world-size: do not start the ranks; wait here for R ranks launched elsewhere "
                          "(torchrun ... -m conformance.backends.distributed.rank, docs/vocab-parallel.md).")
    run.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                     help="Run the K-th of N parts of the selection (balanced by cost, deterministic); "
                          "`loss-conformance merge` joins the parts' --json files into the whole run's.")
    run.add_argument("--oracle-timeout", type=_seconds, default=ORACLE_TIMEOUT_S, metavar="SECONDS",
                     help="Time allowed for a case's own work in a dtype (inputs, oracle, comparison) before it "
                          f"ends as a case error (default {ORACLE_TIMEOUT_S:g}; isolated runs only, as --timeout).")
    run.add_argument("--cache-dir", type=Path, default=None,
                     help="Where certified oracle results are kept (default: $LOSS_CONFORMANCE_CACHE or "
                          "~/.cache/loss-conformance/oracle).")
    run.add_argument("--no-cache", action="store_true", help="Compute every oracle result afresh; store nothing.")
    run.add_argument("--verify-cache", type=fraction_argument, default=0.0, metavar="FRACTION",
                     help="Re-certify this share (0 to 1) of the results read from the cache, chosen at random, and "
                          "use the fresh one where they differ (every read already checks each entry's digest; "
                          "docs/robustness.md).")
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
    mutants.add_argument("--skip-designs", action="store_true",
                         help="Do not run the correct designs of conformance/mutants/designs.py (their false alarms).")
    mutants.add_argument("--skip-torch", action="store_true",
                         help="Do not run torch itself (the check that the corpus raises no false alarm).")
    mutants.add_argument("--cache-dir", type=Path, default=None, help="Where certified oracle results are kept.")
    mutants.add_argument("--json", type=Path, metavar="PATH", help="Write the mutation results as JSON.")
    from . import fuzz, huge, outputs

    outputs.add_report_arguments(commands.add_parser(
        "report", help="Make an HTML report with plots from a results file (run --json)."))
    outputs.add_merge_arguments(commands.add_parser(
        "merge", help="Join the results files of the shards of one run (run --shard K/N --json) into one."))
    outputs.add_diff_arguments(commands.add_parser(
        "diff", help="Compare two results files: new failures, fixes, changed errors, cases added or removed; "
                     "exit status 1 on a regression."))
    fuzz.add_arguments(commands.add_parser(
        "fuzz", help="Check a backend on hypothesis-generated inputs; write each failure, shrunk, as a YAML case."))
    huge.add_arguments(commands.add_parser(
        "huge", help="The opt-in tier past 2**31 elements: cross_entropy and log_softmax in float16 and bfloat16 on "
                     "tensors of 2**31 + 2**20 elements built from a few distinct rows (docs/huge-tier.md)."))
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
    from ..expected import default_cache_dir
    from ..run.session import RunOptions

    return RunOptions(
        oracle_timeout=getattr(args, "oracle_timeout", ORACLE_TIMEOUT_S),  # docs/robustness.md
        backend=getattr(args, "backend", "torch"), device=getattr(args, "device", "cpu"), dtypes=args.dtype,
        functions=args.function, keyword=args.keyword, ids=tuple(args.ids), case_paths=tuple(args.cases or ()),
        xfail_paths=None if getattr(args, "xfails", None) is None else tuple(args.xfails),
        include_tags=tuple(args.include_tag), jobs=getattr(args, "jobs", 1), timeout=getattr(args, "timeout", TIMEOUT_S),
        cache_dir=None if getattr(args, "no_cache", False) else getattr(args, "cache_dir", None) or default_cache_dir(),
        tolerances=getattr(args, "tolerances", None), strict=getattr(args, "strict", True),
        parity=getattr(args, "parity", None), shard=getattr(args, "shard", None),
        conventions=getattr(args, "conventions", None), determinism=getattr(args, "determinism", None),
        verify_cache=getattr(args, "verify_cache", 0.0), world_size=getattr(args, "world_size", None),
        sharding=getattr(args, "sharding", None), rank_listen=getattr(args, "rank_listen", None))


def main(argv=None):
    """The command's exit status; Ctrl-C is EXIT_INTERRUPTED with one line, never a traceback."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(seed=args.seed, prec=args.prec)
    if args.command in ("report", "diff", "fuzz", "merge", "huge"):
        return args.handler(args)
    from .run import list_cases, mutants_command, run_command

    if args.command == "mutants":
        return mutants_command(args)
    return run_command(_options(args), args) if args.command == "run" else list_cases(_options(args), args)
