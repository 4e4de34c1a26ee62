"""The one run loop: (case, dtypes) tasks checked against one backend, in this process or in isolated workers.

Whoever runs cases (the CLI through session.py, the pytest plugin, the fuzzer, the mutation score) goes through
``Runner``: it loads the backend (or starts the workers), runs ``checks.check_case``, applies the expected
deviations and adds up the timings, each in this one place.
"""
from typing import NamedTuple

from ..backends import BackendLoadError, close_backend, declared_choices, load_backend
from ..spec.names import TIMEOUT_S
from ..verdict.checks import check_case
from ..verdict.deviations import DeviationSet, backend_versions, default_deviation_paths
from .isolation import WorkerPool
from ..expected import OracleCache
from ..expected.store import add_cache_stats
from ..verdict.tolerances import Tolerances

TIMING_KEYS = ("oracle_s", "backend_s")


class PairResult(NamedTuple):
    """The records of one case in one dtype, with the time its oracle and backend calls took."""

    case: object
    dtype: str
    records: list
    timings: dict


class Runner:
    """Checks tasks on one backend. ``jobs`` 0 runs in this process (no isolation, no timeout); ``jobs`` N >= 1
    runs up to N isolated workers, each call under ``timeout`` seconds. Use as a context manager, or close()."""

    def __init__(self, spec, device="cpu", *, jobs=1, timeout=TIMEOUT_S, cache_dir=None, tolerances_path=None,
                 deviations=None, strict=True, cases_arg=False, parity=None, oracle_timeout=None, conventions=None,
                 determinism=None, verify_cache=0.0, world=None):
        self.spec, self.device, self.jobs, self.timeout = spec, device, jobs, timeout
        self.oracle_timeout = oracle_timeout
        self.cache_dir, self.tolerances_path = cache_dir, tolerances_path
        self.deviations, self.strict = deviations, strict  # None: the backend's own, cases/xfails/<name>.yaml
        self.context = {"spec": spec, "device": device, "cases_arg": bool(cases_arg), "conventions": conventions,
                        "verify_cache": float(verify_cache or 0.0), "world": world,
                        "determinism": (spec == "torch" and device == "cpu") if determinism is None else determinism}
        if parity:  # torch's deviations travel with the context: the checks apply them where torch agrees
            from ..verdict.parity import parity_deviations

            self.context["parity"] = parity_deviations(parity)
        self.timings = dict.fromkeys(TIMING_KEYS, 0.0)
        self.description = None  # the backend's describe(), known once it is loaded
        self.declared = {}  # its declared design choices (backends.declared_choices), known then too
        self._backend = self._cache = self._tolerances = self._pool = None

    @classmethod
    def from_options(cls, options, deviations):
        """A runner for a session's RunOptions (conformance/run/session.py)."""
        return cls(options.backend, options.device, jobs=options.jobs, timeout=options.timeout,
                   cache_dir=options.cache_dir, tolerances_path=options.tolerances, deviations=deviations,
                   strict=options.strict, cases_arg=bool(options.case_paths), parity=options.parity,
                   oracle_timeout=options.oracle_timeout, conventions=options.conventions,
                   determinism=options.determinism, verify_cache=options.verify_cache, world=world_of(options))

    def launch(self):
        """Start the workers without awaiting them (open() does), so that their start-up overlaps the caller's
        work; a no-op in-process (jobs 0) or once started."""
        if self.jobs and self._pool is None:
            self._pool = self._new_pool()
            self._pool.launch()

    def _new_pool(self):
        return WorkerPool(self.spec, self.device, self.cache_dir, self.tolerances_path, self.context, self.jobs,
                          self.timeout, oracle_timeout=self.oracle_timeout)

    def open(self, workers=None):
        """Load the backend here, or start the workers (``workers`` caps how many); raises BackendLoadError."""
        if self.jobs == 0:
            if self._backend is None:
                self._tolerances = Tolerances.load(self.tolerances_path)
                self._cache = OracleCache(self.cache_dir, verify=self.context["verify_cache"])
                self._backend = _load_here(self.spec, self.device, self.context["world"])
                self.description = self._backend.describe()
                self.declared = declared_choices(self._backend, self.context["conventions"])
        else:
            if self._pool is None:
                self._pool = self._new_pool()
            self._pool.open(workers)
            self.description, self.declared = self._pool.backend_description, self._pool.declared
        if self.deviations is None:  # looked up by the backend's own name, once it is known
            self.deviations = DeviationSet.from_paths(default_deviation_paths(self.name))
        return self

    def run(self, case, dtypes):
        """The PairResults of one case in the given dtypes."""
        return list(self.run_all([(case, list(dtypes))]))

    def run_all(self, tasks):
        """Yield a PairResult per (case, dtype) of tasks, as each finishes (in any order when jobs > 1)."""
        tasks = [(case, list(dtypes)) for case, dtypes in tasks if dtypes]
        self.open(len(tasks))
        for case, dtype, records, timings in self._results(tasks):
            self.deviations.apply(records, self.strict, self.versions)
            for key in TIMING_KEYS:
                self.timings[key] += timings.get(key, 0.0)
            yield PairResult(case, dtype, records, timings)

    def _results(self, tasks):
        if self.jobs:
            yield from self._pool.submit(tasks)
            return
        for case, dtypes in tasks:
            for dtype, records, timings in check_case(case, dtypes, self._backend, self._cache, self._tolerances,
                                                      self.context):
                yield case, dtype, records, timings

    @property
    def name(self):
        return (self.description or {}).get("name") or self.spec

    @property
    def version(self):
        """The backend's reported version: it scopes expected deviations with ``versions:``."""
        return (self.description or {}).get("version")

    @property
    def versions(self):
        """{"backend": its version, "<framework>": the version of the framework it runs on}, for ``versions:``."""
        return backend_versions(self.description)

    @property
    def cache_stats(self):
        if self._pool is not None:
            return dict(self._pool.cache_stats)
        return self._cache.stats() if self._cache else add_cache_stats({}, {})

    def close(self):
        if self._pool is not None:
            self._pool.close()
        close_backend(self._backend)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def world_of(options):
    """The vocab-parallel world of a run's options (docs/vocab-parallel.md), or None: its calls are given half
    the run's --timeout, so that a hung rank is named before a worker's own deadline ends the call."""
    if not options.world_size:
        return None
    return {"world_size": options.world_size, "sharding": options.sharding, "listen": options.rank_listen,
            "timeout": options.timeout / 2}


def _load_here(spec, device, world=None):
    """The backend, loaded in this process: any exception of its module is a load error, not a crash."""
    try:
        return load_backend(spec, device, world)
    except BackendLoadError:
        raise
    except Exception as error:  # noqa: BLE001 -- the backend's own import or constructor failed
        raise BackendLoadError(f"backend {spec!r} could not be loaded: {type(error).__name__}: {error}") from None

