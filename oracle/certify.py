"""Certification: a result is returned only when it is known to the requested bits relative to its scale.

Every element must be within 2**-bits * max(|value|, scale, 2**-1100) of the exact value of the formula;
magnitudes below 2**-1100, which no checked dtype can hold, are not asked to settle.
- mpmath engine (and any function that is not an oracle function): two evaluations at p and 2p bits that agree
  to that bound certify the higher-precision one (its own error is far smaller). Where they disagree
  (catastrophic cancellation), precision keeps doubling up to ``max_prec``.
- arb engine: one evaluation proves it. Each ball encloses the exact value, so its radius bounds the error of
  its midpoint; where some radius is too wide the evaluation is repeated at doubled precision, up to
  ``max_prec``. Calls the arb engine cannot decide (NaN, infinities) are certified by mpmath.
A CertificationError says which element never settled.
"""
from operator import methodcaller

import mpmath
import numpy as np

from ._dispatch import Outcome, fields, publish, rebuild
from ._engine import Undecided, evaluating, record_fallback, resolve_engine
from ._canonical import NotCanonical
from ._float64 import split_balls, split_mpf
from ._mp import resolve_prec
from .errors import CertificationError

GUARD_BITS = 16  # bits of the working precision left to rounding accumulated over long sums
# Magnitudes below this are 0 in every dtype the suite checks (float64's smallest subnormal is 2**-1074), so
# agreement is not asked of them: exp(-2**523) needs thousands of bits to settle and rounds to 0 all the same.
NEGLIGIBLE = mpmath.ldexp(1, -1100)


def _agree(low, high, bits):
    """Index of the first element where low and high differ by more than 2**-bits * max(|high|, scale,
    NEGLIGIBLE) (None if none)."""
    for index, (a, b, scale) in enumerate(zip(low.value.flat, high.value.flat, high.scale.flat)):
        if mpmath.isnan(a) or mpmath.isnan(b):
            if not (mpmath.isnan(a) and mpmath.isnan(b)):
                return index
        elif mpmath.isinf(a) or mpmath.isinf(b):
            if a != b:
                return index
        elif abs(a - b) > mpmath.ldexp(max(abs(b), scale, NEGLIGIBLE), -bits):
            return index
    return None


def _too_wide(evaluation, bits, negligible, factor):
    """Index of the first ball whose radius exceeds 2**-bits * max(lower |value|, lower scale, NEGLIGIBLE).

    rel_accuracy_bits() >= bits + 1 means radius < 2**-(bits + 1) |midpoint|, hence radius <= 2**-bits times
    the lower bound of |value|: most balls pass on that one integer. The rest are compared exactly (the
    radius and the lower bounds are exact balls, so the comparison is decided); factor is 2**-bits, exactly."""
    values, scales = list(evaluation.value.flat), list(evaluation.scale.flat)
    threshold = bits + 1
    for index, accuracy in enumerate(map(_ACCURACY, values)):
        if accuracy >= threshold:
            continue
        value, scale = values[index], scales[index]
        if not value.is_finite():
            return index
        if not scale.is_finite():  # a Special scale (a ball's is finite here): +inf admits any radius
            if float(scale) == float("inf"):
                continue
            scale = negligible  # NaN: measured against |value| and NEGLIGIBLE alone, as max() ignores it
        floor = max(value.abs_lower(), scale.abs_lower(), negligible)
        if not value.rad() <= floor * factor:
            return index
    return None


_ACCURACY = methodcaller("rel_accuracy_bits")


def _settings(prec, bits, max_prec):
    prec = resolve_prec(prec)
    return prec, prec - GUARD_BITS if bits is None else bits, 8 * prec if max_prec is None else max_prec


def _unsettled(function, evaluations, field, index, bits, low, high):
    """The CertificationError for element ``index`` of evaluations[field]."""
    shape = evaluations[field].value.shape
    position = np.unravel_index(index, shape) if shape else ()
    return CertificationError(f"{getattr(function, '__name__', function)}: result {field} element {position} did "
                              f"not settle to {bits} bits between {low} and {high} bits of precision")


def _by_doubling(function, args, kwargs, prec, bits, max_prec, engine_keyword):
    """The mpmath protocol: evaluations at doubling precision until two agree. Returns the public result."""
    low = function(*args, prec=prec, return_scale=True, **engine_keyword, **kwargs)
    current = prec
    while True:
        current *= 2
        high = function(*args, prec=current, return_scale=True, **engine_keyword, **kwargs)
        bad = [(k, _agree(lo, hi, bits)) for k, (lo, hi) in enumerate(zip(_present(low), _present(high)))]
        bad = [(k, index) for k, index in bad if index is not None]
        if not bad:
            return high
        if current >= max_prec:
            raise _unsettled(function, _present(high), *bad[0], bits, current // 2, current)
        low = high


def _present(result):
    return [field for field in fields(result) if field is not None]


def _by_enclosure(function, engine, args, kwargs, prec, bits, max_prec, finish):
    """The arb protocol: one evaluation whose balls prove the bits, repeated at doubled precision where too wide.
    finish(result) converts the balls inside the evaluation's precision scope."""
    negligible, factor = engine.number(NEGLIGIBLE), engine.number(mpmath.ldexp(1, -bits))
    current = prec
    while True:
        with evaluating(engine, current):
            result = function.kernel(*args, **kwargs)
            bad = [(k, _too_wide(f, bits, negligible, factor)) for k, f in enumerate(fields(result)) if f is not None]
            bad = [(k, index) for k, index in bad if index is not None]
            if not bad:
                try:
                    return finish(result)
                except NotCanonical as undecided:  # a ball across a canonical rounding boundary: more bits
                    bad = [(0, undecided.index)]
        if current >= max_prec:
            raise _unsettled(function, fields(result), *bad[0], bits, current // 2, current)
        current *= 2


def _certified(function, args, kwargs, prec, bits, max_prec, engine, finish_balls, finish_mpf):
    """The certified result of an oracle function, on the chosen engine (mpmath where arb is Undecided)."""
    chosen = resolve_engine(engine)
    if chosen.name != "mpmath":
        try:
            return _by_enclosure(function, chosen, args, kwargs, prec, bits, max_prec, finish_balls)
        except Undecided:
            record_fallback()
    return finish_mpf(_by_doubling(function, args, kwargs, prec, bits, max_prec, {"engine": "mpmath"}))


def certify(function, *args, prec=None, bits=None, max_prec=None, engine=None, **kwargs):
    """Evaluate ``function(*args, **kwargs)`` certified to ``bits`` bits relative to each element's scale.

    Returns the function's public result (an Evaluation of mpf arrays, or Gradients of Evaluations).
    bits defaults to prec - GUARD_BITS; max_prec to 8 * prec. ``engine`` chooses the engine (oracle/_engine.py).
    """
    prec, bits, max_prec = _settings(prec, bits, max_prec)
    if getattr(function, "kernel", None) is None:  # any other callable: the doubling protocol, as always
        return _by_doubling(function, args, kwargs, prec, bits, max_prec, {})

    def to_public(result):
        return publish(Outcome(resolve_engine(engine), result), return_scale=True)

    return _certified(function, args, kwargs, prec, bits, max_prec, engine, to_public, lambda public: public)


def certify_float64(function, *args, prec=None, bits=None, max_prec=None, engine=None, **kwargs):
    """certify(), with every certified array as float64 numbers: Float64Evaluation(hi, lo, scale).

    hi + lo is the certified value rounded to its canonical grid (oracle/_canonical.py: a multiple of 2**-90 of
    the scale's binade, ties to even; hi the float64 nearest it, lo the rest; lo = 0 where hi is +/-inf or NaN),
    scale the float64 nearest the scale: the same bytes from either engine. On the arb engine no mpf is formed,
    which is what makes large rows cheap to cache.
    """
    prec, bits, max_prec = _settings(prec, bits, max_prec)
    if getattr(function, "kernel", None) is None:
        return _each(_by_doubling(function, args, kwargs, prec, bits, max_prec, {}), split_mpf)
    return _certified(function, args, kwargs, prec, bits, max_prec, engine,
                      lambda result: _each(result, split_balls), lambda public: _each(public, split_mpf))


def _each(result, convert):
    return rebuild(result, [None if field is None else convert(field) for field in fields(result)])

