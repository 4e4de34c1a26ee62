"""Wall time of a full default run against torch on CPU, with a cold and then a warm oracle cache, and
warm again without the determinism checks (their cost).

Prints, per run: wall time, the time in the oracle (input rounding + certified evaluation or cache read), in the
backend calls, and the rest (runner overhead: worker start, comparisons, records); plus the checks per second.

    python benchmarks/run_speed.py [--jobs N] [--backend SPEC] [--function LIST] [--include-tag large]
"""
import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from conformance.run.session import RunOptions, Session


def timed_run(options):
    start = time.perf_counter()
    session = Session(options)
    records, timings = session.run()
    wall = time.perf_counter() - start
    return wall, timings, records, len(session.selected)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="Worker processes, as for loss-conformance run (default 2).")
    parser.add_argument("--backend", default="torch", help="Backend spec (default torch).")
    parser.add_argument("--function", default=None, help="Comma-separated functions (default all).")
    parser.add_argument("--include-tag", action="append", default=[], help="Opt-in tags to include (large, slow).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache_dir:
        options = RunOptions(backend=args.backend, jobs=args.jobs, cache_dir=Path(cache_dir),
                             functions=tuple(args.function.split(",")) if args.function else None,
                             include_tags=tuple(args.include_tag))
        print(f"default corpus, backend {args.backend}, jobs {args.jobs} (times summed over workers for oracle and "
              "backend; wall is elapsed); 'no-stab' is warm without the deterministic and batch_invariant checks")
        print(f"{'cache':7s} {'cases':>6s} {'checks':>7s} {'wall s':>8s} {'oracle s':>9s} {'backend s':>10s} "
              f"{'other s':>8s} {'checks/s':>9s}")
        runs = {"cold": options, "warm": options, "no-stab": replace(options, determinism=False)}
        for label, run_options in runs.items():
            wall, timings, records, cases = timed_run(run_options)
            # With one worker the sums are elapsed times; with several they overlap, so "other" is not shown.
            other = wall - timings["oracle_s"] - timings["backend_s"] if args.jobs <= 1 else float("nan")
            print(f"{label:7s} {cases:6d} {len(records):7d} {wall:8.1f} {timings['oracle_s']:9.1f} "
                  f"{timings['backend_s']:10.1f} {other:8.1f} {len(records) / wall:9.0f}")


if __name__ == "__main__":
    main()
