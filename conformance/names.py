"""The functions the suite checks, and the command-line parser of a comma-separated list of names.

Light on purpose (no numpy, no torch): the command line imports it while it builds its parser.
"""
import argparse

FUNCTIONS = ("softmax", "log_softmax", "nll_loss", "cross_entropy", "kl_div")


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
