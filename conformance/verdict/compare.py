"""Comparison of a backend's array with the oracle's, and failure reports in the style of scipy's FuncData.

Error is measured in units of the dtype's unit roundoff u, relative to the oracle's scale floored at the
dtype's smallest normal number (below it, a dtype has only absolute precision):
    error_u = |got - wanted| / (u * max(scale, smallest_normal))
A cheap vectorised check runs first; the per-element listing is built only for a failure.
"""
from dataclasses import dataclass, field

import numpy as np

from ..spec.dtypes import float_format, normalize_dtype_name, round_to

WORST_SHOWN = 5  # elements listed in a failure message


@dataclass
class CheckResult:
    """One check of one case in one dtype; ``status`` is passed, failed or skipped (xfail is applied later)."""

    check: str
    status: str
    message: str = ""
    error_u: float | None = None  # the largest error, in units of u relative to the scale
    budget_u: float | None = None
    n: int = 0  # elements compared
    bad: int = 0  # elements over budget, or with a wrong NaN/inf pattern
    worst: dict = field(default_factory=dict)  # {"index": [...], "got": float, "wanted": float}
    max_abs: float | None = None
    max_rel: float | None = None
    skip_kind: str | None = None  # for a skipped check: "unsupported" or "not-applicable" (support.py)
    missing: list | None = None  # the features the backend lacks, for an unsupported case
    parity: str | None = None  # "torch": failed against the oracle, passed as equal to torch's declared deviation
    grade: str | None = None  # the tightest summation order whose bound holds the error (tolerances.Budget.grade)


def _pattern(values):
    """0 finite, 1 NaN, 2 +inf, 3 -inf."""
    return np.select([np.isnan(values), values == np.inf, values == -np.inf], [1, 2, 3], 0)


def _format_value(value):
    return repr(float(value)) if np.isfinite(value) else str(float(value))


def _listing(indices, got, wanted_hi, errors_u=None):
    lines = []
    for index in indices:
        position = tuple(int(i) for i in np.unravel_index(index, got.shape)) if got.ndim else ()
        detail = f" ({errors_u.flat[index]:.3g} u)" if errors_u is not None else ""
        lines.append(f"    {position} => {_format_value(got.flat[index])} != "
                     f"{_format_value(wanted_hi.flat[index])}{detail}")
    return lines


def check_shape(got, wanted, check="shape"):
    if got.shape == wanted.hi.shape:
        return CheckResult(check, "passed", n=1)
    return CheckResult(check, "failed", f"shape {got.shape}, but should be {wanted.hi.shape}", n=1, bad=1)


def check_result_dtype(got_dtype, dtype, check="dtype"):
    got_dtype = normalize_dtype_name(got_dtype)
    if got_dtype == dtype:
        return CheckResult(check, "passed", n=1)
    return CheckResult(check, "failed", f"dtype {got_dtype}, but should be {dtype}", n=1, bad=1)


def check_pattern(got, wanted, dtype, check="nonfinite", rounded=None):
    """The exact positions of NaN, +inf and -inf; the oracle's value is first rounded to the dtype (overflow).
    ``rounded``: that rounding, where the caller has it already (it is the same for every check of an array)."""
    rounded = round_to(wanted.hi, dtype) if rounded is None else rounded
    if np.isfinite(got).all() and np.isfinite(rounded).all():  # the common case, without the patterns
        return CheckResult(check, "passed", n=got.size)
    expected = _pattern(rounded)
    mismatch = _pattern(got) != expected
    bad = int(np.count_nonzero(mismatch))
    if not bad:
        return CheckResult(check, "passed", n=got.size)
    lines = [f"NaN/inf pattern differs at {bad} of {got.size} elements:"]
    lines += _listing(np.flatnonzero(mismatch)[:WORST_SHOWN], got, wanted.hi)
    return CheckResult(check, "failed", "\n".join(lines), n=got.size, bad=bad)


def check_values(got, wanted, dtype, budget_u, check="value", rounded=None):
    """Finite elements within budget_u units of roundoff; reports Max |adiff|, |rdiff|, bad results, worst points."""
    fmt = float_format(dtype)
    comparable = np.isfinite(got) & np.isfinite(round_to(wanted.hi, dtype) if rounded is None else rounded)
    n = int(np.count_nonzero(comparable))
    if not n:
        return CheckResult(check, "passed", "no finite elements to compare", error_u=0.0, budget_u=budget_u)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        adiff = np.where(comparable, np.abs((got - wanted.hi) - wanted.lo), 0.0)  # got - hi is exact when close
        reference = np.maximum(np.where(comparable, wanted.scale, 0.0), fmt.smallest_normal)
        # Divide by the reference first: u * smallest_normal underflows to 0 in float64 (2**-1075).
        errors_u = np.ldexp(adiff / reference, fmt.precision)
        rdiff = np.where(comparable & (wanted.hi != 0), adiff / np.abs(wanted.hi), 0.0)
    errors_u = np.where(np.isnan(errors_u), np.inf, errors_u)  # an error that cannot be measured is not small
    bad_mask = errors_u > budget_u
    worst = int(np.argmax(errors_u))
    result = CheckResult(
        check, "passed", error_u=float(errors_u.flat[worst]), budget_u=budget_u, n=n,
        bad=int(np.count_nonzero(bad_mask)), max_abs=float(adiff.max()), max_rel=float(rdiff.max()),
        worst={"index": [int(i) for i in np.unravel_index(worst, got.shape)] if got.ndim else [],
               "got": float(got.flat[worst]), "wanted": float(wanted.hi.flat[worst])})
    if not result.bad:
        return result
    order = np.argsort(-errors_u, axis=None, kind="stable")[:min(WORST_SHOWN, result.bad)]
    lines = [f"Max |adiff|: {result.max_abs:.6g}", f"Max |rdiff|: {result.max_rel:.6g}",
             f"Max error: {result.error_u:.4g} u of {dtype} (u = 2**-{fmt.precision}), budget {budget_u:.4g} u",
             f"Bad results ({result.bad} out of {n}), worst first (index => got != wanted):"]
    lines += _listing(order, got, wanted.hi, errors_u)
    result.status, result.message = "failed", "\n".join(lines)
    return result


def _errors_relative(got, wanted, dtype, relative, rounded=None):
    """(comparable mask, |error|, error in u of the dtype relative to the value plus the accumulation term).
    Only elements whose value is at least the dtype's smallest normal times ``relative.floor_factor`` are
    compared: below the smallest normal a dtype holds only absolute precision, and a gradient stored in the dtype
    and then scaled by the upstream gradient h keeps the absolute error of a subnormal intermediate up to
    smallest normal * |h|. The scale check alone applies there."""
    fmt, accumulation = float_format(dtype), float_format(relative.accumulation)
    floor = fmt.smallest_normal * relative.floor_factor
    rounded = round_to(wanted.hi, dtype) if rounded is None else rounded
    comparable = np.isfinite(got) & np.isfinite(rounded) & (np.abs(wanted.hi) >= floor)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        adiff = np.where(comparable, np.abs((got - wanted.hi) - wanted.lo), 0.0)
        value_term = np.abs(wanted.hi) * fmt.unit_roundoff
        scale_term = np.maximum(wanted.scale, accumulation.smallest_normal) * accumulation.unit_roundoff
        reference = value_term + (relative.accumulation_budget / relative.budget) * scale_term
        errors_u = np.where(comparable, adiff / reference, 0.0)
    return comparable, adiff, np.where(np.isnan(errors_u), np.inf, errors_u)


def check_relative(got, wanted, dtype, relative, check="relative", rounded=None):
    """Finite elements within ``relative.budget`` units of the dtype's roundoff relative to their own value, plus
    ``relative.accumulation_budget`` units of the accumulation dtype's roundoff relative to the scale
    (docs/tolerances.md, "Accuracy relative to the value")."""
    comparable, adiff, errors_u = _errors_relative(got, wanted, dtype, relative, rounded)
    n = int(np.count_nonzero(comparable))
    if not n:
        return CheckResult(check, "passed", "no finite elements to compare", error_u=0.0, budget_u=relative.budget)
    worst = int(np.argmax(errors_u))
    bad = int(np.count_nonzero(errors_u > relative.budget))
    result = CheckResult(
        check, "passed", error_u=float(errors_u.flat[worst]), budget_u=relative.budget, n=n, bad=bad,
        max_abs=float(adiff.max()),
        worst={"index": [int(i) for i in np.unravel_index(worst, got.shape)] if got.ndim else [],
               "got": float(got.flat[worst]), "wanted": float(wanted.hi.flat[worst])})
    if not bad:
        return result
    order = np.argsort(-errors_u, axis=None, kind="stable")[:min(WORST_SHOWN, bad)]
    lines = [f"Max error: {result.error_u:.4g} u of {dtype} relative to the value (plus "
             f"{relative.accumulation_budget:g} u of {relative.accumulation} of the scale per "
             f"{relative.budget:g} u), budget {relative.budget:g} u",
             f"Bad results ({bad} out of {n}), worst first (index => got != wanted):"]
    lines += _listing(order, got, wanted.hi, errors_u)
    result.status, result.message = "failed", "\n".join(lines)
    return result


def compare_array(got, got_dtype, wanted, dtype, budget, prefix="", result_dtype=None):
    """shape, dtype, NaN/inf pattern and value checks of one array against a tolerances.Budget, with the grade of
    its error, and the relative-accuracy check where the budget has one; the array must be of result_dtype (by
    default the dtype its error is measured in). A wrong shape with the right number of
    elements (a (1,) loss for a ()) fails the shape check and is still compared, element by element in order, so
    that a wrong value shows too; with another number of elements the later checks skip."""
    names = [f"{prefix}{name}" for name in ("shape", "dtype", "nonfinite", "value", "relative")]
    shape = check_shape(got, wanted, names[0])
    results = [shape, check_result_dtype(got_dtype, result_dtype or dtype, names[1])]
    if shape.status != "passed":
        if got.size != wanted.hi.size:
            reason = "not compared: the shape differs and so does the number of elements (see the shape check)"
            return results + [CheckResult(name, "skipped", reason)
                              for name in names[2:4 + (budget.relative is not None)]]
        got = got.reshape(wanted.hi.shape)  # compared in order, the shape failure reported beside
    return results + element_checks(got, wanted, dtype, budget, prefix)


def element_checks(got, wanted, dtype, budget, prefix=""):
    """The nonfinite, value (with its grade) and relative checks of an array of the wanted shape."""
    rounded = round_to(wanted.hi, dtype)  # once for the three checks
    values = check_values(got, wanted, dtype, budget.scale_u, f"{prefix}value", rounded)
    values.grade = budget.grade(values.error_u)
    results = [check_pattern(got, wanted, dtype, f"{prefix}nonfinite", rounded), values]
    if budget.relative is not None:
        results.append(check_relative(got, wanted, dtype, budget.relative, f"{prefix}relative", rounded))
    return results
