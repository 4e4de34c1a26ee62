"""The ``run``, ``cases`` and ``mutants`` subcommands: configuration errors become EXIT_USAGE with one clear line."""
import sys

from ..backends import BackendLoadError
from ..expected.store import describe_cache
from ..corpus.casefile import CaseFileError
from ..report.console import (print_budgets, print_deviations, print_diagnosis, print_failures, print_summary,
                              progress_bar)
from ..report.diagnose import explain
from ..report.journal import run_key
from ..corpus.resources import write_atomic
from ..report.results_file import results_document, write_json
from ..verdict.results import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, FAILING, exit_status
from ..corpus.select import SelectionError

CONFIGURATION_ERRORS = (CaseFileError, SelectionError, BackendLoadError)


def _session(options, start_workers=False):
    from ..run.session import Session

    return Session(options, start_workers)


def _warnings(session):
    from ..huge.cases import case_ids

    return session.warnings(case_ids())


def _resume(session, options, args):
    """The records kept from an earlier run; the session's selection is narrowed to the pairs still to run."""
    from ..report.journal import previous_results

    done = previous_results(args.json, run_key(options, session.runner.description))
    session.skip_pairs(done)
    return done


def _in_selection_order(selected, kept, new):
    """Records ordered as the cases and dtypes were selected, whatever order the workers finished in."""
    by_pair = {**kept, **new}
    return [record for case, dtypes in selected for dtype in dtypes
            for record in by_pair.get((case.full_id, dtype), ())]


def _execute(session, options, args, journal):
    """Run the selection with a progress bar; {(case, dtype): records} and timings. Streams to the journal."""
    pairs = sum(len(d) for _, d in session.selected)
    new, failed = {}, [0]
    with progress_bar(pairs, not args.quiet) as bar:
        task = bar.add_task(options.backend, total=pairs, status="")

        def on_result(result):
            new[(result.case.full_id, result.dtype)] = result.records
            seconds[(result.case.full_id, result.dtype)] = sum(result.timings.get(k, 0.0)
                                                               for k in ("oracle_s", "backend_s"))
            if journal is not None:
                journal.append(result.case.full_id, result.dtype, result.records, result.timings)
            failed[0] += sum(r["status"] in FAILING for r in result.records)
            bar.update(task, advance=1, status=f"{failed[0]} failed" if failed[0] else "")

        seconds = {}
        _, timings = session.run(on_result)
    return new, timings, seconds


class OutputError(Exception):
    """An output path (--json, --junit, --markdown) that cannot be written."""


def _check_outputs(args):
    """Refuse output paths that cannot be written before anything runs: a directory, or a parent that cannot be
    made (the parents of a path that does not exist yet are created)."""
    for option in ("json", "junit", "markdown"):
        path = getattr(args, option, None)
        if path is None:
            continue
        if path.is_dir():
            raise OutputError(f"--{option} {path}: is a directory; give a file path")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"--{option} {path}: its directory cannot be created ({error.strerror or error})") \
                from None


def _write_reports(session, args, records, summary, timings, diagnosis, seconds):
    document = results_document(session.environment(), records, summary, timings, _warnings(session))
    document["diagnosis"] = diagnosis
    if session.shard:
        document["shard"] = session.shard  # what loss-conformance merge needs to put the shards together
    if args.json:
        write_json(args.json, document)
    if args.junit:
        from ..report.junit import junit_xml

        write_atomic(args.junit, junit_xml(document, seconds))
    if args.markdown:
        from ..report.markdown import markdown_summary

        write_atomic(args.markdown, markdown_summary(document))


def _print_outcome(records, diagnosis, summary, timings, kept, args):
    if not args.quiet:
        print_failures(records)
        print_diagnosis(diagnosis)
    print_deviations(records)
    if args.show_budgets:
        print_budgets(records)
    print_summary(summary)
    import oracle

    print(f"oracle {oracle.__version__}, engine {oracle.engine_label()}")
    resumed = f", {len(kept)} pairs kept from the earlier run" if kept else ""
    print(f"wall {timings['wall_s']:.1f} s (oracle {timings['oracle_s']:.1f} s, backend {timings['backend_s']:.1f} s, "
          f"{describe_cache(timings['cache'])}{resumed})")


def run_command(options, args):
    from ..report.journal import Journal, ResumeError, journal_path

    if args.resume and not args.json:
        print("error: --resume continues the results of --json PATH; give --json", file=sys.stderr)
        return EXIT_USAGE
    journal = session = None
    try:
        _check_outputs(args)
        session = _session(options, start_workers=True).open()
        for warning in _warnings(session):
            print(f"warning: {warning}", file=sys.stderr)
        if not session.selected:
            print("error: no case matches the selection", file=sys.stderr)
            return EXIT_USAGE
        selected = list(session.selected)
        kept = _resume(session, options, args) if args.resume else {}
        if args.json:
            key = run_key(options, session.runner.description)
            try:
                journal = Journal(journal_path(args.json), key).open(keep_existing=args.resume)
            except OSError as error:
                raise OutputError(f"{journal_path(args.json)}: cannot be written ({error.strerror or error})") \
                    from None
        new, timings, seconds = _execute(session, options, args, journal)
    except (*CONFIGURATION_ERRORS, ResumeError, OutputError) as error:
        print(f"error: {error}", file=sys.stderr)
        _stop(session, journal)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _stop(session, journal)
        kept_in = f"the finished pairs are kept in {journal.path}; continue with the same command and --resume" \
            if journal is not None else "nothing was written"
        print(f"interrupted: {kept_in}", file=sys.stderr)
        return EXIT_INTERRUPTED
    kept = {pair: records for pair, records in kept.items() if pair not in new}
    records = _in_selection_order(selected, kept, new)
    summary = session.summary(records)
    timings.update(cases=len(selected), resumed_pairs=len(kept))
    diagnosis = explain(selected, records)
    try:
        _write_reports(session, args, records, summary, timings, diagnosis, seconds)
    except OSError as error:
        kept_in = f"; the results are kept in {journal.path}" if journal is not None else ""
        _stop(None, journal)
        print(f"error: {getattr(error, 'filename', None) or 'a report'}: cannot be written "
              f"({error.strerror or error}){kept_in}", file=sys.stderr)
        return EXIT_USAGE
    if journal is not None:
        journal.close(remove=True)  # only now: the complete document is on disk
    _print_outcome(records, diagnosis, summary, timings, kept, args)
    return exit_status(records)


def _stop(session, journal):
    """After an error or Ctrl-C: the journal closed and kept, the workers stopped."""
    if journal is not None:
        journal.close(remove=False)
    if session is not None:
        session.runner.close()


def list_cases(options, args):
    try:
        session = _session(options)
    except CONFIGURATION_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    pairs = sum(len(dtypes) for _, dtypes in session.selected)
    if not args.count:
        for case, dtypes in session.selected:
            tags = f"  [{', '.join(case.tags)}]" if case.tags else ""
            expect = f"  raises {case.expect_error}" if case.expect_error else ""
            print(f"{case.full_id}  ({','.join(dtypes)}){expect}{tags}")
    print(f"{len(session.selected)} cases, {pairs} (case, dtype) pairs, from {len(session.cases)} loaded")
    return EXIT_OK


def mutants_command(args):
    """EXIT_OK when every mutant is killed and torch has no unexpected failure, else EXIT_FAILED."""
    from ..mutants.designs import CATALOG
    from ..mutants.score import design_false_alarms, mutation_score, run_mutation, torch_false_alarms
    from ..expected import default_cache_dir
    from ..report.console import print_mutants
    from ..verdict.results import environment
    from ..run.session import RunOptions

    options = RunOptions(case_paths=tuple(args.cases or ()), cache_dir=args.cache_dir or default_cache_dir(),
                         jobs=0)
    try:
        alarms, checked = ([], 0) if args.skip_torch else torch_false_alarms(options)
        results = run_mutation(options, args.mutant,
                               on_result=lambda r: print(f"{r.name}: {'killed' if r.killed else 'SURVIVED'}",
                                                         file=sys.stderr))
        designs = {} if args.skip_designs else {name: design_false_alarms(options, name) for name in CATALOG}
    except (*CONFIGURATION_ERRORS, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    score = mutation_score(results)
    print_mutants(results, score, None if args.skip_torch else (alarms, checked), designs)
    if args.json:
        from dataclasses import asdict

        document = {"schema": "loss-conformance/mutants", "schema_version": 1,
                    "environment": environment({"name": "mutants of torch"}, options),
                    "mutation": {**score, "torch_false_alarms": None if args.skip_torch else len(alarms),
                                 "torch_checks": checked, "mutants": [asdict(r) for r in results]},
                    "designs": {name: {"false_alarms": len(found), "checks": count}
                                for name, (found, count) in designs.items()}}
        write_json(args.json, document)
    design_alarms = any(found for found, _ in designs.values())
    return EXIT_OK if score["killed"] == score["total"] and not alarms and not design_alarms else EXIT_FAILED
