"""The names and defaults the command line, the plugin and the run share, and the parser of a comma-separated
list of names: each one here, once.

Light on purpose (no numpy, no torch): the command line imports it while it builds its parser.
"""
import argparse

FUNCTIONS = ("softmax", "log_softmax", "nll_loss", "cross_entropy", "kl_div")  # each has a record (spec/)
# Functions beyond the first five, each with a record too: torch's F.linear_cross_entropy (torch >= 2.13)
EXTENDED_FUNCTIONS = ("linear_cross_entropy",)
ALL_FUNCTIONS = FUNCTIONS + EXTENDED_FUNCTIONS
TIMEOUT_S = 60.0  # a backend call's time limit in an isolated worker (--timeout)
ORACLE_TIMEOUT_S = 600.0  # a case's own work in a dtype outside backend calls (--oracle-timeout; robustness.md)
PARITY_TARGETS = ("torch",)  # --parity: the implementations whose declared deviations a kernel may share
CONVENTIONS = ("torch",)  # --conventions: the API conventions a backend may be judged on


def fraction_argument(text):
    """An argparse type: a number from 0 to 1 (NaN is not)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 1")
    return value


def list_argument(allowed, what):
    """An argparse type: a comma-separated list of names from ``allowed``, as a tuple; else an error naming them."""
    def parse(text):
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        unknown = [v for v in values if v not in allowed]
        if unknown or not values:
            raise argparse.ArgumentTypeError(
                f"{', '.join(map(repr, unknown)) or repr(text)} is not a {what}; expected a comma-separated list of "
                f"{', '.join(allowed)}")
        return values
    return parse
