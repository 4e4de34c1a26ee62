"""Comparisons: budgets in units of roundoff, the failure message, the NaN/inf pattern, and compare_array's order."""
import re

import numpy as np
import pytest

from conformance.verdict.compare import check_pattern, check_result_dtype, check_shape, check_values, compare_array
from conformance.verdict.tolerances import Budget
from conformance.expected import Wanted

U32 = 2.0 ** -24


def wanted(hi, lo=None, scale=None):
    hi = np.asarray(hi, dtype=np.float64)
    lo = np.zeros_like(hi) if lo is None else np.asarray(lo, dtype=np.float64)
    scale = np.abs(hi) if scale is None else np.asarray(scale, dtype=np.float64)
    return Wanted(hi, lo, scale)


# --- budgets -----------------------------------------------------------------------------------------------------


def test_error_exactly_at_the_budget_passes_and_just_over_fails():
    truth = wanted([[1.0, 2.0], [4.0, 8.0]])
    got = truth.hi * (1 + 4 * U32)  # every element 4 u off, relative to its own scale
    at_budget = check_values(got, truth, "float32", 4.0)
    assert at_budget.status == "passed" and at_budget.bad == 0 and at_budget.error_u == pytest.approx(4.0, rel=1e-12)
    over = check_values(got, truth, "float32", 3.999)
    assert over.status == "failed" and over.bad == 4 and over.n == 4


def test_error_is_measured_in_units_of_the_dtypes_roundoff():
    truth = wanted([1.0])
    got = np.array([1.0 + 2.0 ** -10])  # 2 u in float16 (u = 2**-11), 2**14 u in float32
    assert check_values(got, truth, "float16", 2).status == "passed"
    result = check_values(got, truth, "float32", 2)
    assert result.status == "failed" and result.error_u == 2.0 ** 14


def test_error_is_relative_to_the_scale_not_the_value():
    truth = wanted([1e-3], scale=[1.0])  # e.g. a sum with cancellation: error is judged against the terms' size
    got = np.array([1e-3 + 2 * U32])
    assert check_values(got, truth, "float32", 2.5).status == "passed"
    assert check_values(got, wanted([1e-3]), "float32", 2.5).status == "failed"


def test_failure_message_lists_max_diffs_the_bad_count_and_the_worst_first():
    hi = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    got = hi.copy()
    got[0, 1] += 2.0 * 3 * U32   # 3 u
    got[1, 2] += 6.0 * 10 * U32  # 10 u: the worst
    got[1, 0] += 4.0 * 1 * U32   # 1 u: within budget
    result = check_values(got, wanted(hi), "float32", 2.0)
    assert result.status == "failed" and (result.bad, result.n) == (2, 6)
    message = result.message
    assert "Max |adiff|: " in message and "Max |rdiff|: " in message
    assert f"Max |adiff|: {6.0 * 10 * U32:.6g}" in message
    assert f"Max |rdiff|: {10 * U32:.6g}" in message
    assert "Bad results (2 out of 6)" in message
    listed = re.findall(r"^\s+\((\d+), (\d+)\) => (\S+) != (\S+)", message, re.MULTILINE)
    assert [(int(i), int(j)) for i, j, _, _ in listed] == [(1, 2), (0, 1)]  # worst first, only the bad ones
    assert float(listed[0][2]) == got[1, 2] and float(listed[0][3]) == 6.0
    assert result.worst == {"index": [1, 2], "got": got[1, 2], "wanted": 6.0}
    assert result.error_u == pytest.approx(10.0, rel=1e-9) and result.budget_u == 2.0


def test_failure_listing_shows_at_most_five_points():
    hi = np.arange(1.0, 21.0)
    result = check_values(hi * (1 + 8 * U32), wanted(hi), "float32", 1.0)
    assert "Bad results (20 out of 20)" in result.message
    assert len(re.findall(r"^\s+\(\d+,\) => .* != ", result.message, re.MULTILINE)) == 5


def test_non_finite_elements_are_left_to_the_pattern_check_and_not_counted():
    hi = np.array([1.0, np.nan, np.inf, 2.0, 1e6])
    got = np.array([1.0 + 5 * U32, np.nan, np.inf, 7.0, 1e6])  # 1e6 is inf in float16: not compared there
    result = check_values(got, wanted(hi), "float16", 1.0)
    assert (result.n, result.bad) == (2, 1)
    assert "Bad results (1 out of 2)" in result.message and "(3,) => 7.0 != 2.0" in result.message


def test_nothing_finite_to_compare_passes():
    result = check_values(np.array([np.nan]), wanted([np.nan]), "float32", 1.0)
    assert result.status == "passed" and result.n == 0


def test_a_subnormal_result_is_judged_against_the_smallest_normal():
    # float16: subnormal spacing 2**-24; the smallest normal 2**-14; u = 2**-11. Half a subnormal spacing off is
    # 2**-25 / (2**-11 * 2**-14) = 1 u, although relative to the value itself it is a third.
    hi = np.array([3 * 2.0 ** -24])
    got = hi + 2.0 ** -25
    result = check_values(got, wanted(hi), "float16", 1.0)
    assert result.status == "passed" and result.error_u == 1.0
    assert check_values(got, wanted(hi), "float16", 0.99).status == "failed"
    # in float32, where 3 * 2**-24 is a normal number, the same error is judged relative to the value itself
    in_float32 = check_values(got, wanted(hi), "float32", 1.0)
    assert in_float32.status == "failed" and in_float32.error_u == pytest.approx(2.0 ** 23 / 3, rel=1e-12)


def test_a_zero_result_with_zero_scale_uses_the_smallest_normal():
    result = check_values(np.array([2.0 ** -26]), wanted([0.0]), "float16", 1.0)
    assert result.status == "passed" and result.error_u == 0.5  # 2**-26 / (2**-11 * 2**-14)


def test_the_low_part_of_the_double_double_counts():
    # got == hi exactly, but the certified value is hi + lo; in float64 (u = 2**-53) lo = 2**-54 is 0.5 u
    truth = Wanted(np.array([1.0]), np.array([2.0 ** -54]), np.array([1.0]))
    result = check_values(np.array([1.0]), truth, "float64", 0.25)
    assert result.status == "failed" and result.error_u == 0.5
    assert check_values(np.array([1.0]), truth, "float64", 0.5).status == "passed"
    assert check_values(np.array([1.0]), wanted([1.0]), "float64", 0.0).status == "passed"  # lo = 0: no error
    # the next float64 above hi is 3 * 2**-54 from hi + lo (1.5 u), not 2**-52 (2 u)
    assert check_values(np.array([1.0 + 2.0 ** -52]), truth, "float64", 1.5).status == "passed"
    assert check_values(np.array([1.0 + 2.0 ** -52]), truth, "float64", 1.49).status == "failed"


def test_max_rdiff_ignores_zero_wanted_values():
    result = check_values(np.array([1e-9, 2.0 + 4 * 2 * U32]), wanted([0.0, 2.0], scale=[1.0, 2.0]), "float32", 1.0)
    assert result.max_rel == pytest.approx(4 * U32, rel=1e-9)


# --- NaN / inf pattern -------------------------------------------------------------------------------------------


def test_pattern_catches_nan_against_finite():
    result = check_pattern(np.array([1.0, np.nan, 3.0]), wanted([1.0, 2.0, 3.0]), "float32")
    assert result.status == "failed" and result.bad == 1
    assert "NaN/inf pattern differs at 1 of 3 elements" in result.message and "(1,) => nan != 2.0" in result.message


def test_pattern_catches_finite_against_nan():
    result = check_pattern(np.array([1.0, 2.0]), wanted([1.0, np.nan]), "float64")
    assert result.status == "failed" and "(1,) => 2.0 != nan" in result.message


def test_pattern_catches_the_sign_of_infinity():
    result = check_pattern(np.array([[np.inf, -np.inf]]), wanted([[-np.inf, -np.inf]]), "float32")
    assert result.status == "failed" and result.bad == 1 and "(0, 0) => inf != -inf" in result.message


def test_pattern_passes_when_every_position_agrees():
    values = np.array([np.nan, np.inf, -np.inf, 0.0])
    assert check_pattern(values, wanted(values), "bfloat16").status == "passed"


def test_an_oracle_value_beyond_float16s_range_expects_inf_in_float16():
    truth = wanted([1e5, -7e4, 65519.0])  # 65519 rounds to 65504, the others overflow
    assert check_pattern(np.array([np.inf, -np.inf, 65504.0]), truth, "float16").status == "passed"
    result = check_pattern(np.array([65504.0, -np.inf, 65504.0]), truth, "float16")
    assert result.status == "failed" and result.bad == 1 and "(0,) => 65504.0 != 100000.0" in result.message
    # in float32 the same values are finite, so inf there is a failure
    assert check_pattern(np.array([np.inf, -7e4, 65519.0]), truth, "float32").status == "failed"


def test_an_oracle_value_beyond_bfloat16s_range_expects_inf():
    truth = wanted([3.4e38])
    assert check_pattern(np.array([np.inf]), truth, "bfloat16").status == "passed"
    assert check_pattern(np.array([np.inf]), truth, "float32").status == "failed"


# --- shape, dtype, and compare_array -----------------------------------------------------------------------------


def test_shape_check():
    assert check_shape(np.zeros((2, 3)), wanted(np.zeros((2, 3)))).status == "passed"
    result = check_shape(np.zeros((3, 2)), wanted(np.zeros((2, 3))))
    assert result.status == "failed" and result.message == "shape (3, 2), but should be (2, 3)"


def test_dtype_mismatch_fails_with_both_names():
    result = check_result_dtype("float32", "float16")
    assert result.status == "failed" and result.message == "dtype float32, but should be float16"
    assert check_result_dtype("bfloat16", "bfloat16").status == "passed"


def test_compare_array_runs_all_four_checks_in_order():
    truth = wanted([1.0, 2.0])
    results = compare_array(np.array([1.0, 2.0]), "float32", truth, "float32", Budget(1.0))
    assert [(r.check, r.status) for r in results] == [("shape", "passed"), ("dtype", "passed"),
                                                      ("nonfinite", "passed"), ("value", "passed")]


def test_compare_array_skips_later_checks_when_the_number_of_elements_differs():
    truth = wanted([1.0, 2.0, 3.0])
    results = compare_array(np.array([[1.0, 2.0, 3.0, 4.0]]), "float16", truth, "float32", Budget(1.0),
                            prefix="grad_input.")
    assert [(r.check, r.status) for r in results] == [
        ("grad_input.shape", "failed"), ("grad_input.dtype", "failed"),
        ("grad_input.nonfinite", "skipped"), ("grad_input.value", "skipped")]
    assert "shape (1, 4), but should be (3,)" in results[0].message
    assert all("shape differs" in r.message for r in results[2:])


def test_a_wrong_shape_of_the_right_size_fails_the_shape_and_still_compares_the_values():
    """A (1,) mean where () is expected: the shape fails, and a value that is also wrong fails too."""
    truth = wanted(2.5)
    right = {r.check: r.status for r in compare_array(np.array([2.5]), "float32", truth, "float32", Budget(1.0))}
    assert right == {"shape": "failed", "dtype": "passed", "nonfinite": "passed", "value": "passed"}
    wrong = {r.check: r for r in compare_array(np.array([2.75]), "float32", truth, "float32", Budget(1.0))}
    assert wrong["shape"].status == "failed" and wrong["value"].status == "failed"
    assert "2.75 != 2.5" in wrong["value"].message


def test_compare_array_reports_a_dtype_mismatch_and_still_compares_values():
    truth = wanted([1.0, 2.0])
    results = {r.check: r for r in compare_array(np.array([1.0, 2.5]), "float64", truth, "float32", Budget(1.0))}
    assert results["dtype"].status == "failed" and "dtype float64, but should be float32" in results["dtype"].message
    assert results["value"].status == "failed" and results["nonfinite"].status == "passed"


def test_zero_dimensional_results():
    result = check_values(np.array(1.0 + 8 * U32), wanted(1.0), "float32", 1.0)
    assert result.status == "failed" and result.worst["index"] == [] and "() => " in result.message


# --- accuracy relative to the value (float16, bfloat16) ----------------------------------------------------------


def test_the_relative_check_measures_against_the_value_plus_the_accumulation_term():
    from conformance.verdict.compare import check_relative
    from conformance.verdict.tolerances import RelativeBudget

    relative = RelativeBudget(budget=2.0, accumulation="float32", accumulation_budget=8.0)
    truth = wanted([-0.001], scale=[4.0])  # p_y - 1 for a confident token: a small value of a large scale
    u = 2.0 ** -8  # bfloat16
    allowed = 2.0 * u * 0.001 + 8.0 * U32 * 4.0
    assert check_relative(truth.hi - 0.99 * allowed, truth, "bfloat16", relative).status == "passed"
    failing = check_relative(truth.hi - 1.01 * allowed, truth, "bfloat16", relative)
    assert failing.status == "failed" and failing.error_u == pytest.approx(2.02, rel=1e-9)
    assert "relative to the value" in failing.message
    # The scale check alone lets the bug of a true-class probability rounded to bfloat16 through:
    rounded_first = np.array([np.float64(np.float32(0.999)) - 1.0 + u / 2])
    assert check_values(rounded_first, truth, "bfloat16", 4.0).status == "passed"
    assert check_relative(rounded_first, truth, "bfloat16", relative).status == "failed"


def test_compare_array_adds_the_relative_check_only_where_the_dtype_has_one():
    from conformance.verdict.tolerances import Tolerances

    tolerances = Tolerances.load()
    lengths = {"class": 3}
    for dtype in ("float32", "float64"):
        assert tolerances.resolve("softmax", "value", dtype, {"dim": 1}, lengths).relative is None
    budget = tolerances.resolve("softmax", "grad_input", "bfloat16", {"dim": 1}, lengths)
    names = [r.check for r in compare_array(np.array([1.0]), "bfloat16", wanted([1.0]), "bfloat16", budget,
                                            "grad_input.")]
    assert names[-1] == "grad_input.relative" and len(names) == 5
    budget = tolerances.resolve("softmax", "value", "float32", {"dim": 1}, lengths)
    assert [r.check for r in compare_array(np.array([1.0]), "float32", wanted([1.0]), "float32", budget)][-1] == "value"


@pytest.mark.parametrize("text, field", [
    ("budgets:\n  softmax:\n    value: {float64: .nan, float32: 8, float16: 2, bfloat16: 2}\n", "float64"),
    ("budgets:\n  softmax:\n    value: {float64: .inf, float32: 8, float16: 2, bfloat16: 2}\n", "float64"),
    ("budgets:\n  softmax:\n    value: {float64: 0, float32: 8, float16: 2, bfloat16: 2}\n", "float64"),
    ("budgets:\n  softmax:\n    value: {float64: 8, float32: 8, float16: 2, bfloat16: 2}\n"
     "overrides:\n  - {function: softmax, budgets: {float64: .nan}, reason: x}\n", "overrides.0"),
    ("budgets:\n  softmax:\n    value: {float64: 8, float32: 8, float16: 2, bfloat16: 2}\n"
     "relative: {per_rounding: {float16: -1}}\n", "relative"),
    ("budgets:\n  softmax:\n    value: {float64: 8, float32: 8, float16: 2, bfloat16: 2}\n"
     "relative: {roundings: 0, per_rounding: {float16: 1}}\n", "relative.roundings"),
    ("budgets:\n  softmax:\n    value: {float64: 8, float32: 8, float16: 2, bfloat16: 2}\n"
     "accumulation: {lambda: .nan}\n", "accumulation.lambda"),
    ("budgets:\n  softmax:\n    value: {float64: 8, float32: 8, float16: 2, bfloat16: 2}\n"
     "accumulation: {order: lanes-0}\n", "accumulation.order"),
])
def test_a_non_finite_or_non_positive_budget_is_refused_when_loaded(tmp_path, text, field):
    from conformance.corpus.casefile import CaseFileError
    from conformance.verdict.tolerances import Tolerances

    path = tmp_path / "tolerances.yaml"
    path.write_text(text)
    with pytest.raises(CaseFileError, match=field):
        Tolerances.load(path)
