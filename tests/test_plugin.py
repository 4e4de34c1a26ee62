"""The pytest plugin (conformance/plugin.py), run on a tiny case corpus in throw-away pytest sessions."""
import importlib
import json
import multiprocessing
import textwrap

import pytest

pytest.importorskip("torch")
# Imported before any inner run: pytester drops the modules an inner run imported, and torch and numpy cannot be
# imported twice in one process; nor can multiprocessing's shared memory (a worker's status word made from a
# re-imported multiprocessing.heap no longer pickles for the spawned worker).
for _module in ("torch.nn.functional", "conformance.backends.torch_backend", "conformance.run.session",
                "conformance.plugin", "multiprocessing.sharedctypes"):
    importlib.import_module(_module)

pytest_plugins = ["pytester"]

CROSS_ENTROPY = """\
function: cross_entropy
cases:
  - id: NC-mean-ls=0.1
    kwargs: {reduction: mean, label_smoothing: 0.1}
    inputs:
      input: {shape: [3, 4], dist: normal, scale: 3}
      target: {kind: index}
  - id: target-out-of-range
    inputs:
      input: {shape: [3, 4]}
      target: {kind: index, out_of_range: high}
    expect: {error: TargetOutOfRangeError}
"""
SOFTMAX = """\
function: softmax
tags: [extreme]
cases:
  - id: rows
    kwargs: {dim: 1}
    inputs:
      input: {shape: [3, 4], dist: normal, scale: 30}
"""
IDS = [f"loss-conformance::{case}[{dtype}]" for case in
       ("cross_entropy/NC-mean-ls=0.1", "cross_entropy/target-out-of-range", "softmax/rows")
       for dtype in ("float64", "float32")]
# A backend that is wrong by 1 % in cross_entropy and offers no softmax.
SCALED_BACKEND = """\
import torch.nn.functional as F

def cross_entropy(*args, **kwargs):
    return F.cross_entropy(*args, **kwargs) * 1.01
"""


# Inner runs leave out the hypothesis plugin, which would import hypothesis afresh in each of them (slow).
INNER_RUN = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest"]


@pytest.fixture
def loss_args(pytester, tmp_path):
    cases = pytester.mkdir("cases")
    (cases / "cross_entropy.yaml").write_text(CROSS_ENTROPY)
    (cases / "softmax.yaml").write_text(SOFTMAX)
    return [*INNER_RUN, "--loss-cases", str(cases), "--loss-dtype", "float64,float32",
            "--loss-cache-dir", str(tmp_path / "oracle-cache")]


def backend_module(pytester, name, source):
    pytester.makepyfile(**{name: textwrap.dedent(source)})
    pytester.syspathinsert()
    return name


def test_does_nothing_without_backend(pytester):
    pytester.makepyfile(test_own="""\
        import sys

        def test_own():
            assert "conformance.run.session" not in sys.modules and "torch" not in sys.modules
        """)
    result = pytester.runpytest_subprocess("-v", *INNER_RUN)
    assert [line.split()[0] for line in result.outlines if "::" in line] == ["test_own.py::test_own"]
    result.assert_outcomes(passed=1)
    assert "loss-conformance:" not in result.stdout.str()
    assert pytester.parseconfigure().pluginmanager.get_plugin("loss-conformance-session") is None


def test_collects_one_item_per_case_and_dtype_beside_own_tests(pytester, loss_args):
    pytester.makepyfile(test_own="def test_own():\n    pass\n")
    result = pytester.runpytest("--collect-only", "-q", "--loss-backend", "torch", *loss_args)
    assert [line for line in result.outlines if "::" in line] == ["test_own.py::test_own", *IDS]
    result = pytester.runpytest("--collect-only", "-q", "-m", "softmax or extreme", "--loss-backend", "torch",
                                *loss_args)
    assert [line for line in result.outlines if "::" in line] == IDS[4:]
    result = pytester.runpytest("--collect-only", "-q", "-k", "float32", "--deselect", IDS[1], "--loss-backend",
                                "torch", *loss_args)
    assert [line for line in result.outlines if "::" in line] == [IDS[3], IDS[5]]


def test_all_pass_against_torch(pytester, loss_args):
    result = pytester.runpytest("--loss-backend", "torch", "--loss-no-isolate", *loss_args)
    result.stdout.fnmatch_lines(["loss-conformance: backend torch on cpu, 3 cases, 6 (case, dtype) tests, in-process"])
    result.assert_outcomes(passed=6)


def test_wrong_values_fail_with_bad_results_and_reproduce_line(pytester, loss_args):
    name = backend_module(pytester, "scaled_backend", SCALED_BACKEND)
    result = pytester.runpytest("--loss-backend", name, "--loss-no-isolate", "--loss-function", "cross_entropy",
                                *loss_args)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*_ cross_entropy/NC-mean-ls=0.1[[]float32[]] _*",
        "cross_entropy/NC-mean-ls=0.1 [[]float32[]] on scaled_backend: 2 of 10 checks went wrong",
        "value: failed",
        "*Bad results (1 out of 1)*",
        "grad_input.value: failed",
        "*Bad results (12 out of 12)*",
        ("reproduce: loss-conformance run --backend scaled_backend --device cpu --cases *cross_entropy.yaml "
         "--id cross_entropy/NC-mean-ls=0.1 --dtype float32"),
    ])
    assert "Traceback" not in result.stdout.str() and "plugin.py" not in result.stdout.str()


def test_missing_function_skips_with_reason(pytester, loss_args):
    name = backend_module(pytester, "scaled_backend", SCALED_BACKEND)
    result = pytester.runpytest("--loss-backend", name, "--loss-no-isolate", "--loss-function", "softmax", "-rs",
                                *loss_args)
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED [[]2[]] *softmax.yaml:1: scaled_backend offers no function 'softmax'"])


def test_xfails_file_turns_expected_failures_into_xfailed(pytester, loss_args):
    name = backend_module(pytester, "scaled_backend", SCALED_BACKEND)
    xfails = pytester.makefile(".yaml", xfails="""\
        entries:
          - id: "cross_entropy/NC-*"
            checks: [value, grad_input.value]
            reason: "this backend scales cross_entropy by 1.01"
        """)
    result = pytester.runpytest("--loss-backend", name, "--loss-no-isolate", "--loss-function", "cross_entropy",
                                "--loss-xfails", str(xfails), "-rx", *loss_args)
    result.assert_outcomes(passed=2, xfailed=2)
    result.stdout.fnmatch_lines([("XFAIL loss-conformance::cross_entropy/NC-mean-ls=0.1[[]float64[]] - "
                                  "grad_input.value: this backend scales*; value: this backend scales*")])


def test_isolated_worker_times_out_only_the_hanging_case(pytester, loss_args):
    name = backend_module(pytester, "sleepy_backend", """\
        import time
        import torch
        import torch.nn.functional as F

        SUPPORTED_DTYPES = ("float64", "float32")  # declared, so no support probe runs outside the timeout

        def cross_entropy(input, target, **kwargs):
            if input.dtype == torch.float32 and kwargs.get("label_smoothing"):
                time.sleep(60)
            return F.cross_entropy(input, target, **kwargs)
        """)
    # 5 s, not less: the first call of a fresh worker (a cold torch) must not time out on a loaded CI machine
    result = pytester.runpytest("--loss-backend", name, "--loss-timeout", "5", "--loss-function", "cross_entropy",
                                *loss_args)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*_ cross_entropy/NC-mean-ls=0.1[[]float32[]] _*", "*: 1 of 1 checks went wrong",
                                 "call: failed", "  timed out: the backend did not return within 5 s"])
    assert not multiprocessing.active_children()  # the replacement worker was stopped at the session's end


def test_runs_under_xdist(pytester, loss_args):
    result = pytester.runpytest_subprocess("-n", "2", "--loss-backend", "torch", "--loss-no-isolate", *loss_args)
    result.assert_outcomes(passed=6)


@pytest.mark.parametrize(("option", "value", "accepted"), [
    ("--loss-dtype", "float64,float8",
     "'float8' is not a dtype; expected a comma-separated list of float64, float32, float16, bfloat16"),
    ("--loss-function", "mse_loss",
     "'mse_loss' is not a function; expected a comma-separated list of softmax, log_softmax, nll_loss, cross_entropy"),
    ("--loss-timeout", "soon", "'soon' is not a positive number of seconds"),
], ids=["dtype", "function", "timeout"])
def test_bad_value_is_a_usage_error_naming_what_is_accepted(pytester, loss_args, option, value, accepted):
    result = pytester.runpytest("--loss-backend", "torch", *loss_args, option, value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {option}: {accepted}*"])


def test_loss_json_writes_one_results_file_under_xdist_equal_to_a_plain_run(pytester, loss_args):
    plain = pytester.runpytest_subprocess("--loss-backend", "torch", "--loss-no-isolate", "--loss-json", "plain.json",
                                          *loss_args)
    plain.assert_outcomes(passed=6)
    spread = pytester.runpytest_subprocess("-n", "2", "--loss-backend", "torch", "--loss-no-isolate",
                                           "--loss-json", "xdist.json", *loss_args)
    spread.assert_outcomes(passed=6)

    def comparable(name):
        document = json.loads((pytester.path / name).read_text())
        document.pop("timings")
        document["environment"].pop("argv")
        return document

    assert comparable("plain.json") == comparable("xdist.json")
    assert len(comparable("plain.json")["results"]) > 6 and not list(pytester.path.glob("*.part"))


def test_a_backend_that_cannot_be_loaded_is_one_usage_error_at_startup(pytester, loss_args):
    result = pytester.runpytest("--loss-backend", "no_such_module_for_lc", "--loss-no-isolate", *loss_args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no_such_module_for_lc*"])
    assert "passed" not in result.stdout.str() and "failed" not in result.stdout.str()


@pytest.mark.parametrize("flags, determinism", [((), None), (("--loss-check-determinism",), True),
                                                (("--loss-no-check-determinism",), False)])
def test_the_determinism_options_reach_the_run(pytester, flags, determinism):
    from conformance.plugin import run_options

    config = pytester.parseconfig("--loss-backend", "torch", *flags)
    assert run_options(config).determinism is determinism  # None: the run decides (on for torch on the CPU)


def test_a_vocab_parallel_implementation_runs_on_a_world(pytester, loss_args):
    result = pytester.runpytest_subprocess("--loss-backend", "conformance.mutants.vocab_parallel:LocalMaximum",
                                           "--loss-world-size", "2", "--loss-function", "cross_entropy", *loss_args)
    result.assert_outcomes(passed=2, failed=2)  # the error case passes; the shifted sums do not
    result.stdout.fnmatch_lines(["*reproduce: loss-conformance run --backend conformance.mutants.vocab_parallel:"
                                 "LocalMaximum --device cpu --world-size 2*"])
    result = pytester.runpytest_subprocess("--loss-backend", "reference", "--loss-world-size", "2",
                                           "--loss-function", "cross_entropy", *loss_args)
    result.assert_outcomes(passed=4)
