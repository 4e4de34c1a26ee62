"""A whole run as the command line sees it: load and select the cases once, run the selection through the one
run loop (runner.py), and gather the records, timings, warnings and environment the reports are made from."""
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..corpus.casefile import load_cases
from ..verdict.deviations import DeviationSet
from ..spec.dtypes import DTYPES
from ..spec.names import ORACLE_TIMEOUT_S, TIMEOUT_S
from ..expected import default_cache_dir
from ..verdict.results import environment, summarize
from .runner import Runner
from ..corpus.select import select_cases
from ..corpus.shard import shard_selection
from ..verdict.tolerances import Tolerances, judged_by


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
    timeout: float = TIMEOUT_S
    oracle_timeout: float = ORACLE_TIMEOUT_S  # seconds a worker may spend outside backend calls on one dtype
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    tolerances: Path | None = None
    strict: bool = True
    parity: str | None = None  # "torch": torch's behaviour passes on torch's declared deviations (parity.py)
    shard: tuple | None = None  # (K, N): run the K-th of N parts of the selection (shard.py)
    conventions: str | None = None  # "torch": judge a namespace on torch's API conventions too (features.py)
    determinism: bool | None = None  # the deterministic and batch_invariant checks; None: for torch on the CPU
    verify_cache: float = 0.0  # the share of cache hits re-certified and compared (expected/store.py)
    world_size: int | None = None  # R: the backend is a vocab-parallel implementation run on R ranks
    sharding: str | None = None  # "uneven" or "padded" shards (distributed/contract.py); None: its first
    rank_listen: str | None = None  # "host:port": await ranks launched elsewhere (torchrun) instead of starting them


class Session:
    """Cases loaded and selected once; ``run(on_result)`` returns (records, timings) and calls on_result with
    each PairResult as it finishes. Every configuration error is raised here, before anything runs (workers
    started early, with ``start_workers``, are stopped then)."""

    def __init__(self, options, start_workers=False):
        self.options = options
        self.runner = Runner.from_options(options, None)
        if start_workers:  # they import their framework while the cases load (0.3 s of a 6.5 s warm run)
            self.runner.launch()
        try:
            self._select(options)
        except BaseException:
            self.runner.close()
            raise

    def _select(self, options):
        """Load the cases, the deviations given and the budgets; select (and shard) the cases to run."""
        self.cases = load_cases(options.case_paths or None)
        self.selected = select_cases(self.cases, options)
        self.shard = None  # {"index", "count", "total", "positions"} of a sharded run, for the results file
        if options.shard:
            total = sum(len(dtypes) for _, dtypes in self.selected)
            self.selected, positions = shard_selection(self.selected, *options.shard)
            self.shard = {"index": options.shard[0], "count": options.shard[1], "total": total,
                          "positions": positions}
        # None: the backend's own deviations, looked up once it is loaded
        self.runner.deviations = None if options.xfail_paths is None else DeviationSet.from_paths(options.xfail_paths)
        self.tolerances = Tolerances.load(options.tolerances)  # a broken budget file: a configuration error now

    def open(self):
        """Load the backend (or start the workers): BackendLoadError now, not in the middle of the run."""
        self.runner.open(sum(len(dtypes) for _, dtypes in self.selected) or 1)
        return self

    @property
    def deviations(self):
        if self.runner.deviations is None:
            self.open()
        return self.runner.deviations

    def warnings(self, other_ids=()):
        """Expected-deviation entries that match no loaded case (stale or misspelt), one line each; with --cases,
        where a partial corpus leaves most entries unmatched, one line that counts them. ``other_ids``: the cases of
        other tiers that read the same files (huge.cases.case_ids(): the entry points pass them)."""
        stale = self.deviations.unmatched([case.full_id for case in self.cases] + list(other_ids))
        if self.options.case_paths and stale:
            return [f"{len(stale)} of {len(self.deviations)} xfail entries match no case of the files given to --cases"]
        return [f"xfail entry {entry.id!r} ({entry.source}) matches no case" for entry in stale]

    def skip_pairs(self, done):
        """Leave out of the selection the (full id, dtype) pairs in ``done`` (kept from an earlier run)."""
        remaining = [(case, [d for d in dtypes if (case.full_id, d) not in done]) for case, dtypes in self.selected]
        self.selected = [(case, dtypes) for case, dtypes in remaining if dtypes]

    def results(self):
        """Yield a PairResult per selected (case, dtype), deviations applied; the workers stop at the end."""
        try:
            yield from self.runner.run_all(self.selected)
        finally:
            self.runner.close()

    def run(self, on_result=lambda result: None):
        records, start = [], time.perf_counter()
        for result in self.results():
            records.extend(result.records)
            on_result(result)
        timings = dict(self.runner.timings, wall_s=time.perf_counter() - start, cache=self.runner.cache_stats)
        return records, timings

    def environment(self):
        return environment(self.runner.description, self.options)

    def summary(self, records):
        """The summary of the records, with what judged them (tolerances.judged_by)."""
        ladder = tuple(self.tolerances.accumulation.get("grades", ()))
        return dict(summarize(records, ladder), judged_by=judged_by(self.tolerances, self.runner.declared))
