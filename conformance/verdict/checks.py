"""The checks of one case on one backend, in every selected dtype: inputs, oracle, backend call, comparisons.

``check_case`` is pure orchestration. conformance/run/runner.py calls it in-process or inside an isolated worker
(conformance/run/isolation.py), which is what turns a hanging or crashing backend into a failed case.
"""
import contextlib
import time
import traceback
from dataclasses import replace

import numpy as np

from ..backends import Call, Outcome, capabilities_of, failure
from .compare import CheckResult, compare_array
from .. import spec
from ..inputs.layouts import LayoutError, strided
from ..spec.features import case_axes, case_layouts, required_features
from ..inputs.generate import rounded_inputs
from .results import make_record
from .support import skip_check, skipped, unsupported_call
from .stability import batch_invariance_check, deterministic_check
from .tolerances import sum_lengths

UNSUPPORTED_ERRORS = ("NotImplementedError", "Unsupported")
# A backend's own breakdown (a vocab-parallel rank that hung, died or disagreed, or a world that could not be
# started again: distributed/world.py): never the error a case expects.
BREAKDOWNS = ("RankFailure", "WorldError")


def _describe_error(error):
    name, message = error
    first_line = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    return f"{name}: {first_line[:300]}"


def _error_case_checks(case, expected, outcome):
    if expected.error != case.expect_error:
        said = f"raises {expected.error}" if expected.error else "returns a value"
        return [CheckResult("raises", "error", f"case problem: expects {case.expect_error}, but the oracle {said}")]
    if outcome.unsupported:  # "not implemented" is not the validation the case asks for
        return [unsupported_call(*outcome.unsupported, check="raises")]
    if outcome.error and outcome.error[0] in BREAKDOWNS:
        return [CheckResult("raises", "failed", f"should raise {expected.error}, but the backend broke down: "
                                                f"{_describe_error(outcome.error)}", n=1, bad=1)]
    if outcome.error:
        return [CheckResult("raises", "passed", f"raised {_describe_error(outcome.error)}", n=1)]
    shape = None if outcome.value is None else outcome.value.shape
    return [CheckResult("raises", "failed", f"returned a value of shape {shape}, but should raise "
                                             f"(the oracle raises {expected.error})", n=1, bad=1)]


def _gradient_checks(name, wanted, outcome, dtype, budget, grad_output):
    prefix = f"grad_{name}."
    if outcome.grad_error and outcome.grad_error[0] in UNSUPPORTED_ERRORS:
        return [unsupported_call(*outcome.grad_error, check=prefix + "value")]
    if outcome.grad_error or name not in outcome.grads:
        why = _describe_error(outcome.grad_error) if outcome.grad_error else "no gradient was returned"
        return [CheckResult(prefix + "value", "failed", f"backward failed: {why}", n=1, bad=1)]
    budget = budget(f"grad_{name}")
    if budget.relative is not None and grad_output is not None and grad_output.size:
        largest = float(np.max(np.abs(grad_output))) if np.all(np.isfinite(grad_output)) else 1.0
        budget = budget._replace(relative=budget.relative._replace(floor_factor=max(1.0, largest)))
    return compare_array(outcome.grads[name], outcome.grad_dtypes.get(name), wanted, dtype, budget, prefix=prefix)


def _output_checks(expected, outcome, dtype, budget, value_dtype):
    """The checks of each named output: the primary one's without a prefix ("value", "relative", ...), of the
    dtype and judged in the dtype of ``value_dtype`` (a pair, see value_dtype()); any other's prefixed with its
    name ("lse.value")."""
    checks = []
    result_dtype, judged_in = value_dtype
    for number, (name, wanted) in enumerate((expected.outputs or {}).items()):
        if number == 0:
            checks += compare_array(outcome.value, outcome.dtype, wanted, judged_in, budget("value", judged_in),
                                    result_dtype=result_dtype)
        elif name not in outcome.outputs:
            checks.append(CheckResult(f"{name}.value", "failed", f"no output {name!r} was returned", n=1, bad=1))
        else:
            checks += compare_array(outcome.outputs[name], outcome.output_dtypes.get(name), wanted, dtype,
                                    budget(name), prefix=f"{name}.")
    return checks


def _value_checks(expected, outcome, dtype, budget, not_differentiable, value_dtype):
    if outcome.unsupported:
        return [unsupported_call(*outcome.unsupported)]
    if outcome.error:
        return [CheckResult("call", "failed", f"raised {_describe_error(outcome.error)}, but should return a value",
                            n=1, bad=1)]
    checks = [CheckResult("call", "passed", n=1)] + _output_checks(expected, outcome, dtype, budget, value_dtype)
    if "input" in not_differentiable:  # forward only: the oracle computed no gradient either
        checks.append(skipped("the backend takes no gradients", check="grad_input.value"))
    for name, wanted in (expected.gradients or {}).items():
        if name in not_differentiable:
            checks.append(skipped(f"the backend takes no gradient with respect to the {name}",
                                  check=f"grad_{name}.value"))
        else:
            checks += _gradient_checks(name, wanted, outcome, dtype, budget, expected.grad_output)
    return checks


def _call_backend(backend, call, notify):
    """The backend's Outcome; a run() that raises is the backend's failure (or its way of saying unsupported).
    Arrays the backend changed in place are listed in Outcome.modified_inputs (a torch backend checks its own
    tensors; this checks the arrays of the call)."""
    originals = {name: array.copy() for name, array in call.arrays.items()}
    notify("busy")
    try:
        outcome = backend.run(call)
    except NotImplementedError as error:
        outcome = Outcome(unsupported=failure(error))
    except Exception as error:  # noqa: BLE001 -- a Backend whose run() raises: its call failed, the run goes on
        outcome = Outcome(error=failure(error))
    finally:
        notify("idle")
    changed = [name for name, array in originals.items() if not _same_bits(call.arrays[name], array)]
    outcome.modified_inputs = sorted(set(outcome.modified_inputs) | set(changed))
    return outcome


def _same_bits(array, original):
    return array.shape == original.shape and array.dtype == original.dtype and array.tobytes() == original.tobytes()


def integrity_check(outcome, capabilities):
    """The inputs.unchanged check: a backend must not modify the tensors it is given, unless it declares that it
    writes the gradient into the logits (Capabilities.in_place_gradient: then only the other arguments count)."""
    modified = [name for name in outcome.modified_inputs
                if not (capabilities.in_place_gradient and name == "input")]
    if not modified:
        return CheckResult("inputs.unchanged", "passed", n=1)
    return CheckResult("inputs.unchanged", "failed", f"the backend modified its arguments in place: "
                       f"{', '.join(modified)}", n=1, bad=1)


def _layouts(case, arrays, grad_output):
    """{name: layout} of the tensors the backend gets in a layout other than contiguous, checked against the
    values (a layout the values cannot take is the case's problem, not the backend's): a CheckResult error then."""
    layouts = {name: layout for name, layout in case_layouts(case).items()
               if name in arrays or (name == "grad_output" and grad_output is not None)}
    for name, layout in layouts.items():
        try:
            strided(arrays[name] if name in arrays else grad_output, layout)
        except LayoutError as error:
            return CheckResult("inputs", "error", f"case problem: {name} cannot take layout {layout}: {error}")
    return layouts


def value_dtype(function, dtype, capabilities):
    """(the dtype a backend's value must have, the dtype its error is measured in): the dtype under test, or the
    loss dtype it declared for the 16-bit dtypes (Capabilities.loss_dtype: a float32 loss of bfloat16 logits is
    checked as float32; a mapping {function: dtype} declares it for those functions only). Where the logits are
    computed from the operands (linear_cross_entropy), their product in the operands' dtype is rounded to it, so
    the declared float32 loss is as accurate as that dtype and its error is measured in it (docs/extensions.md,
    "The loss dtype of a computed-logits loss")."""
    declared = capabilities.loss_dtype
    if isinstance(declared, dict):
        declared = declared.get(function)
    kind = spec.get(function).kind
    if declared and kind != "softmax" and dtype in ("float16", "bfloat16"):
        return declared, (dtype if kind == "linear" else declared)
    return dtype, dtype


def check_in_dtype(case, dtype, arrays, features, backend, cache, tolerances, notify, context=None,
                   capabilities=None):
    """(list of CheckResult, timings) for one case in one dtype the backend supports; context (of the run) may
    ask for parity with torch (conformance/verdict/parity.py)."""
    capabilities = capabilities or capabilities_of(backend)
    differentiable = capabilities.differentiable
    wants_grad = case.expect_error is None and case.grad and "input" in differentiable
    start = time.perf_counter()
    notify("oracle")  # the oracle runs under its own time limit (--oracle-timeout), not the backend's
    expected = cache.expected(case.function, arrays, case.kwargs, dtype, case.seed, wants_grad, case.grad_output)
    notify("idle")
    timings = {"oracle_s": time.perf_counter() - start}
    if case.expect_error is None and expected.error:
        return [CheckResult("call", "error", f"case problem: the oracle raises {expected.error} on a case that "
                                             "expects a value")], timings
    grad_wrt = tuple(name for name in (expected.gradients or {}) if name in differentiable)
    layouts = _layouts(case, arrays, expected.grad_output if wants_grad else None)
    if isinstance(layouts, CheckResult):
        return [layouts], timings
    call = Call(case.function, dtype, arrays, dict(case.kwargs), case.form,
                expected.grad_output if wants_grad else None, grad_wrt if wants_grad else (), features, layouts)
    start = time.perf_counter()
    outcome = _call_backend(backend, call, notify)
    timings["backend_s"] = time.perf_counter() - start

    lengths = sum_lengths(case.function, case.kwargs, arrays)
    derived = {"axes": case_axes(case, arrays, dtype), "features": features}  # what budget overrides may match

    def budget(check, judged_in=dtype):
        return tolerances.resolve(case.function, check, judged_in, case.kwargs, lengths,
                                  capabilities.summation_order, case.tolerance_factor, capabilities.dtype_roundings,
                                  derived)

    if case.expect_error:
        checks = _error_case_checks(case, expected, outcome)
    else:
        not_differentiable = () if not case.grad else tuple(
            tensor.name for tensor in spec.get(case.function).tensors
            if tensor.differentiable and tensor.name not in differentiable)
        checks = _value_checks(expected, outcome, dtype, budget, not_differentiable,
                               value_dtype(case.function, dtype, capabilities))
    parity = (context or {}).get("parity")
    if parity is not None and not outcome.unsupported:
        from .parity import apply_parity

        checks = apply_parity(parity, case, dtype, call, checks, outcome, expected, budget, context["device"])
    if (context or {}).get("determinism") and not case.expect_error and outcome.error is None \
            and not outcome.unsupported:
        start = time.perf_counter()
        checks += _stability_checks(backend, call, outcome, notify)
        timings["backend_s"] += time.perf_counter() - start
    return checks + ([] if outcome.unsupported else [integrity_check(outcome, capabilities)]), timings


def _stability_checks(backend, call, outcome, notify):
    """The deterministic check, and the batch_invariant check where rows are independent (stability.py), the
    latter inside the backend's optional ``one_thread()``: batch invariance at a fixed parallelism."""
    def run(again):
        return _call_backend(backend, again, notify)

    with getattr(backend, "one_thread", contextlib.nullcontext)():
        batch = batch_invariance_check(call, run)
    return [deterministic_check(call, outcome, run)] + ([batch] if batch is not None else [])


def check_case(case, dtypes, backend, cache, tolerances, context, notify=lambda state: None):
    """Yield (dtype, records, timings) for each dtype of the case that was selected; never raises for a case."""
    try:
        source_arrays = cache.inputs(case)
    except Exception as error:  # noqa: BLE001 -- inputs that cannot be made: a case problem, not a crash
        message = f"case problem: inputs could not be generated: {type(error).__name__}: {error}"
        for dtype in dtypes:
            yield dtype, [make_record(case, dtype, CheckResult("inputs", "error", message), context)], {}
        return
    size = int(source_arrays["input"].size) if "input" in source_arrays else None
    capabilities = capabilities_of(backend)
    if (context or {}).get("conventions"):  # --conventions torch: judged on torch's API conventions too
        capabilities = replace(capabilities, conventions=context["conventions"])
    for dtype in dtypes:
        try:
            arrays = rounded_inputs(source_arrays, dtype)
            features = required_features(case, arrays, dtype)
            skip = skip_check(case, dtype, arrays, features, backend, capabilities, notify)
            results, timings = ([skip], {}) if skip else check_in_dtype(case, dtype, arrays, features, backend,
                                                                        cache, tolerances, notify, context,
                                                                        capabilities)
        except Exception:  # noqa: BLE001 -- a harness problem: report it against this case and go on
            detail = traceback.format_exc(limit=-3)
            results, timings = [CheckResult("harness", "error", f"internal error:\n{detail}")], {}
        yield dtype, [make_record(case, dtype, r, context, size) for r in results], timings
