"""Cross-validation of the engines: the same certified call on mpmath and on arb, compared element by element.

Two independent multiprecision libraries (mpmath's own arithmetic over gmpy2 integers; Arb's ball arithmetic
in FLINT) that agree to the certified bits on the same formulas are evidence for both, and for the oracle.
Per field (value, and for gradients each of input/target) it checks:
- the same typed error, or the same shape; NaN and infinities at the same places, with the same signs;
- values within 2**(1 - bits) * max(|v|, scale, 2**-1100) of each other (each is within 2**-bits of the exact
  value), and scales within 2**(1 - bits) of each other relative to the scale;
- the float64 pairs of certify_float64 (what the cache stores): |(hi + lo) - (hi' + lo')| <= 2**-100 scale.
"""
import math
from typing import NamedTuple

import mpmath

from ._dispatch import fields, rebuild
from ._float64 import split_mpf
from ._mp import DEFAULT_PREC
from .certify import GUARD_BITS, NEGLIGIBLE, certify, certify_float64
from .errors import OracleError

PAIR_BITS = 100  # the agreement asked of the stored float64 pairs, relative to the scale
COMPARISON_PREC = 2300  # differences of certified values (<= 8 * prec bits) and of float64 pairs, exactly


class Comparison(NamedTuple):
    """How closely the engines agree on one call: elements compared and the least agreement, in bits, of the
    values, the scales and the float64 pairs (math.inf where they agree exactly); problems lists failures."""

    elements: int
    value_bits: float
    scale_bits: float
    pair_bits: float
    problems: tuple

    @property
    def ok(self):
        return not self.problems


def _agreement_bits(a, b, reference):
    difference = abs(a - b)
    if difference == 0:
        return math.inf
    ratio = float(difference / max(reference, NEGLIGIBLE))  # 0.0 below float64's range: > 1074 bits agree
    return -math.log2(ratio) if ratio > 0 else math.inf


def _special_mismatch(a, b):
    """True if a and b differ in being NaN or infinite (or in the sign of an infinity)."""
    if mpmath.isnan(a) or mpmath.isnan(b):
        return not (mpmath.isnan(a) and mpmath.isnan(b))
    if mpmath.isinf(a) or mpmath.isinf(b):
        return a != b
    return False


def _compare_field(label, reference, other, pairs_reference, pairs_other, bits, problems):
    """(elements, value bits, scale bits, pair bits) of one field, appending failures to problems."""
    worst = [math.inf, math.inf, math.inf]
    if reference.value.shape != other.value.shape:
        problems.append(f"{label}: shapes {reference.value.shape} and {other.value.shape}")
        return 0, *worst
    flat = zip(reference.value.flat, other.value.flat, reference.scale.flat, other.scale.flat,
               pairs_reference.hi.flat, pairs_reference.lo.flat, pairs_other.hi.flat, pairs_other.lo.flat)
    for index, (a, b, sa, sb, hi_a, lo_a, hi_b, lo_b) in enumerate(flat):
        if _special_mismatch(a, b) or _special_mismatch(sa, sb):
            problems.append(f"{label}[{index}]: {a} (scale {sa}) against {b} (scale {sb})")
            continue
        if not mpmath.isfinite(a) or not mpmath.isfinite(sa):
            continue  # the same NaN or infinity: nothing further to compare
        agreement = (_agreement_bits(a, b, max(abs(a), sa)), _agreement_bits(sa, sb, sa),
                     _agreement_bits(mpmath.mpf(hi_a) + lo_a, mpmath.mpf(hi_b) + lo_b, mpmath.mpf(float(sa)))
                     if math.isfinite(hi_a) else (math.inf if (hi_a, lo_a) == (hi_b, lo_b) else -math.inf))
        for k, (got, needed) in enumerate(zip(agreement, (bits - 1, bits - 1, PAIR_BITS))):
            worst[k] = min(worst[k], got)
            if got < needed:
                kind = ("value", "scale", "float64 pair")[k]
                problems.append(f"{label}[{index}]: {kind}s agree to {got:.1f} bits, fewer than {needed}")
    return reference.value.size, *worst


def compare_engines(function, *args, prec=None, bits=None, **kwargs):
    """Comparison of certify(function, ...) on the mpmath engine (the reference) and on the arb engine."""
    prec = DEFAULT_PREC if prec is None else prec
    bits = prec - GUARD_BITS if bits is None else bits
    outcomes = []
    for engine in ("mpmath", "arb"):
        try:
            public = certify(function, *args, prec=prec, bits=bits, engine=engine, **kwargs)
            if engine == "mpmath":  # what certify_float64 does on mpmath, without certifying twice
                pairs = rebuild(public, [None if f is None else split_mpf(f) for f in fields(public)])
            else:  # the balls' own split, which is what the cache stores from the arb engine
                pairs = certify_float64(function, *args, prec=prec, bits=bits, engine=engine, **kwargs)
            outcomes.append((None, public, pairs))
        except OracleError as error:
            outcomes.append((type(error).__name__, None, None))
    (error_a, public_a, pairs_a), (error_b, public_b, pairs_b) = outcomes
    if error_a or error_b:
        problems = () if error_a == error_b else (f"errors {error_a} and {error_b}",)
        return Comparison(0, math.inf, math.inf, math.inf, problems)
    problems, totals = [], [0, math.inf, math.inf, math.inf]
    names = ("input", "target") if len(fields(public_a)) > 1 else ("value",)
    for name, ref, oth, pref, poth in zip(names, fields(public_a), fields(public_b), fields(pairs_a),
                                         fields(pairs_b)):
        if (ref is None) != (oth is None):
            problems.append(f"{name}: present on one engine only")
        if ref is None or oth is None:
            continue
        with mpmath.workprec(COMPARISON_PREC):
            elements, *worst = _compare_field(name, ref, oth, pref, poth, bits, problems)
        totals = [totals[0] + elements] + [min(t, w) for t, w in zip(totals[1:], worst)]
    return Comparison(totals[0], *totals[1:], tuple(problems))
