"""Certification: repeat an evaluation at doubled precision and require agreement to the requested bits.

Two evaluations at p and 2p bits that agree to within 2**-bits of the scale certify the higher-precision one
(its own error is far smaller); differences below 2**-1100, which no checked dtype can hold, are not asked to
agree. Where they disagree (catastrophic cancellation), precision keeps doubling up
to ``max_prec``; a CertificationError says which element never settled.
"""
import mpmath
import numpy as np

from ._mp import Gradients, resolve_prec
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


def _fields(result):
    if isinstance(result, Gradients):
        return [field for field in result if field is not None]
    return [result]


def certify(function, *args, prec=None, bits=None, max_prec=None, **kwargs):
    """Evaluate ``function(*args, **kwargs)`` certified to ``bits`` bits relative to each element's scale.

    Returns the function's result at the precision that settled (an Evaluation, or Gradients of Evaluations).
    bits defaults to prec - GUARD_BITS; max_prec to 8 * prec.
    """
    prec = resolve_prec(prec)
    bits = prec - GUARD_BITS if bits is None else bits
    max_prec = 8 * prec if max_prec is None else max_prec
    low = function(*args, prec=prec, return_scale=True, **kwargs)
    current = prec
    while True:
        current *= 2
        high = function(*args, prec=current, return_scale=True, **kwargs)
        disagreements = [(k, _agree(lo, hi, bits)) for k, (lo, hi) in enumerate(zip(_fields(low), _fields(high)))]
        bad = [(k, index) for k, index in disagreements if index is not None]
        if not bad:
            return high
        if current >= max_prec:
            field, index = bad[0]
            position = np.unravel_index(index, _fields(high)[field].value.shape) if _fields(high)[field].value.shape else ()
            raise CertificationError(
                f"{getattr(function, '__name__', function)}: result {field} element {position} did not settle to "
                f"{bits} bits between {current // 2} and {current} bits of precision")
        low = high
