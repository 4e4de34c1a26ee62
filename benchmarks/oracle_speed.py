"""Throughput of the mpmath loss oracle, in input elements (N * C) per second.

Measures, on seeded float64 inputs (numpy default_rng(0)) with int64 class-index targets:
  * cross_entropy forward, reduction='mean', for N x C with C in {10, 1000, 32768};
  * cross_entropy_vjp (the gradient with respect to the input) on the same shapes;
  * certify(cross_entropy, ...), which evaluates at prec and 2 * prec and checks agreement.
N is chosen so that each timed call takes about 1-3 s; --quick uses about 20x smaller N for a smoke run.
Each row is one call, timed with time.perf_counter (input conversion to mpf included).

Run from the repository root:
    python benchmarks/oracle_speed.py [--quick] [--prec BITS]
"""
import argparse
import sys
import time
from pathlib import Path

import mpmath
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # make `oracle` importable when run as a script
from oracle import DEFAULT_PREC, certify, cross_entropy, cross_entropy_vjp  # noqa: E402

# (N, C) per measurement: full runs take ~1-3 s each at 128 bits with gmpy2; quick runs are a smoke test.
FULL_SHAPES = {"forward": [(8000, 10), (80, 1000), (2, 32768)], "certify": [(40, 1000)]}
QUICK_SHAPES = {"forward": [(400, 10), (4, 1000), (1, 32768)], "certify": [(2, 1000)]}


def seeded_problem(n_rows, n_classes):
    """Logits (N, C) and int64 class indices (N,) from numpy default_rng(0)."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((n_rows, n_classes))
    target = rng.integers(0, n_classes, size=n_rows, dtype=np.int64)
    return logits, target


def run_forward(logits, target, prec):
    cross_entropy(logits, target, reduction="mean", prec=prec)


def run_vjp(logits, target, prec):
    cross_entropy_vjp(logits, target, np.array(1.0), reduction="mean", prec=prec)


def run_certify(logits, target, prec):
    certify(cross_entropy, logits, target, reduction="mean", prec=prec)


def measure(label, run, n_rows, n_classes, prec):
    """One timed call of run on a seeded N x C problem: a table row (label, N, C, elements, seconds, rate)."""
    logits, target = seeded_problem(n_rows, n_classes)
    start = time.perf_counter()
    run(logits, target, prec)
    seconds = time.perf_counter() - start
    elements = n_rows * n_classes
    return label, n_rows, n_classes, elements, seconds, elements / seconds


def backend_library():
    """'gmpy2 <version>' when mpmath does its integer arithmetic with gmpy2, else what it uses instead."""
    if mpmath.libmp.BACKEND != "gmpy":
        return "no gmpy2"
    module = mpmath.libmp.backend.gmpy
    return f"{module.__name__} {module.version()}"


def print_table(rows):
    header = ("function", "N", "C", "elements", "seconds", "elements/s")
    cells = [header] + [(label, f"{n}", f"{c}", f"{e}", f"{s:.3f}", f"{r:,.0f}") for label, n, c, e, s, r in rows]
    widths = [max(len(row[k]) for row in cells) for k in range(len(header))]
    for index, row in enumerate(cells):
        print("  ".join(cell.ljust(w) if k == 0 else cell.rjust(w) for k, (cell, w) in enumerate(zip(row, widths))))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N: a smoke run of a few seconds")
    parser.add_argument("--prec", type=int, default=DEFAULT_PREC, help="working precision in bits (default: %(default)s)")
    args = parser.parse_args(argv)
    shapes = QUICK_SHAPES if args.quick else FULL_SHAPES

    print(f"mpmath {mpmath.__version__}, libmp.BACKEND={mpmath.libmp.BACKEND!r} ({backend_library()}), "
          f"precision {args.prec} bits (certify: {args.prec} and {2 * args.prec} bits)")
    print(f"cross_entropy, reduction='mean', class-index targets{' (--quick)' if args.quick else ''}\n")
    rows = []
    for label, run in (("cross_entropy", run_forward), ("cross_entropy_vjp", run_vjp)):
        rows += [measure(label, run, n, c, args.prec) for n, c in shapes["forward"]]
    rows += [measure("certify(cross_entropy)", run_certify, n, c, args.prec) for n, c in shapes["certify"]]
    print_table(rows)


if __name__ == "__main__":
    main()
