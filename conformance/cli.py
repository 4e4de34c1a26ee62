"""Command line: ``loss-conformance`` (also ``python -m conformance``)."""
import argparse
import sys


def _parser():
    parser = argparse.ArgumentParser(
        prog="loss-conformance",
        description="Check loss-function implementations against an arbitrary-precision oracle.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="Print certified oracle values for a few documented calls, beside torch's errors if installed.")
    demo.add_argument("--seed", type=int, default=0, help="Seed of the generated inputs (default 0).")
    demo.add_argument("--prec", type=int, default=None,
                      help="Working precision of the oracle in bits (default: the oracle's, 128).")
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(seed=args.seed, prec=args.prec)
    return 2
