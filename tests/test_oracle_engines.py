"""The engines under the formulas: selection, the arb engine's enclosures and its hand-over to mpmath.

The existing oracle tests run on both engines (test_oracle_engine_fixture.py); these test what is particular
to engines: choosing one, the soundness of the arb engine's certificate, and that every value a ball cannot
hold (NaN, infinities, an undecidable zero denominator) is answered by mpmath with the reference decisions.
"""
import math

import mpmath
import numpy as np
import pytest

import oracle
from oracle.certify import NEGLIGIBLE
from oracle.crosscheck import compare_engines

flint = pytest.importorskip("flint", reason="the arb engine needs python-flint")
NAN, INF = float("nan"), float("inf")


def test_the_engines_and_their_names():
    assert oracle.ENGINES == ("mpmath", "arb")
    assert oracle.engine_name("mpmath") == "mpmath" and oracle.engine_name("arb") == "arb"
    assert oracle.engine_name("auto") == "arb"  # python-flint is installed here
    assert oracle.engine_label("arb").startswith(f"arb (python-flint {flint.__version__}")
    assert mpmath.__version__ in oracle.engine_version("mpmath") and flint.__version__ in oracle.engine_version("arb")


def test_selection_order_keyword_then_scope_then_environment(monkeypatch):
    monkeypatch.setenv(oracle.ENGINE_ENVIRONMENT_VARIABLE, "mpmath")
    assert oracle.engine_name() == "mpmath"
    with oracle.using_engine("arb"):
        assert oracle.engine_name() == "arb"
        assert oracle.engine_name("mpmath") == "mpmath"
    monkeypatch.setenv(oracle.ENGINE_ENVIRONMENT_VARIABLE, "auto")
    assert oracle.engine_name() == "arb"


def test_unknown_engine_names_are_rejected(monkeypatch):
    with pytest.raises(ValueError, match="unknown oracle engine 'mpfr'"):
        oracle.softmax([1.0, 2.0], 0, engine="mpfr")
    monkeypatch.setenv(oracle.ENGINE_ENVIRONMENT_VARIABLE, "mpfr")
    with pytest.raises(ValueError, match=oracle.ENGINE_ENVIRONMENT_VARIABLE):
        oracle.engine_name()


def test_names_ignore_case_and_an_empty_variable_is_unset(monkeypatch):
    assert oracle.engine_name(" ARB ") == "arb"
    monkeypatch.setenv(oracle.ENGINE_ENVIRONMENT_VARIABLE, "")
    assert oracle.engine_name() == "arb"


def test_results_are_mpf_arrays_on_every_engine(rng):
    logits = rng.normal(size=(3, 5))
    for engine in oracle.ENGINES:
        value = oracle.log_softmax(logits, 1, engine=engine)
        assert value.dtype == object and all(type(v) is mpmath.mpf for v in value.flat)
        certified = oracle.certify(oracle.cross_entropy_vjp, logits, np.array([0, 1, 4]), np.float64(1), engine=engine)
        assert all(type(v) is mpmath.mpf for v in certified.input.scale.flat)


def test_a_midpoint_becomes_the_mpf_python_flint_itself_would_give(rng):
    """The arb engine builds each public mpf from the midpoint's mantissa and exponent (2x faster than
    python-flint's own _mpf_): the same normalised tuple, at any precision, without rounding to mp.prec."""
    to_mpf = oracle._engine.resolve_engine("arb").to_mpf
    balls = [flint.arb(0), flint.arb(1), flint.arb(-3), flint.arb(2) ** 200, flint.arb(2) ** -1070]
    for prec in (64, 128, 512):
        with flint.ctx.workprec(prec):
            balls += [flint.arb(float(x)).exp() / 3 for x in rng.normal(size=50) * 50]
            balls += [-ball for ball in balls[-50:]]
    with mpmath.workprec(53):  # a narrow mp.prec must not round what is converted
        for ball in balls:
            converted = to_mpf(ball)
            assert type(converted) is mpmath.mpf and converted._mpf_ == ball._mpf_, ball


@pytest.mark.parametrize("value, scale, floored", [
    (3.0, 5.0, 5.0), (-3.0, 5.0, 5.0), (-7.0, 5.0, 7.0), (7.0, 5.0, 7.0), (-5.0, 5.0, 5.0), (0.0, 0.0, 0.0),
    (NAN, 2.0, 2.0), (NAN, NAN, NAN), (2.0, NAN, 2.0), (-INF, 1.0, INF), (INF, INF, INF)])
def test_a_public_scale_is_never_below_the_values_magnitude(value, scale, floored):
    from oracle._mp import wrap
    _, [result] = wrap(np.array([mpmath.mpf(value)], dtype=object), np.array([mpmath.mpf(scale)], dtype=object),
                       return_scale=True)
    assert type(result) is mpmath.mpf and (result == floored or (mpmath.isnan(result) and math.isnan(floored)))


def test_a_scale_floor_given_numbers_that_are_not_mpf_still_answers():
    from oracle._mp import wrap
    _, floored = wrap(np.array([-3, 2], dtype=object), np.array([mpmath.mpf(2), 5], dtype=object), True)
    assert floored.tolist() == [3, 5]


def test_a_scale_floored_at_a_wide_value_keeps_every_bit_of_it():
    from oracle._mp import wrap
    with mpmath.workprec(200):
        value = -(1 + mpmath.ldexp(1, -150))
    with mpmath.workprec(53):
        _, [result] = wrap(np.array([value], dtype=object), np.array([mpmath.mpf(1)], dtype=object), True)
    assert result._mpf_ == (0,) + value._mpf_[1:] and result != 1


def test_arb_keeps_the_callers_precisions(rng):
    flint_before, mp_before = flint.ctx.prec, mpmath.mp.prec
    oracle.certify(oracle.softmax, rng.normal(size=(2, 3)), 1, prec=300, engine="arb")
    with pytest.raises(oracle.TargetOutOfRangeError):
        oracle.nll_loss(np.zeros((1, 2)), np.array([5]), prec=300, engine="arb")
    assert (flint.ctx.prec, mpmath.mp.prec) == (flint_before, mp_before)


def _fallbacks(call):
    before = oracle.engine_usage()["fallbacks"]
    result = call()
    return result, oracle.engine_usage()["fallbacks"] - before


def _assert_same_answer(result, reference):
    for got, wanted in zip(_evaluations(result), _evaluations(reference)):
        assert [mpmath.nstr(v, 30) for v in got.value.flat] == [mpmath.nstr(v, 30) for v in wanted.value.flat]
        assert [mpmath.nstr(v, 30) for v in got.scale.flat] == [mpmath.nstr(v, 30) for v in wanted.scale.flat]


@pytest.mark.parametrize("function, args, kwargs", [
    (oracle.cross_entropy, (np.array([[0.0, -INF]]), np.array([1])), {}),  # log p = -inf read: loss +inf
    (oracle.cross_entropy, (np.array([[0.0, -INF]]), np.array([0])), {"label_smoothing": 0.1}),
    (oracle.nll_loss, (np.array([[-1.0, -2.0]]), np.array([-100])), {}),  # 0 / 0: a NaN mean
    (oracle.kl_div, ([-INF, 0.5], [0.5, 0.25]), {"reduction": "none"}),  # an infinite input is read
], ids=["masked-target", "masked-smoothing", "all-ignored-mean", "inf-input"])
def test_what_needs_an_infinity_in_arithmetic_moves_to_mpmath_with_the_same_answer(function, args, kwargs):
    reference = oracle.certify(function, *args, engine="mpmath", **kwargs)
    result, moved = _fallbacks(lambda: oracle.certify(function, *args, engine="arb", **kwargs))
    assert moved == 1
    _assert_same_answer(result, reference)


@pytest.mark.parametrize("function, args, kwargs", [
    (oracle.softmax, ([[NAN, 1.0], [0.0, 1.0]],), {"dim": 1}),  # a NaN row is NaN throughout
    (oracle.softmax, ([[INF, 1.0]],), {"dim": 1}),  # so is a row with +inf (inf / inf): nothing is converted
    (oracle.log_softmax, ([[0.0, -INF, 1.0]],), {"dim": 1}),  # log p = -inf, scale +inf, at the masked entry
    (oracle.kl_div_vjp, ([-1.0, -2.0], [0.0, 0.5], np.float64(1.0)), {}),  # d/dy is NaN at y = 0
    (oracle.kl_div, ([-1.0, -2.0], [-0.5, 0.5]), {"reduction": "sum"}),  # a negative target: NaN, summed
    (oracle.cross_entropy, (np.array([[NAN, 0.0], [1.0, 2.0]]), np.array([0, 1])), {}),  # NaN row, mean
], ids=["nan-row", "posinf-row", "log-of-masked", "zero-target-gradient", "negative-target-sum", "nan-row-mean"])
def test_special_values_placed_on_exact_inputs_stay_on_arb_with_the_same_answer(function, args, kwargs):
    """NaN and infinities that the formulas place by decisions on the inputs are results as they are (and NaN
    propagates through sums, as in mpmath): no ball is asked to hold them, so the call stays on arb."""
    reference = oracle.certify(function, *args, engine="mpmath", **kwargs)
    result, moved = _fallbacks(lambda: oracle.certify(function, *args, engine="arb", **kwargs))
    assert moved == 0
    _assert_same_answer(result, reference)


def _evaluations(result):
    return list(result.values()) if isinstance(result, oracle.Gradients) else [result]


def test_masked_logits_stay_on_arb_where_only_probabilities_are_read(rng):
    """An LLM row with a masked vocabulary (-inf logits): softmax, the class-index loss and its gradient do not
    read a -inf log-probability, so no value outside the balls is needed."""
    logits = rng.normal(size=(2, 50))
    logits[:, 10:30] = -np.inf
    target = np.array([3, 40])
    for function, args in ((oracle.softmax, (logits, 1)), (oracle.cross_entropy, (logits, target)),
                           (oracle.cross_entropy_vjp, (logits, target, np.float64(1))),
                           (oracle.log_softmax_vjp, (logits, rng.normal(size=logits.shape), 1))):
        comparison, moved = _fallbacks(lambda function=function, args=args: compare_engines(function, *args))
        assert moved == 0 and comparison.ok, comparison.problems


def test_a_logit_far_below_the_maximum_keeps_a_positive_tight_probability():
    """x - max is formed exactly, so exp sees a point: its enclosure is positive (as the exact value is)."""
    probabilities = oracle.certify(oracle.softmax, np.array([-2.0**523, 1e4, 2.0**-40]), 0, engine="arb")
    assert 0 < probabilities.value[0] < NEGLIGIBLE
    far = oracle.certify(oracle.softmax, np.array([1e300, -1e300]), 0, engine="arb").value
    assert far[0] == 1 and 0 < far[1] < NEGLIGIBLE
    # the float64 pairs are canonical: multiples of 2**-90 of the scale's binade (here about 1e3 for p = 1)
    assert oracle.certify_float64(oracle.softmax, np.array([1e3, -1e3]), 0, engine="arb").hi.tolist() == [1, 0]


def test_the_one_integer_acceptance_is_sound(rng):
    """rel_accuracy_bits() >= b implies radius < 2**-b |midpoint| (what _too_wide relies on), checked exactly."""
    with flint.ctx.workprec(80):
        for _ in range(2000):
            mid = flint.arb(float(rng.normal() * 2.0 ** rng.integers(-60, 60)))
            ball = flint.arb(mid, abs(float(mid)) * 2.0 ** -float(rng.integers(1, 70)) * rng.uniform(0.5, 2))
            accuracy = ball.rel_accuracy_bits()
            bound = abs(ball.mid()) * flint.arb(mpmath.ldexp(1, -accuracy))
            assert ball.rad() < bound, (ball, accuracy)


def test_arb_escalates_where_one_precision_cannot_prove_the_bits():
    y = 0.75
    x = float(mpmath.log(y))  # log y - x cancels ~56 bits
    result = oracle.certify(oracle.kl_div, [x], [y], reduction="none", prec=64, bits=80, engine="arb")
    with mpmath.workprec(512):
        exact = mpmath.mpf(y) * (mpmath.log(y) - x)
    assert abs(result.value[0] - exact) <= mpmath.ldexp(result.scale[0], -80)
    with pytest.raises(oracle.CertificationError, match="did not settle to 80 bits"):
        oracle.certify(oracle.kl_div, [x], [y], reduction="none", prec=64, bits=80, max_prec=64, engine="arb")


@pytest.mark.parametrize("engine", oracle.ENGINES)
def test_certify_float64_splits_the_certified_values(engine, rng):
    logits, target = rng.normal(size=(4, 7)) * 30, np.array([0, 6, 3, 2])
    public = oracle.certify(oracle.cross_entropy_vjp, logits, target, np.float64(0.5), label_smoothing=0.2,
                            engine=engine).input
    pairs = oracle.certify_float64(oracle.cross_entropy_vjp, logits, target, np.float64(0.5), label_smoothing=0.2,
                                   engine=engine).input
    assert pairs.hi.shape == logits.shape and pairs.hi.dtype == np.float64
    with mpmath.workprec(300):  # hi + lo: the value rounded to its canonical grid (oracle/_canonical.py)
        for v, s, hi, lo, scale in zip(public.value.flat, public.scale.flat, pairs.hi.flat, pairs.lo.flat,
                                       pairs.scale.flat):
            grid = mpmath.ldexp(1, int(np.frexp(scale)[1]) - oracle.CANONICAL_GRID_BITS)
            assert abs((mpmath.mpf(hi) + lo) - v) <= grid / 2 + mpmath.ldexp(abs(v), -110)
            assert hi == float(mpmath.mpf(hi) + lo) and scale == float(s)


def test_float64_pairs_overflow_like_the_cache_always_did():
    pairs = oracle.certify_float64(oracle.nll_loss, np.array([[-1.7e308, 0.0], [-1.7e308, 0.0]]),
                                   np.array([0, 0]), reduction="sum", engine="arb")
    assert pairs.hi[()] == INF and pairs.lo[()] == 0 and pairs.scale[()] == INF


def test_exact_inputs_beyond_float64_convert_exactly_on_arb():
    huge = 2**70 + 1
    with mpmath.workprec(200):
        fine = mpmath.mpf(1) + mpmath.ldexp(1, -150)  # needs 151 bits
    value = oracle.nll_loss([[float(-1), 0.0]], np.array([0]), weight=[huge, 1], reduction="sum", prec=128,
                            engine="arb")
    assert int(value[()]) == huge
    assert oracle.softmax([fine, 1.0], 0, prec=256, engine="arb")[0] > 0.5


def test_cache_keys_name_the_engine_and_its_version():
    from conformance.expected import cache_key
    arrays = {"input": np.zeros((2, 3)), "target": np.array([0, 1])}
    keys = {engine: cache_key("cross_entropy", arrays, {}, "float64", 0, True, None, engine=engine)
            for engine in oracle.ENGINES}
    assert keys["mpmath"] != keys["arb"]
    assert cache_key("cross_entropy", arrays, {}, "float64", 0, True, None, engine="auto") == keys["arb"]


def test_usage_counts_evaluations_per_engine(rng):
    before = oracle.engine_usage()
    oracle.certify(oracle.softmax, rng.normal(size=(2, 3)), 1, engine="arb")
    oracle.certify(oracle.softmax, rng.normal(size=(2, 3)), 1, engine="mpmath")
    after = oracle.engine_usage()
    assert after["arb"] - before.get("arb", 0) == 1  # one evaluation proves it
    assert after["mpmath"] - before.get("mpmath", 0) == 2  # two that agree
    assert math.isfinite(after["fallbacks"])


def test_inputs_a_result_does_not_read_stay_on_arb():
    """An ignored row full of NaN is never read (spec-notes, "ignore_index inside [0, C)"): no hand-over."""
    logits = np.array([[NAN, NAN, NAN], [0.5, -1.0, 2.0]])
    for function, args in ((oracle.cross_entropy, (logits, np.array([-100, 2]))),
                           (oracle.cross_entropy_vjp, (logits, np.array([-100, 2]), np.float64(1))),
                           (oracle.nll_loss, (logits, np.array([-100, 1])))):
        comparison, moved = _fallbacks(lambda function=function, args=args: compare_engines(function, *args))
        assert moved == 0 and comparison.ok, comparison.problems


def test_a_special_value_never_becomes_a_ball():
    """python-flint refuses a Special (TypeError), so NaN and infinities cannot enter a ball silently; the
    arithmetic a Special allows is the exact, sign-free part of mpmath's (NaN absorbs, -inf negates)."""
    from oracle._engine import Undecided
    from oracle._engine_arb import Special
    engine = oracle._engine.get_engine("arb")
    nan, inf = engine.nan, engine.inf
    with pytest.raises(TypeError):
        flint.arb(nan)
    assert (flint.arb(2) * nan).is_nan and (0 * nan).is_nan and engine.fsum([engine.one] * 20 + [nan]).is_nan
    assert float(-engine.neg_inf) == INF and float(abs(engine.neg_inf)) == INF
    for attempt in (lambda: flint.arb(2) * inf, lambda: inf + 1, lambda: engine.fsum([engine.one] * 20 + [inf]),
                    lambda: engine.fdot([engine.one] * 20, [engine.one] * 19 + [inf])):
        with pytest.raises(Undecided):
            attempt()
    assert isinstance(engine.divide(nan, engine.zero), Special) and not engine.is_exact_zero(nan)


def test_arb_evaluations_restore_the_garbage_collector():
    import gc
    assert gc.isenabled()
    oracle.softmax([1.0, 2.0], 0, engine="arb")
    with pytest.raises(oracle.TargetOutOfRangeError):
        oracle.nll_loss(np.zeros((1, 2)), np.array([5]), engine="arb")
    assert gc.isenabled()
