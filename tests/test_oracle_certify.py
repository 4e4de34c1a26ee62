"""Certification by precision doubling, and the precision scoping of oracle calls."""
import mpmath
import numpy as np
import pytest

import oracle
from oracle._mp import Evaluation
from test_oracle_engine_fixture import oracle_engine  # noqa: F401 (autouse: each test runs on every engine)


def test_certify_returns_the_higher_precision_evaluation(rng):
    logits, target = rng.normal(size=(3, 4)), np.array([0, 1, 2])
    result = oracle.certify(oracle.cross_entropy, logits, target, prec=96)
    assert isinstance(result, Evaluation) and result.scale[()] >= abs(result.value[()])
    reference = oracle.cross_entropy(logits, target, prec=1024)[()]
    assert abs(result.value[()] - reference) <= mpmath.ldexp(abs(reference), -96 + oracle.certify.__globals__["GUARD_BITS"])


def test_certify_handles_gradients_with_a_target(rng):
    result = oracle.certify(oracle.kl_div_vjp, rng.normal(size=(2, 3)), rng.uniform(size=(2, 3)), np.float64(1))
    assert isinstance(result, oracle.Gradients) and result.target is not None


def test_cancellation_escalates_until_it_settles():
    """log y - x with x the float64 nearest log y cancels ~56 bits; doubling precision settles it."""
    y = 0.75
    x = float(mpmath.log(y))
    result = oracle.certify(oracle.kl_div, [x], [y], reduction="none", prec=64, bits=60)
    with mpmath.workprec(512):
        exact = mpmath.mpf(y) * (mpmath.log(y) - x)
    assert abs(result.value[0] - exact) <= mpmath.ldexp(result.scale[0], -60)


def _unsettled(*, prec, return_scale):
    noise = mpmath.ldexp(prec, -40)  # an error that changes with precision but never shrinks
    value = np.array([mpmath.mpf(1) + noise], dtype=object)
    return Evaluation(value, np.array([mpmath.mpf(1)], dtype=object))


def test_a_result_that_never_settles_raises_certification_error():
    with pytest.raises(oracle.CertificationError, match="did not settle"):
        oracle.certify(_unsettled, prec=64)


def test_oracle_calls_restore_the_callers_precision(rng):
    before = mpmath.mp.prec
    oracle.softmax(rng.normal(size=(2, 3)), 1, prec=300)
    with pytest.raises(oracle.TargetOutOfRangeError):
        oracle.nll_loss(np.zeros((1, 2)), np.array([5]), prec=300)
    assert mpmath.mp.prec == before


def test_inputs_are_converted_exactly(rng):
    x32 = rng.normal(size=8).astype(np.float32)
    x16 = x32.astype(np.float16)
    for x in (x32, x16, x32.astype(np.float64)):
        values = oracle.log_softmax(x, 0, prec=64, return_scale=True)
        assert values.value.shape == x.shape
    from oracle._mp import to_mpf_array
    assert all(mpmath.mpf(float(a)) == b for a, b in zip(x16, to_mpf_array(x16)))
    assert int(to_mpf_array([2**70 + 1])[0]) == 2**70 + 1  # Python ints beyond float64, exactly


def test_values_no_dtype_can_hold_need_not_settle():
    """A logit of -2**523 (found by fuzzing) puts exp(-2**523 - ...) in the gradient: settling it would take
    thousands of bits, and it is 0 in every checked dtype, so agreement below 2**-1100 is not asked for."""
    logits = np.full((3, 4, 2), 1e4)
    logits[1, 1, 0], logits[2, 1, 1] = -2.0**523, 2.0**137
    result = oracle.certify(oracle.cross_entropy_vjp, logits, np.zeros((3, 2), dtype=np.int64), np.float64(1))
    tiny = result.input.value[1, 1, 0]
    assert 0 < tiny < mpmath.ldexp(1, -1100) and float(tiny) == 0.0
    with mpmath.workprec(256):  # the softmax of the 2**137 logit is 1 to far beyond 100 bits; mean over N = 6
        assert abs(result.input.value[2, 1, 1] - mpmath.mpf(1) / 6) < mpmath.ldexp(1, -100)
