"""The fuzzing loop: check drawn calls with the runner's checks, let hypothesis shrink a failure, write it out.

Each drawn call becomes an in-memory case with literal inputs and goes through the run loop of ``run``
(conformance/run/runner.py), with the same checks. A failed, erroneous or unexpectedly passing check that neither
the backend's xfail file nor a known-deviation rule (known.py) explains raises a Finding, one exception class
per (function, check), so that hypothesis shrinks each kind of failure on its own. The shrunk call is written
as a YAML case. Rounds: with keep_going, the kinds already found stop counting as failures and the search goes on.
"""
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..spec.dtypes import DTYPES
from ..spec.names import FUNCTIONS, TIMEOUT_S

PROFILE_NAMES = ("ci", "default", "nightly")
PROFILE_BUDGETS = {"ci": 50, "default": 200, "nightly": 20000}  # max_examples


@dataclass
class FuzzOptions:
    backend: str = "torch"
    device: str = "cpu"
    functions: tuple = FUNCTIONS
    dtypes: tuple = DTYPES
    max_examples: int | None = None  # None: the profile's budget
    minutes: float | None = None
    seed: int | None = None
    profile: str = "default"
    database: Path | None = None  # None: no example database
    out_dir: Path = Path("cases/found")
    timeout: float | None = None  # None: in-process, a hang is not caught
    keep_going: bool = False
    invalid: bool = True
    full_range: bool = False  # values up to each dtype's largest (default: strategies.HEADROOM orders below)
    known: str = "auto"  # auto | torch | none
    shrink_seconds: float = 120.0


@dataclass
class Finding:
    key: tuple  # (function, check)
    call: object
    record: dict
    path: Path | None = None
    reproduce: str = ""
    note: str = ""


@dataclass
class FuzzReport:
    examples: int = 0
    shrink_examples: int = 0
    seconds: float = 0.0
    findings: list = field(default_factory=list)
    declared: dict = field(default_factory=dict)  # rule name -> examples it explained
    passed: int = 0
    stopped_by: str = "budget"

    @property
    def rate(self):
        return self.examples / self.seconds if self.seconds else 0.0


class FindingError(Exception):
    """Raised inside the hypothesis test for an unexplained failure; one subclass per (function, check)."""

    key = None


_FINDING_CLASSES = {}


def finding_class(key):
    """The FindingError subclass of one kind of failure: hypothesis shrinks failures of different classes apart."""
    if key not in _FINDING_CLASSES:
        name = "Finding_" + "_".join(part.replace(".", "_") for part in key)
        _FINDING_CLASSES[key] = type(name, (FindingError,), {"key": key})
    return _FINDING_CLASSES[key]


class TimeUp(BaseException):
    """Ends a hypothesis run when the time budget is spent; a BaseException, so hypothesis does not shrink it."""


def default_database_dir():
    """The example database's directory: $LOSS_CONFORMANCE_CACHE/../hypothesis when that is set, else
    <$XDG_CACHE_HOME or ~/.cache>/loss-conformance/hypothesis (beside the oracle cache)."""
    from ..expected import default_cache_dir

    return default_cache_dir().parent / "hypothesis"


def register_profiles():
    """Register the settings profiles 'loss-conformance-<name>' (idempotent); returns their names."""
    from hypothesis import HealthCheck, Phase, settings

    common = {"deadline": None, "suppress_health_check": list(HealthCheck), "print_blob": False,
              "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]}
    settings.register_profile("loss-conformance-ci", max_examples=PROFILE_BUDGETS["ci"], derandomize=True,
                              database=None, **common)
    settings.register_profile("loss-conformance-default", max_examples=PROFILE_BUDGETS["default"], **common)
    settings.register_profile("loss-conformance-nightly", max_examples=PROFILE_BUDGETS["nightly"], **common)
    return {name: f"loss-conformance-{name}" for name in PROFILE_NAMES}


class Checker:
    """Runs the checks of ``run`` on drawn calls against one backend (in-process, or isolated with a timeout)."""

    def __init__(self, options):
        from ..run.runner import Runner
        from .known import rules_for

        self.options = options
        self.rules = rules_for(options.backend, options.known)
        # No oracle cache: every drawn input is new, caching would only fill the disk.
        self.runner = Runner(options.backend, options.device, jobs=1 if options.timeout else 0,
                             timeout=options.timeout or TIMEOUT_S, cache_dir=None, strict=False,
                             cases_arg=True).open(1)

    def check(self, call):
        """(unexplained failing records, names of the known rules that explained others) for one call."""
        from ..verdict.results import FAILING
        from .found import case_from_call
        from .known import explain

        results = self.runner.run(case_from_call(call), [call.dtype])
        unexplained, explained = [], []
        for record in (record for result in results for record in result.records):
            if record["status"] not in FAILING:
                continue
            rule = explain(self.rules, call, record)
            if rule is None:
                unexplained.append(record)
            else:
                explained.append(rule.name)
        return unexplained, explained

    def close(self):
        self.runner.close()


def example_database(path, keep_fetched):
    """The example database in ``path``; keep_fetched: never delete or move the entries found there at the start.

    A round after the first treats the kinds of failure already found as passes, and hypothesis deletes stored
    examples that pass: without this, --keep-going would erase the failures it had just stored.
    """
    from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

    directory = DirectoryBasedExampleDatabase(str(path))
    if not keep_fetched:
        return directory

    class KeepFetched(ExampleDatabase):
        def __init__(self):
            super().__init__()
            self.fetched = set()

        def fetch(self, key):
            for value in directory.fetch(key):
                self.fetched.add((key, value))
                yield value

        def save(self, key, value):
            directory.save(key, value)

        def delete(self, key, value):
            if (key, value) not in self.fetched:
                directory.delete(key, value)

        def move(self, src, dest, value):
            if (src, value) not in self.fetched:
                directory.move(src, dest, value)

    return KeepFetched()


def _settings(options, budget, later_round):
    from hypothesis import Verbosity, settings

    profile = settings.get_profile(register_profiles()[options.profile])
    changes = {"max_examples": budget, "verbosity": Verbosity.quiet, "report_multiple_bugs": True}
    if options.seed is not None:
        changes["derandomize"] = False  # hypothesis.seed decides instead
    changes["database"] = example_database(options.database, later_round) if options.database else None
    return settings(profile, **changes)


def _findings_in(error):
    """The FindingError instances in a raised exception or exception group (hypothesis groups several bugs)."""
    if isinstance(error, FindingError):
        return [error]
    return [found for inner in getattr(error, "exceptions", ()) for found in _findings_in(inner)]


class _Round:
    """One hypothesis run: checks each drawn call, remembers the latest failing call of each kind."""

    def __init__(self, checker, report, excluded, deadline, shrink_seconds, on_progress):
        self.checker, self.report, self.excluded = checker, report, excluded
        self.deadline, self.shrink_seconds, self.on_progress = deadline, shrink_seconds, on_progress
        self.by_key = {}  # (function, check) -> (call, record): the last failing one is the most shrunk
        self.first_failure = None  # monotonic time of the first failure of this round

    def __call__(self, call):
        now = time.monotonic()
        if self.first_failure is None and self.deadline is not None and now > self.deadline:
            raise TimeUp("time")
        if self.first_failure is not None and now - self.first_failure > self.shrink_seconds:
            raise TimeUp("shrink time")
        report = self.report
        report.examples += 1
        shrinking = self.first_failure is not None
        report.shrink_examples += shrinking
        unexplained, explained = self.checker.check(call)
        if not shrinking:
            for name in set(explained):
                report.declared[name] = report.declared.get(name, 0) + 1
        self.on_progress(report)
        new = [r for r in unexplained if (r["function"], r["check"]) not in self.excluded]
        if not new:
            report.passed += not shrinking
            return
        key = (new[0]["function"], new[0]["check"])
        self.by_key[key] = (call, new[0])
        self.first_failure = self.first_failure or now
        raise finding_class(key)(f"{key[0]} {key[1]}: {(new[0].get('message') or '').strip()[:200]}")


def run_round(checker, options, report, excluded, budget, deadline, on_progress=lambda report: None):
    """Findings of one hypothesis run over at most ``budget`` generated calls; and why it stopped early, if it did."""
    from hypothesis import given, seed

    from .calls import calls

    state = _Round(checker, report, excluded, deadline, options.shrink_seconds, on_progress)

    def fuzz_one(call):
        state(call)

    strategy = calls(options.functions, options.dtypes, options.invalid, options.full_range)
    test = _settings(options, budget, bool(excluded))(given(strategy)(fuzz_one))
    if options.seed is not None:
        test = seed(options.seed)(test)
    keys, stopped, note = [], None, ""
    try:
        test()
    except TimeUp as stop:
        stopped = str(stop)
        keys = list(state.by_key)
        note = f"shrinking stopped after {options.shrink_seconds:g} s" if stopped == "shrink time" else ""
    except Exception as error:  # hypothesis re-raises the shrunk failures, several in an exception group
        keys = [finding.key for finding in _findings_in(error)]
        if not keys:
            raise
        if type(error).__name__ == "FlakyFailure":
            note = "flaky: the failure did not reproduce on every replay"
    findings = [Finding(key, *state.by_key[key], note=note) for key in dict.fromkeys(keys)]
    return findings, (None if stopped == "shrink time" else stopped)


def fuzz(options, on_finding=lambda finding: None, on_progress=lambda report: None):
    """Fuzz a backend; writes each finding as a case file under options.out_dir. Returns a FuzzReport."""
    report = FuzzReport()
    start = time.monotonic()
    deadline = start + 60.0 * options.minutes if options.minutes else None
    total = options.max_examples or (10**9 if options.minutes else PROFILE_BUDGETS[options.profile])
    checker = Checker(options)
    excluded = set()
    try:
        while True:
            budget = total - (report.examples - report.shrink_examples)
            if budget <= 0:
                break
            findings, stopped = run_round(checker, options, report, excluded, budget, deadline, on_progress)
            for finding in findings:
                save_finding(finding, options)
                report.findings.append(finding)
                on_finding(finding)
            excluded |= {finding.key for finding in findings}
            if stopped:
                report.stopped_by = stopped
                break
            if not findings or not options.keep_going:
                break
    finally:
        checker.close()
        report.seconds = time.monotonic() - start
    return report


def display_path(path):
    """The path relative to the working directory when it lies below it (shorter commands to copy)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd())
    except ValueError:
        return Path(path)


def save_finding(finding, options):
    """Write the finding's case file and fill in its path and one-line reproduction."""
    from ..verdict.results import reproduction
    from .found import case_from_call, choose_path, write_found_case

    call = finding.call
    path = display_path(choose_path(call, options.out_dir))
    run_line = f"loss-conformance run --backend {options.backend} --device {options.device} --cases {path}"
    strategy = f"invalid call ({call.defect}, expects {call.expect_error})" if call.expect_error else "valid call"
    seed = options.seed if options.seed is not None else "derandomized" if options.profile == "ci" else "random"
    provenance = {"Backend": f"{options.backend} on {options.device}",
                  "Hypothesis": f"profile {options.profile}, seed {seed}",
                  "Strategy": strategy, "Reproduce": run_line}
    if finding.note:
        provenance["Note"] = finding.note
    finding.path = write_found_case(call, finding.record, path, provenance)
    case = case_from_call(call, source=str(finding.path))
    finding.reproduce = reproduction(case, call.dtype, options.backend, options.device, cases_arg=True)
