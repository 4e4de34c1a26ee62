"""Throughput of the certified oracle on each engine, in input elements (N * C) per second, side by side.

For each function (cross_entropy, softmax, log_softmax, nll_loss, kl_div) and its VJP, at C = 1000 and 32768,
one certified call as conformance/expected/calls.py makes it (oracle.certify_float64: float64 results, no mpf per
element) is timed on the mpmath engine and on the arb engine, on the same seeded float64 inputs (numpy
default_rng(0)); the arb engine is also timed through oracle.certify (mpf results, the public form). The
reference is a bare 128-bit log-sum-exp loop over the same logits in mpmath (and, for context, in Arb).
Inputs: logits ~ N(0, 1) (log_softmax of them for nll_loss and the kl_div input), int64 class indices,
kl_div targets uniform in (0, 1), grad_output ~ N(0, 1); reduction 'mean' for the losses, dim 1 for softmax.

    python benchmarks/oracle_speed.py [--quick] [--prec BITS] [--scaling] [--linear]

Each rate is the fastest of 3 calls on arb and of 2 on mpmath (the bare loops likewise). --scaling adds a
table of time against N * C from 1e3 to 1e7 (C = 1000), forward and VJP, certified, one call per size (arb;
mpmath up to 1e5). --linear times linear_cross_entropy (arb, certified, one call each): the forward at N = 8,
H = 4096, V = 32768 (a language-model head's slice), and the VJP at sizes where it ends in minutes, with its
rate in gradient elements (N H + V H + V) per second.
"""
import argparse
import sys
import time
from pathlib import Path

import mpmath
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # make `oracle` importable when run as a script
import oracle  # noqa: E402

FUNCTIONS = ("cross_entropy", "softmax", "log_softmax", "nll_loss", "kl_div")
# N per C: about 65k elements per call, so that the mpmath engine takes ~1-3 s per row of the table.
FULL_ROWS = {1000: 64, 32768: 2}
QUICK_ROWS = {1000: 4, 32768: 1}
SCALING_SIZES = (1, 10, 100, 1000, 10000)  # N at C = 1000: 1e3 ... 1e7 elements
ARB_REPEAT, MPMATH_REPEAT = 3, 2  # calls per measurement, the fastest kept
MPMATH_SCALING_LIMIT = 100_000  # elements: beyond, the mpmath engine takes minutes per call


def problem(function, n_rows, n_classes):
    """(positional args of the forward, extra VJP arg, kwargs) on seeded inputs."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((n_rows, n_classes))
    grad = rng.standard_normal((n_rows, n_classes))
    if function in ("softmax", "log_softmax"):
        return [logits], grad, {"dim": 1}
    if function == "kl_div":
        inputs = _log_softmax_rows(logits)
        return [inputs, rng.uniform(0.0, 1.0, (n_rows, n_classes))], np.array(1.0), {"reduction": "mean"}
    target = rng.integers(0, n_classes, size=n_rows, dtype=np.int64)
    inputs = _log_softmax_rows(logits) if function == "nll_loss" else logits
    return [inputs, target], np.array(1.0), {"reduction": "mean"}


def _log_softmax_rows(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def timed(call, repeat=1):
    """The least wall time of ``repeat`` calls: on a shared machine the fastest run is the least disturbed."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def certified_call(function, vjp, args, extra, kwargs, prec, engine, public=False):
    name = function + ("_vjp" if vjp else "")
    positional = args + [extra] if vjp else args  # grad_output follows the forward's tensors
    certify = oracle.certify if public else oracle.certify_float64
    return lambda: certify(getattr(oracle, name), *positional, prec=prec, engine=engine, **kwargs)


def bare_mpmath_loop(logits, prec):
    """log-sum-exp of every row at prec bits, in mpmath: the cost floor of any mpmath formula."""
    with mpmath.workprec(prec):
        for row in logits.tolist():
            shift = max(row)
            mpmath.log(mpmath.fsum([mpmath.exp(mpmath.mpf(x) - shift) for x in row])) + shift


def bare_arb_loop(logits, prec):
    import flint
    saved, flint.ctx.prec = flint.ctx.prec, prec
    try:
        for row in logits.tolist():
            shift = flint.arb(max(row))
            (sum([(flint.arb(x) - shift).exp() for x in row], flint.arb(0))).log() + shift
    finally:
        flint.ctx.prec = saved


def speed_table(rows_per_c, prec):
    rows = []
    for n_classes, n_rows in rows_per_c.items():
        elements = n_rows * n_classes
        logits = problem("softmax", n_rows, n_classes)[0][0]
        bare = elements / timed(lambda rows=logits: bare_mpmath_loop(rows, prec), MPMATH_REPEAT)
        bare_arb = elements / timed(lambda rows=logits: bare_arb_loop(rows, prec), ARB_REPEAT)
        for function in FUNCTIONS:
            args, extra, kwargs = problem(function, n_rows, n_classes)
            for vjp in (False, True):
                rates = [elements / timed(certified_call(function, vjp, args, extra, kwargs, prec, engine, public),
                                          MPMATH_REPEAT if engine == "mpmath" else ARB_REPEAT)
                         for engine, public in (("mpmath", False), ("arb", False), ("arb", True))]
                rows.append((function + ("_vjp" if vjp else ""), n_classes, elements, *rates, bare, bare_arb))
    return rows


def print_speed_table(rows):
    header = ("function", "C", "elements", "mpmath el/s", "arb el/s", "arb/mpmath", "arb el/s (mpf out)",
              "bare mpmath lse el/s", "arb/bare", "mpf out/bare", "bare arb lse el/s")
    cells = [header] + [(f, f"{c}", f"{e}", f"{m:,.0f}", f"{a:,.0f}", f"{a / m:.1f}x", f"{p:,.0f}", f"{b:,.0f}",
                         f"{a / b:.1f}x", f"{p / b:.2f}x", f"{ba:,.0f}") for f, c, e, m, a, p, b, ba in rows]
    _print_cells(cells)


def scaling_table(prec):
    """Seconds of one certified cross_entropy forward and VJP against N * C (mpmath only up to 1e5 elements)."""
    rows = []
    warm_up = problem("cross_entropy", 1, 1000)  # first calls pay for imports and caches: not part of any row
    for engine in ("arb", "mpmath"):
        certified_call("cross_entropy", False, *warm_up, prec, engine)()
    for n_rows in SCALING_SIZES:
        args, extra, kwargs = problem("cross_entropy", n_rows, 1000)
        cells = [f"{n_rows * 1000:.0e}", f"{n_rows} x 1000"]
        for engine in ("arb", "mpmath"):
            for vjp in (False, True):
                if engine == "mpmath" and n_rows * 1000 > MPMATH_SCALING_LIMIT:
                    cells.append("-")
                    continue
                call = certified_call("cross_entropy", vjp, args, extra, kwargs, prec, engine)
                cells.append(f"{timed(call):.3f}")
        rows.append(tuple(cells))
    _print_cells([("N*C", "N x C", "arb forward s", "arb vjp s", "mpmath forward s", "mpmath vjp s")] + rows)


LINEAR_FORWARD = ((8, 4096, 32768),)
LINEAR_VJP = ((8, 256, 1024), (8, 512, 4096))  # (N, H, V); the VJP contracts G with W and x by fdot per element


def linear_problem(n_rows, hidden, vocabulary):
    rng = np.random.default_rng(0)
    return ([rng.standard_normal((n_rows, hidden)), rng.standard_normal((vocabulary, hidden)) / hidden ** 0.5,
             rng.integers(0, vocabulary, size=n_rows, dtype=np.int64)], np.array(1.0), {"reduction": "mean"})


def linear_table(prec):
    """Seconds of one certified linear_cross_entropy forward, and VJP, at each size (arb)."""
    rows = []
    for vjp, sizes in ((False, LINEAR_FORWARD), (True, LINEAR_VJP)):
        for n_rows, hidden, vocabulary in sizes:
            args, extra, kwargs = linear_problem(n_rows, hidden, vocabulary)
            seconds = timed(certified_call("linear_cross_entropy", vjp, args, extra, kwargs, prec, "arb"))
            elements = n_rows * hidden + vocabulary * hidden + vocabulary if vjp else n_rows * vocabulary
            rows.append(("vjp" if vjp else "forward", f"{n_rows} x {hidden} x {vocabulary}", f"{seconds:.2f}",
                         f"{elements / seconds:,.0f}", "gradient elements" if vjp else "logits"))
    _print_cells([("call", "N x H x V", "seconds", "elements/s", "elements")] + rows)


def _print_cells(cells):
    widths = [max(len(row[k]) for row in cells) for k in range(len(cells[0]))]
    for index, row in enumerate(cells):
        print("  ".join(cell.ljust(w) if k == 0 else cell.rjust(w) for k, (cell, w) in enumerate(zip(row, widths))))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N: a smoke run of a few seconds")
    parser.add_argument("--prec", type=int, default=oracle.DEFAULT_PREC, help="precision in bits (default: %(default)s)")
    parser.add_argument("--scaling", action="store_true", help="also time against N * C = 1e3 ... 1e7 (C = 1000)")
    parser.add_argument("--linear", action="store_true", help="also time linear_cross_entropy (minutes)")
    args = parser.parse_args(argv)
    backend = mpmath.libmp.BACKEND
    print(f"engines: {oracle.engine_label('mpmath')} (libmp backend {backend!r}); {oracle.engine_label('arb')}")
    print(f"certified to {args.prec - 16} bits at {args.prec} bits of working precision; "
          f"elements/s = N * C / seconds of one certified call{' (--quick)' if args.quick else ''}\n")
    print_speed_table(speed_table(QUICK_ROWS if args.quick else FULL_ROWS, args.prec))
    if args.scaling:
        print("\ncross_entropy (mean, class indices), certified, C = 1000: seconds per call\n")
        scaling_table(args.prec)
    if args.linear:
        print("\nlinear_cross_entropy (mean, class indices), certified, arb: one call\n")
        linear_table(args.prec)


if __name__ == "__main__":
    main()
