"""pytest plugin: the conformance cases as test items of any pytest run, enabled by ``--loss-backend SPEC``.

Each selected (case, dtype) becomes one item, ``loss-conformance::<function>/<case-id>[<dtype>]``, collected beside
the repository's own tests. It fails with every bad check and the command that reproduces it, xfails when all its
failures are expected deviations, and skips when the backend lacks the function or dtype. Without --loss-backend
the plugin does nothing: no runner import, no items. docs/pytest-plugin.md is the user's guide.
"""
import re
from pathlib import Path

import pytest

from .spec.names import CONVENTIONS, PARITY_TARGETS, TIMEOUT_S

ROOT_NAME = "loss-conformance"  # the collector's node id, and so the prefix of every item's
_DEVICE = re.compile(r"[a-z_]+(:\d+)?")


def pytest_addoption(parser):
    group = parser.getgroup("loss-conformance", "loss-conformance (loss functions checked against the mpmath oracle)")
    group.addoption("--loss-backend", metavar="SPEC", default=None,
                    help="Check this backend and add one test per selected (case, dtype); without this option the "
                         "plugin does nothing. SPEC is torch, torch-compile, an installed loss_conformance.backends "
                         "entry point, or module.path[:attr] naming torch.nn.functional-compatible callables.")
    group.addoption("--loss-device", metavar="DEVICE", default="cpu",
                    help="Run torch-based backends on this device: cpu (the default), cuda, cuda:N or mps.")
    group.addoption("--loss-dtype", metavar="LIST", default=None,
                    help="Check only these comma-separated dtypes, e.g. float32,bfloat16 (default: every dtype "
                         "a case names).")
    group.addoption("--loss-function", metavar="LIST", default=None,
                    help="Check only these comma-separated functions, e.g. cross_entropy,nll_loss (default: all).")
    group.addoption("--loss-cases", metavar="PATH", action="append", default=[],
                    help="Load the cases from this file or directory instead of the bundled corpus; may be repeated.")
    group.addoption("--loss-xfails", metavar="FILE", action="append", default=[],
                    help="Read expected deviations from this file, not cases/xfails/<backend>.yaml; may be repeated.")
    group.addoption("--loss-include-tag", metavar="TAG", action="append", default=[],
                    help="Also run the cases tagged TAG, which are opt-in (large, slow); may be repeated.")
    group.addoption("--loss-timeout", metavar="SECONDS", default=str(TIMEOUT_S),
                    help=f"Fail a case whose backend call takes longer than this (default {TIMEOUT_S:g}); isolated "
                         "runs only.")
    group.addoption("--loss-isolate", dest="loss_isolate", action="store_true", default=True,
                    help="Call the backend in a worker process of its own, so that a hang or crash fails only its "
                         "test (the default).")
    group.addoption("--loss-no-isolate", dest="loss_isolate", action="store_false",
                    help="Call the backend in the pytest process itself: faster to start, but without timeout.")
    group.addoption("--loss-parity", metavar="TARGET", default=None, choices=PARITY_TARGETS,
                    help="For kernels that aim at torch's behaviour: on torch's declared deviations, a result equal "
                         "to torch's also passes.")
    group.addoption("--loss-conventions", metavar="NAME", default=None, choices=CONVENTIONS,
                    help="Judge a torch-API namespace on torch's API conventions too, not only on the documented "
                         "semantics of the losses.")
    group.addoption("--loss-check-determinism", dest="loss_determinism", action="store_true", default=None,
                    help="Also check that calls repeat bit for bit and rows are batch-invariant (default: on for "
                         "torch on the CPU).")
    group.addoption("--loss-no-check-determinism", dest="loss_determinism", action="store_false",
                    help="Skip the determinism and batch-invariance checks.")
    group.addoption("--loss-json", metavar="PATH", default=None,
                    help="Write the results of the conformance tests that ran as a results file (the format of "
                         "`loss-conformance run --json`, for `report` and `diff`), also under xdist.")
    group.addoption("--loss-cache-dir", metavar="PATH", default=None,
                    help="Keep certified oracle results here (default: $LOSS_CONFORMANCE_CACHE or "
                         "~/.cache/loss-conformance/oracle).")
    group.addoption("--loss-verify-cache", metavar="FRACTION", default="0",
                    help="Re-certify this share (0 to 1) of the results read from the cache, chosen at random.")
    group.addoption("--loss-world-size", metavar="R", type=int, default=None,
                    help="--loss-backend names a vocab-parallel implementation: run it on R ranks of "
                         "torch.distributed, the vocabulary sharded (docs/vocab-parallel.md).")
    group.addoption("--loss-sharding", metavar="NAME", default=None, choices=("uneven", "padded"),
                    help="With --loss-world-size: uneven (torch.tensor_split's) or padded shards.")


def _choices(config, name, allowed, what):
    """The comma-separated values of an option, each one of ``allowed``; None when the option is not given."""
    import argparse

    from .spec.names import list_argument

    text = config.getoption(name)
    if text is None:
        return None
    try:
        return list_argument(allowed, what)(text)
    except argparse.ArgumentTypeError as error:
        raise pytest.UsageError(f"--{name.replace('_', '-')}: {error}") from None


def _timeout(text):
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise pytest.UsageError(f"--loss-timeout: {text!r} is not a positive number of seconds, e.g. 60 or 2.5")
    return seconds


def _fraction(text):
    import argparse

    from .spec.names import fraction_argument

    try:
        return fraction_argument(text)
    except argparse.ArgumentTypeError as error:
        raise pytest.UsageError(f"--loss-verify-cache: {error}") from None


def run_options(config):
    """The RunOptions the command line asks for; raises pytest.UsageError for a value it cannot use."""
    from .spec.names import ALL_FUNCTIONS as FUNCTIONS
    from .spec.dtypes import DTYPES
    from .expected import default_cache_dir
    from .run.session import RunOptions

    device = config.getoption("loss_device")
    if not _DEVICE.fullmatch(device):
        raise pytest.UsageError(f"--loss-device: {device!r} is not a device name such as cpu, cuda, cuda:1 or mps")
    here = config.invocation_params.dir  # relative paths mean what they meant where pytest was started
    cache_dir = config.getoption("loss_cache_dir")
    xfails = config.getoption("loss_xfails")
    return RunOptions(
        backend=config.getoption("loss_backend"), device=device,
        dtypes=_choices(config, "loss_dtype", DTYPES, "dtype") or DTYPES,
        functions=_choices(config, "loss_function", FUNCTIONS, "function"),
        case_paths=tuple(here / p for p in config.getoption("loss_cases")),
        xfail_paths=tuple(here / p for p in xfails) if xfails else None,
        include_tags=tuple(config.getoption("loss_include_tag")),
        jobs=1 if config.getoption("loss_isolate") else 0, timeout=_timeout(config.getoption("loss_timeout")),
        cache_dir=here / cache_dir if cache_dir else default_cache_dir(), parity=config.getoption("loss_parity"),
        conventions=config.getoption("loss_conventions"), determinism=config.getoption("loss_determinism"),
        verify_cache=_fraction(config.getoption("loss_verify_cache")),
        world_size=config.getoption("loss_world_size"), sharding=config.getoption("loss_sharding"))


def pytest_configure(config):
    if config.getoption("loss_backend"):
        config.pluginmanager.register(LossConformance(config, run_options(config)), "loss-conformance-session")


class ConformanceFailure(Exception):
    """A case that went wrong; its message is the whole report (no traceback belongs to it)."""


class LossConformance:
    """The active plugin of one pytest process: the loaded cases, the collection hook, the run loop."""

    def __init__(self, config, options):
        from .backends import BackendLoadError
        from .corpus.casefile import CaseFileError
        from .run.session import Session

        try:  # a backend that cannot be loaded is one usage error now, not a failure of every test later
            self.session = Session(options).open()
        except (CaseFileError, BackendLoadError) as error:
            raise pytest.UsageError(f"loss-conformance: {error}") from None
        self.runner = self.session.runner
        self._load_error = None  # once the backend failed to load, every case fails with the same line
        json_path = config.getoption("loss_json")
        self.json_path = config.invocation_params.dir / json_path if json_path else None
        self.ran = {}  # (full id, dtype) -> (records, timings) of the items this process ran
        for name in sorted({marker for case in self.session.cases for marker in (case.function, *case.tags)}):
            config.addinivalue_line("markers", f"{name}: loss-conformance cases of this function or tag")
        from .huge.cases import case_ids

        for warning in self.session.warnings(case_ids()):
            config.issue_config_time_warning(pytest.PytestConfigWarning(f"loss-conformance: {warning}"), stacklevel=2)

    def pytest_report_header(self, config):
        options, selected = self.session.options, self.session.selected
        mode = f"isolated worker, timeout {options.timeout:g} s" if options.jobs else "in-process"
        return (f"loss-conformance: backend {options.backend} on {options.device}, {len(selected)} cases, "
                f"{sum(len(dtypes) for _, dtypes in selected)} (case, dtype) tests, {mode}")

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector):
        # The cases join the session's own top-level collectors, whatever paths pytest was given: so they are
        # counted, -k / -m / --deselect / --lf apply, and every xdist worker collects the same ids in order.
        report = yield
        if isinstance(collector, pytest.Session) and report.passed:
            report.result.append(ConformanceCases.from_parent(collector, name=ROOT_NAME, nodeid=ROOT_NAME,
                                                              plugin=self))
        return report

    def pytest_sessionfinish(self, session):
        self.runner.close()
        if self.json_path is not None:
            from .plugin_results import finish_results

            finish_results(self, session.config)

    def run(self, case, dtype):
        """(records, timings) of one case in one dtype; ConformanceFailure when the backend cannot be loaded."""
        from .backends import BackendLoadError

        if self._load_error:
            raise ConformanceFailure(self._load_error)
        try:
            results = self.runner.run(case, [dtype])
        except BackendLoadError as error:
            self._load_error = f"backend {self.session.options.backend!r} could not be loaded: {error}"
            raise ConformanceFailure(self._load_error) from None
        records = [record for result in results for record in result.records]
        timings = results[0].timings if results else {}
        self.ran[(case.full_id, dtype)] = (records, timings)  # for --loss-json
        return records, timings


class ConformanceCases(pytest.Collector):
    """The selected (case, dtype) pairs, one item each, in case-file order."""

    def __init__(self, *, plugin, **kwargs):
        super().__init__(**kwargs)
        self.plugin = plugin

    def collect(self):
        for case, dtypes in self.plugin.session.selected:
            for dtype in dtypes:
                name = f"{case.full_id}[{dtype}]"
                yield ConformanceCase.from_parent(self, name=name, nodeid=f"{ROOT_NAME}::{name}", case=case,
                                                  dtype=dtype, plugin=self.plugin)


class ConformanceCase(pytest.Item):
    """One case in one dtype; markers: its function and its tags."""

    def __init__(self, *, case, dtype, plugin, **kwargs):
        super().__init__(**kwargs)
        self.case, self.dtype, self.plugin = case, dtype, plugin
        for marker in (case.function, *case.tags):
            self.add_marker(marker)

    def runtest(self):
        from .verdict.results import FAILING

        records, timings = self.plugin.run(self.case, self.dtype)
        self.user_properties += [(key, round(timings[key], 6)) for key in ("oracle_s", "backend_s") if key in timings]
        bad = [r for r in records if r["status"] in FAILING]
        if bad or not records:
            raise ConformanceFailure(self._failure_message(records, bad))
        expected = [r for r in records if r["status"] == "xfailed"]
        if expected:
            pytest.xfail("; ".join(sorted({f"{r['check']}: {r.get('reason', '')}" for r in expected})))
        if all(r["status"] == "skipped" for r in records):  # reported at the case file, not at this line
            raise pytest.skip.Exception(records[0].get("message") or "skipped", _use_item_location=True)

    def _failure_message(self, records, bad):
        from .verdict.results import reproduction

        session = self.plugin.session
        lines = [f"{self.case.full_id} [{self.dtype}] on {session.options.backend}: "
                 + (f"{len(bad)} of {len(records)} checks went wrong" if records else "the run gave no result")]
        for record in bad:
            status = record["status"]
            if status == "xpassed":
                status = f"passed, but was expected to fail ({record.get('reason', '')})"
            lines.append(f"{record['check']}: {status}")
            lines += [f"  {line}" for line in record.get("message", "").splitlines()]
        reproduce = next((r["reproduce"] for r in bad if r.get("reproduce")), None) or reproduction(
            self.case, self.dtype, session.options.backend, session.options.device, session.runner.context["cases_arg"])
        lines.append(f"reproduce: {reproduce}")
        return "\n".join(lines)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return Path(self.case.source) if self.case.source else self.path, 0, self.name
