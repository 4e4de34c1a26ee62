"""A whole run: select cases, run them on a backend (isolated workers or in-process), apply the expected
deviations, and gather the records, summary, timings and warnings the reports are made from."""
import time
from dataclasses import dataclass, field
from pathlib import Path

from .backends import load_backend
from .casefile import CASES_DIR, load_cases
from .dtypes import DTYPES
from .executor import Executor
from .reference import OracleCache, default_cache_dir
from .results import environment, summarize
from .runner import run_case
from .select import compile_expression
from .tolerances import Tolerances
from .xfails import XfailSet, apply_xfail

OPT_IN_TAGS = ("large", "slow")  # cases with these tags run only when asked for (--include-tag)


@dataclass
class RunOptions:
    backend: str = "torch"
    device: str = "cpu"
    dtypes: tuple = DTYPES
    functions: tuple | None = None
    keyword: str = ""
    ids: tuple = ()
    case_paths: tuple = ()
    xfail_paths: tuple | None = None  # None: cases/xfails/<backend>.yaml where it exists
    include_tags: tuple = ()
    jobs: int = 1  # 0: in-process, no isolation and no timeout
    timeout: float = 60.0
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    tolerances: Path | None = None
    strict: bool = True


def default_xfail_paths(backend):
    path = CASES_DIR / "xfails" / f"{backend.split(':')[0]}.yaml"
    return (path,) if path.exists() else ()


def select_cases(cases, options):
    """(case, dtypes) pairs chosen by the options; cases with opt-in tags need --include-tag (or --id)."""
    matches = compile_expression(options.keyword or "")
    chosen = []
    for case in cases:
        if options.ids and case.full_id not in options.ids:
            continue
        if options.functions and case.function not in options.functions:
            continue
        if not options.ids and set(case.tags) & (set(OPT_IN_TAGS) - set(options.include_tags)):
            continue
        dtypes = [d for d in case.dtypes if d in options.dtypes and matches([case.full_id, d, *case.tags])]
        if dtypes:
            chosen.append((case, dtypes))
    return chosen


def apply_xfails(records, xfails, strict, version=None):
    """Turn the statuses of records matched by an expected deviation into xfailed / xpassed, with its reason."""
    for record in records:
        entry = xfails.match(record["case"], record["dtype"], record["check"], version)
        if entry is None:
            continue
        record["status"] = apply_xfail(record["status"], entry)
        if record["status"] == "xpassed" and not strict:
            record["status"] = "passed"
        record["reason"] = entry.reason
        if entry.spec:
            record["spec"] = entry.spec


class Session:
    """Load and select once; ``run(on_result)`` returns (records, timings) and calls on_result per (case, dtype)."""

    def __init__(self, options):
        self.options = options
        self.cases = load_cases(options.case_paths or None)
        self.selected = select_cases(self.cases, options)
        xfail_paths = default_xfail_paths(options.backend) if options.xfail_paths is None else options.xfail_paths
        self.xfails = XfailSet.from_paths(xfail_paths)
        self.tolerances_path = options.tolerances
        self.tolerances = Tolerances.load(options.tolerances)
        self.context = {"spec": options.backend, "device": options.device,
                        "cases_arg": bool(options.case_paths)}
        self.backend_description = None
        self.cache_stats = {}

    def warnings(self):
        """Expected-deviation entries that match no loaded case (stale or misspelt), one line each; with --cases,
        where a partial corpus leaves most entries unmatched, one line that counts them."""
        stale = self.xfails.unmatched(case.full_id for case in self.cases)
        if self.options.case_paths and stale:
            return [f"{len(stale)} of {len(self.xfails)} xfail entries match no case of the files given to --cases"]
        return [f"xfail entry {entry.id!r} ({entry.source}) matches no case" for entry in stale]

    def _in_process(self):
        backend = load_backend(self.options.backend, self.options.device)
        self.backend_description = backend.describe()
        cache = OracleCache(self.options.cache_dir)
        for case, dtypes in self.selected:
            for dtype, records, timings in run_case(case, dtypes, backend, cache, self.tolerances, self.context):
                yield case, dtype, records, timings
        self.cache_stats = {"hits": cache.hits, "misses": cache.misses}

    def _isolated(self):
        executor = Executor(self.options.backend, self.options.device, self.options.cache_dir,
                            self.tolerances_path, self.context, self.options.jobs, self.options.timeout)
        for result in executor.run(self.selected):
            self.backend_description = executor.backend_description  # known once a worker has started
            yield result
        self.backend_description, self.cache_stats = executor.backend_description, executor.cache_stats

    def results(self):
        """Yield (case, dtype, records, timings) with the expected deviations applied."""
        source = self._in_process() if self.options.jobs == 0 else self._isolated()
        for case, dtype, records, timings in source:
            self.apply_xfails(records)
            yield case, dtype, records, timings

    def apply_xfails(self, records):
        version = (self.backend_description or {}).get("version")
        apply_xfails(records, self.xfails, self.options.strict, version)

    def run(self, on_result=lambda *result: None):
        records, timings, start = [], {"oracle_s": 0.0, "backend_s": 0.0}, time.perf_counter()
        for case, dtype, case_records, case_timings in self.results():
            records.extend(case_records)
            for key in timings:
                timings[key] += case_timings.get(key, 0.0)
            on_result(case, dtype, case_records, case_timings)
        timings["wall_s"] = time.perf_counter() - start
        timings["cache"] = self.cache_stats
        return records, timings

    def environment(self):
        return environment(self.backend_description, self.options)

    def summary(self, records):
        return summarize(records)
