"""How much of a JAX run is JAX compiling: XLA's compilations, the lowering to MLIR and the tracing, summed from
jax.monitoring's duration events; first with an empty persistent compilation cache (cold), then with the cache it
filled (warm, where "XLA compile" is finding, reading and loading each compiled program).

    python benchmarks/jax_compile_share.py [--function LIST] [--dtype LIST]

Each run is one process (--jobs 0, so that one listener sees every event; a process of its own, since jax's
in-memory caches would serve a second run in the same one); the oracle's cache is the default one (warm it first
with any run). The sums are CPU seconds that a run compiling the same programs cannot go below: divided by the
cores, a lower bound on the wall time of a run on that many workers. Measured on the whole corpus, 2 cores, with
the two workers of a default run: docs/backends.md.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's conformance, run as a script
from conformance.run.session import RunOptions, Session  # noqa: E402

EVENTS = {"/jax/core/compile/backend_compile_duration": "XLA compile",
          "/jax/core/compile/jaxpr_to_mlir_module_duration": "lowering",
          "/jax/core/compile/jaxpr_trace_duration": "tracing"}


def measured_run(options):
    """(wall seconds, checks, {event label: (seconds, count)}) of one in-process run."""
    import jax.monitoring

    seconds, counts = collections.Counter(), collections.Counter()

    def listener(event, duration, **_):
        if event in EVENTS:
            seconds[EVENTS[event]] += duration
            counts[EVENTS[event]] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    start = time.perf_counter()
    records, _ = Session(options).run()
    wall = time.perf_counter() - start
    return wall, len(records), {label: (seconds[label], counts[label]) for label in EVENTS.values()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--function", default=None, help="Comma-separated functions (default all).")
    parser.add_argument("--dtype", default=None, help="Comma-separated dtypes (default all).")
    parser.add_argument("--measure-in", default=None, help=argparse.SUPPRESS)  # one run, in a fresh process
    args = parser.parse_args()
    if args.measure_in:
        os.environ["LOSS_CONFORMANCE_JAX_CACHE"] = args.measure_in  # read when the backend loads
        listed = {name: tuple(value.split(",")) for name, value in (("functions", args.function),
                                                                   ("dtypes", args.dtype)) if value}
        options = RunOptions(backend="jax", jobs=0, **listed)
        print(json.dumps(measured_run(options)))
        return
    print(f"{'run':5s} {'checks':>7s} {'wall s':>7s} " + " ".join(f"{label + ' s':>14s} {'n':>6s}"
                                                                 for label in EVENTS.values()) + "  share")
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold", "warm"):  # each in a process of its own: jax's in-memory caches would serve the second
            command = [sys.executable, __file__, "--measure-in", cache] + sys.argv[1:]
            wall, checks, events = json.loads(subprocess.run(command, check=True, capture_output=True, text=True)
                                              .stdout.splitlines()[-1])
            compiling = sum(seconds for seconds, _ in events.values())
            print(f"{label:5s} {checks:7d} {wall:7.1f} " + " ".join(f"{s:14.1f} {n:6d}" for s, n in events.values())
                  + f"  {compiling / wall:.0%}")


if __name__ == "__main__":
    main()
