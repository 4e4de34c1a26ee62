"""Cross-validation of the oracle's engines on the whole corpus: every certified result, mpmath against arb.

Each (case, dtype) of the corpus is called as conformance/expected/calls.py calls the oracle (forward, and the VJP
with the case's upstream gradient); oracle.crosscheck.compare_engines certifies it on both engines and compares
values, gradients and scales (to the certified bits) and the float64 pairs the cache stores (to 2**-100 of the
scale). Prints the figures quoted in docs/oracle-engines.md; exits 1 on any disagreement.

    python benchmarks/oracle_crosscheck.py [--include-tag large] [--function NAME ...]
"""
import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import oracle  # noqa: E402
from conformance.corpus.casefile import load_cases  # noqa: E402
from conformance.expected import oracle_calls  # noqa: E402
from oracle.crosscheck import compare_engines  # noqa: E402

OPT_IN_TAGS = ("large", "slow")


def selected_pairs(include_tags, functions):
    excluded = set(OPT_IN_TAGS) - set(include_tags)
    return [(case, dtype) for case in load_cases() if not set(case.tags) & excluded
            and (not functions or case.function in functions) for dtype in case.dtypes]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--include-tag", action="append", default=[], help="also the opt-in cases with this tag")
    parser.add_argument("--function", action="append", default=[], help="only these functions")
    args = parser.parse_args(argv)
    pairs = selected_pairs(args.include_tag, args.function)
    print(f"engines: {oracle.engine_label('mpmath')}; {oracle.engine_label('arb')}")
    start = time.perf_counter()
    calls = elements = fallbacks = 0
    worst = {"value": math.inf, "scale": math.inf, "pair": math.inf}
    failures = []
    for case, dtype in pairs:
        for label, function, positional, kwargs in oracle_calls(case, dtype):
            before = oracle.engine_usage()["fallbacks"]
            comparison = compare_engines(function, *positional, **kwargs)
            fallbacks += oracle.engine_usage()["fallbacks"] > before
            calls, elements = calls + 1, elements + comparison.elements
            for key, bits in zip(worst, comparison[1:4]):
                worst[key] = min(worst[key], bits)
            failures += [f"{case.full_id}[{dtype}] {label}: {problem}" for problem in comparison.problems]
    seconds = time.perf_counter() - start
    print(f"{len(pairs)} (case, dtype) pairs, {calls} certified calls, {elements} elements compared, "
          f"{fallbacks} calls answered by mpmath on the arb side (non-finite values), {seconds:.0f} s")
    print(f"least agreement: values {worst['value']:.1f} bits, scales {worst['scale']:.1f} bits (relative to the "
          f"scale; asked: {oracle.DEFAULT_PREC - 17}), float64 pairs {worst['pair']:.1f} bits (asked: 100)")
    for failure in failures[:20]:
        print("DISAGREE", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
