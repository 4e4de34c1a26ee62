"""``loss-conformance huge``: the opt-in tier past 2**31 elements (conformance/huge, docs/huge-tier.md).

Each (case, dtype) builds its tensors, runs, is compared and freed before the next, so the peak memory is one
case's. A backend that fails (raises, returns a wrong shape) fails its own checks and the run goes on.
"""
import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from ..verdict.results import EXIT_OK, EXIT_USAGE, environment, exit_status, make_record, summarize

GEOMETRY_HELP = "The boundary the rows cross, 2**BITS elements (default 31: 2**31 + 2**20 elements a tensor)."


def _bits(text):
    value = int(text) if text.isdigit() else 0
    if not 12 <= value <= 40:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of bits from 12 to 40")
    return value


def add_arguments(parser):
    """The options of ``huge`` (the tier is imported when the command runs: parsing stays cheap)."""
    parser.add_argument("--backend", default="torch", metavar="SPEC",
                        help="A torch-API backend: torch, torch-compile, or module.path[:attr] of torch callables.")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu).")
    parser.add_argument("--id", dest="ids", action="append", default=[], metavar="FULL_ID",
                        help="Run only this case, such as cross_entropy/huge-rows-none (may be repeated).")
    parser.add_argument("--dtype", action="append", default=[], choices=("float16", "bfloat16"),
                        help="Run only this dtype (may be repeated; default float16 and bfloat16).")
    parser.add_argument("--boundary-bits", type=_bits, default=31, metavar="BITS", help=GEOMETRY_HELP)
    parser.add_argument("--classes", type=int, default=2**17, metavar="C",
                        help="Classes a row, a power of two (default 2**17: the rows are 2**31 / C + 8).")
    parser.add_argument("--xfails", nargs="*", type=Path, default=None, metavar="FILE",
                        help="Expected-deviation files (default: the backend's cases/xfails/<backend>.yaml).")
    parser.add_argument("--json", type=Path, metavar="PATH", help="Write the results as JSON.")
    parser.add_argument("--junit", type=Path, metavar="PATH", help="Write the results as JUnit XML.")
    parser.add_argument("--quiet", action="store_true", help="No failure details.")
    parser.set_defaults(handler=command)


def _reproduce(args, case, dtype):
    parts = ["loss-conformance", "huge", "--backend", args.backend, "--device", args.device, "--id", case.full_id,
             "--dtype", dtype]
    if args.boundary_bits != 31 or args.classes != 2**17:
        parts += ["--boundary-bits", str(args.boundary_bits), "--classes", str(args.classes)]
    return " ".join(shlex.quote(part) for part in parts)


def _deviations(args, backend):
    from ..verdict.deviations import DeviationSet, backend_versions, default_deviation_paths

    paths = default_deviation_paths(backend.name) if args.xfails is None else args.xfails
    return DeviationSet.from_paths(paths), backend_versions(backend.describe())


def _line(records, case, dtype, result):
    failed = [r for r in records if r["status"] in ("failed", "xpassed")]
    worst = max((r["error_u"] / r["budget_u"] for r in records
                 if r.get("budget_u") and r.get("error_u") is not None and r["status"] == "passed"), default=0.0)
    if all(r["status"] == "skipped" for r in records):
        return f"{case.full_id} [{dtype}]: skipped: {records[0].get('message', '')}"
    declared = sum(r["status"] == "xfailed" for r in records)
    verdict = f"FAILED ({len(failed)} check{'s' if len(failed) > 1 else ''})" if failed else "passed" + (
        f" ({declared} declared deviation{'s' if declared > 1 else ''})" if declared else "")
    return (f"{case.full_id} [{dtype}]: {verdict}; worst passing error {worst:.2f} of its budget; "
            f"{result.peak_memory_gib:.1f} GiB peak; " + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()))


def command(args):
    from ..backends import BackendLoadError, load_backend
    from ..corpus.casefile import CaseFileError
    from ..huge.cases import CASES, DTYPES, Geometry
    from ..huge.run import NotTorchAPI, run_case, torch_api
    from ..verdict.tolerances import Tolerances

    unknown = sorted(set(args.ids) - {case.full_id for case in CASES})
    if unknown:
        print(f"loss-conformance huge: no case {unknown[0]!r}; the cases: "
              f"{', '.join(case.full_id for case in CASES)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        geometry = Geometry(args.classes, args.boundary_bits)
        backend = torch_api(load_backend(args.backend, args.device))
        deviations, versions = _deviations(args, backend)
        tolerances = Tolerances.load()
    except (ValueError, BackendLoadError, NotTorchAPI, CaseFileError) as error:
        print(f"loss-conformance huge: {error}", file=sys.stderr)
        return EXIT_USAGE
    selected = [case for case in CASES if not args.ids or case.full_id in args.ids]
    context, records, timings, started = {"spec": args.backend, "device": args.device}, [], {}, time.perf_counter()
    print(f"huge tier: {geometry.rows} rows x {geometry.classes} classes = {geometry.elements} elements a tensor")
    for case in selected:
        for dtype in args.dtype or DTYPES:
            result = run_case(backend, case, dtype, geometry, tolerances)
            these = [make_record(case, dtype, check, context) for check in result.checks]
            for record in these:
                if "reproduce" in record:
                    record["reproduce"] = _reproduce(args, case, dtype)
            deviations.apply(these, True, versions)
            records += these
            timings[f"{case.full_id} [{dtype}]"] = {"seconds": result.seconds,
                                                     "peak_memory_gib": result.peak_memory_gib}
            print(_line(these, case, dtype, result), flush=True)
            if not args.quiet:
                for record in these:
                    if record["status"] in ("failed", "xpassed"):
                        print(f"  {record['check']}: {record.get('message', '')}\n  reproduce: {record['reproduce']}")
    summary = summarize(records)
    print(f"{summary['checks']} checks: " + ", ".join(f"{n} {s}" for s, n in summary["totals"].items() if n) +
          f" in {time.perf_counter() - started:.0f} s")
    if args.json or args.junit:
        _write(args, backend, geometry, summary, records, timings)
    return exit_status(records) if records else EXIT_OK


def _write(args, backend, geometry, summary, records, timings):
    from ..corpus.resources import write_atomic
    from ..report.junit import junit_xml

    options = SimpleNamespace(backend=args.backend, device=args.device)
    document = {"tier": "huge", "geometry": {"rows": geometry.rows, "classes": geometry.classes,
                                             "elements": geometry.elements, "boundary": geometry.boundary},
                "environment": environment(backend.describe(), options), "summary": summary, "timings": timings,
                "results": records}
    if args.json:
        write_atomic(args.json, json.dumps(document, indent=1, default=str) + "\n")
    if args.junit:
        seconds = {tuple(key[:-1].split(" [")): sum(timing["seconds"].values()) for key, timing in timings.items()}
        write_atomic(args.junit, junit_xml(document, seconds))
