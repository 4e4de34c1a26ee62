"""The checks of one case on one backend, in every selected dtype: inputs, oracle, backend call, comparisons.

``check_case`` is pure orchestration. conformance/runner.py calls it in-process or inside an isolated worker
(conformance/isolation.py), which is what turns a hanging or crashing backend into a failed case.
"""
import time
import traceback

from .backends import Call
from .compare import CheckResult, compare_array
from .inputs import make_inputs, rounded_inputs
from .results import make_record


def _describe_error(error):
    name, message = error
    first_line = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    return f"{name}: {first_line[:300]}"


def _error_case_checks(case, expected, outcome):
    if expected.error != case.expect_error:
        said = f"raises {expected.error}" if expected.error else "returns a value"
        return [CheckResult("raises", "error", f"case problem: expects {case.expect_error}, but the oracle {said}")]
    if outcome.error:
        return [CheckResult("raises", "passed", f"raised {_describe_error(outcome.error)}", n=1)]
    shape = None if outcome.value is None else outcome.value.shape
    return [CheckResult("raises", "failed", f"returned a value of shape {shape}, but should raise "
                                             f"(the oracle raises {expected.error})", n=1, bad=1)]


def _value_checks(case, dtype, expected, outcome, budget):
    if outcome.error:
        return [CheckResult("call", "failed", f"raised {_describe_error(outcome.error)}, but should return a value",
                            n=1, bad=1)]
    checks = [CheckResult("call", "passed", n=1)]
    checks += compare_array(outcome.value, outcome.dtype, expected.value, dtype, budget("value"))
    for name, wanted in (("input", expected.grad_input), ("target", expected.grad_target)):
        if wanted is None:
            continue
        prefix = f"grad_{name}."
        if outcome.grad_error or name not in outcome.grads:
            why = _describe_error(outcome.grad_error) if outcome.grad_error else "no gradient was returned"
            checks.append(CheckResult(prefix + "value", "failed", f"backward failed: {why}", n=1, bad=1))
            continue
        checks += compare_array(outcome.grads[name], outcome.grad_dtypes.get(name), wanted, dtype,
                                budget(f"grad_{name}"), prefix=prefix)
    return checks


def check_in_dtype(case, dtype, backend, cache, tolerances, source_arrays, notify):
    """(list of CheckResult, timings) for one case in one dtype."""
    timings = {}
    start = time.perf_counter()
    arrays = rounded_inputs(source_arrays, dtype)
    expected = cache.expected(case.function, arrays, case.kwargs, dtype, case.seed,
                              case.grad and case.expect_error is None)
    timings["oracle_s"] = time.perf_counter() - start
    if case.expect_error is None and expected.error:
        return [CheckResult("call", "error", f"case problem: the oracle raises {expected.error} on a case that "
                                             "expects a value")], timings
    wants_grad = case.expect_error is None and case.grad
    grad_wrt = ("input",) + (("target",) if expected.grad_target is not None else ())
    call = Call(case.function, dtype, arrays, dict(case.kwargs), case.form,
                expected.grad_output if wants_grad else None, grad_wrt if wants_grad else ())
    notify("busy")
    start = time.perf_counter()
    outcome = backend.run(call)
    timings["backend_s"] = time.perf_counter() - start
    notify("idle")
    if case.expect_error:
        return _error_case_checks(case, expected, outcome), timings

    def budget(check):
        return tolerances.budget(case.function, check, dtype, case.kwargs) * case.tolerance_factor

    return _value_checks(case, dtype, expected, outcome, budget), timings


def check_case(case, dtypes, backend, cache, tolerances, context, notify=lambda state: None):
    """Yield (dtype, records, timings) for each dtype of the case that was selected; never raises for a case."""
    try:
        source_arrays = make_inputs(case)
    except Exception as error:  # noqa: BLE001 -- inputs that cannot be made: a case problem, not a crash
        message = f"case problem: inputs could not be generated: {type(error).__name__}: {error}"
        for dtype in dtypes:
            yield dtype, [make_record(case, dtype, CheckResult("inputs", "error", message), context)], {}
        return
    size = int(source_arrays["input"].size) if "input" in source_arrays else None
    for dtype in dtypes:
        notify("busy")  # a probe call of a dtype is a backend call too: it runs under the timeout
        reason = backend.supports(case.function, dtype, case.form)
        notify("idle")
        if reason:
            yield dtype, [make_record(case, dtype, CheckResult("call", "skipped", reason), context, size)], {}
            continue
        try:
            results, timings = check_in_dtype(case, dtype, backend, cache, tolerances, source_arrays, notify)
        except Exception:  # noqa: BLE001 -- a harness problem: report it against this case and go on
            detail = traceback.format_exc(limit=-3)
            results, timings = [CheckResult("harness", "error", f"internal error:\n{detail}")], {}
        yield dtype, [make_record(case, dtype, r, context, size) for r in results], timings
