"""The ``run`` and ``cases`` subcommands: configuration errors become exit status 2 with one clear line."""
import sys

from .backends import BackendLoadError
from .casefile import CaseFileError
from .console import print_budgets, print_deviations, print_diagnosis, print_failures, print_summary, progress_bar
from .diagnose import explain
from .executor import WorkerStartError
from .results import exit_status, results_document, write_json
from .select import SelectionError

USAGE_ERROR = 2
CONFIGURATION_ERRORS = (CaseFileError, SelectionError, BackendLoadError, WorkerStartError)


def _session(options):
    from .session import Session

    return Session(options)


def run_command(options, args):
    try:
        session = _session(options)
        for warning in session.warnings():
            print(f"warning: {warning}", file=sys.stderr)
        if not session.selected:
            print("error: no case matches the selection", file=sys.stderr)
            return USAGE_ERROR
        total = len(session.selected)
        with progress_bar(sum(len(d) for _, d in session.selected), not args.quiet) as bar:
            task = bar.add_task(options.backend, total=sum(len(d) for _, d in session.selected), status="")
            failed = [0]

            def on_result(case, dtype, records, timings):
                failed[0] += sum(r["status"] in ("failed", "error", "xpassed") for r in records)
                bar.update(task, advance=1, status=f"{failed[0]} failed" if failed[0] else "")

            records, timings = session.run(on_result)
    except CONFIGURATION_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    summary = session.summary(records)
    timings["cases"] = total
    if args.json:
        write_json(args.json, results_document(session.environment(), records, summary, timings, session.warnings()))
    if not args.quiet:
        print_failures(records)
        print_diagnosis(explain(session.selected, records))
    print_deviations(records)
    if args.show_budgets:
        print_budgets(records)
    print_summary(summary)
    print(f"wall {timings['wall_s']:.1f} s (oracle {timings['oracle_s']:.1f} s, backend {timings['backend_s']:.1f} s, "
          f"cache {timings['cache'].get('hits', 0)} hits / {timings['cache'].get('misses', 0)} misses)")
    return exit_status(records)


def list_cases(options, args):
    try:
        session = _session(options)
    except CONFIGURATION_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    pairs = sum(len(dtypes) for _, dtypes in session.selected)
    if not args.count:
        for case, dtypes in session.selected:
            tags = f"  [{', '.join(case.tags)}]" if case.tags else ""
            expect = f"  raises {case.expect_error}" if case.expect_error else ""
            print(f"{case.full_id}  ({','.join(dtypes)}){expect}{tags}")
    print(f"{len(session.selected)} cases, {pairs} (case, dtype) pairs, from {len(session.cases)} loaded")
    return 0


def mutants_command(args):
    """Exit 0 when every mutant is killed and torch has no unexpected failure, else 1 (2: configuration)."""
    from .console import print_mutants
    from .mutation import mutation_score, run_mutation, torch_false_alarms
    from .reference import default_cache_dir
    from .results import environment, write_json
    from .session import RunOptions

    options = RunOptions(case_paths=tuple(args.cases or ()), cache_dir=args.cache_dir or default_cache_dir(),
                         jobs=0)
    try:
        alarms, checked = ([], 0) if args.skip_torch else torch_false_alarms(options)
        results = run_mutation(options, args.mutant,
                               on_result=lambda r: print(f"{r.name}: {'killed' if r.killed else 'SURVIVED'}",
                                                         file=sys.stderr))
    except (*CONFIGURATION_ERRORS, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    score = mutation_score(results)
    print_mutants(results, score, None if args.skip_torch else (alarms, checked))
    if args.json:
        from dataclasses import asdict

        document = {"schema": "loss-conformance/mutants", "schema_version": 1,
                    "environment": environment({"name": "mutants of torch"}, options),
                    "mutation": {**score, "torch_false_alarms": None if args.skip_torch else len(alarms),
                                 "torch_checks": checked, "mutants": [asdict(r) for r in results]}}
        write_json(args.json, document)
    return 0 if score["killed"] == score["total"] and not alarms else 1
