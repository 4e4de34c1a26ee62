"""Wall time of a full default run against torch on CPU, with a cold and then a warm oracle cache, and
warm again without the determinism checks (their cost); then the whole warm process as a user times it
(`loss-conformance run --quiet`: interpreter start, imports, case loading, workers, report).

Prints, per run: wall time, the time in the oracle (input rounding + certified evaluation or cache read), in the
backend calls, and the rest (runner overhead: worker start, comparisons, records); plus the checks per second.

    python benchmarks/run_speed.py [--jobs N] [--backend SPEC] [--function LIST] [--include-tag large]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from conformance.run.session import RunOptions, Session


def timed_run(options):
    start = time.perf_counter()
    session = Session(options, start_workers=True)  # as the command line starts them
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
        # "cold" is every cache a run fills empty: the oracle's, jax's compilation cache and inductor's
        os.environ["LOSS_CONFORMANCE_JAX_CACHE"] = str(Path(cache_dir) / "jax-compilation")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(cache_dir) / "inductor")
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
        print(f"process (warm, the whole command): {whole_process(args, cache_dir):.1f} s")


def whole_process(args, cache_dir):
    """Seconds of `loss-conformance run --quiet` with the warm cache, from the interpreter's start to its exit."""
    command = [sys.executable, "-m", "conformance", "run", "--quiet", "--jobs", str(args.jobs), "--backend",
               args.backend, "--cache-dir", str(cache_dir)]
    command += ["--function", args.function] if args.function else []
    command += [word for tag in args.include_tag for word in ("--include-tag", tag)]
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
