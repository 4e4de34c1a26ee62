"""The arb engine: Arb balls through python-flint. Each number encloses the exact value of what it computes.

Rules that keep its results those of the mpmath engine:
- inputs are converted exactly; a non-finite input raises Undecided (python-flint 0.9 reads inf as the
  unbounded ball [+/- inf], not +inf, and NaN is no ball), so such calls run on mpmath;
- nan, inf and neg_inf, which the formulas place by decisions on the exact inputs, are Special values, not
  balls. A Special may be a result as it is; arithmetic on it follows mpmath only where that is exact and
  sign-free (NaN absorbs everything; -x and |x| of an infinity), and raises Undecided otherwise (inf * g,
  inf + x, a sum holding an infinity), so that the call moves to mpmath;
- a log that would be NaN (arb(0).log() is NaN, not -inf) and a division by a ball that contains 0 raise
  Undecided too; no decision is taken by comparing balls (overlapping balls compare False both ways).
"""
import gc
from contextlib import contextmanager
from functools import lru_cache

import mpmath
import numpy as np

from ._engine_signals import EngineUnavailableError, Undecided
from ._mp import _scalar_to_mpf, exact_mpf

MINIMUM_VERSION = (0, 9)
SHORT_SUM = 8  # up to this many terms a plain loop; longer sums go through arb_dot (one rounding)
_from_man_exp = mpmath.libmp.from_man_exp  # gmpy2's C normaliser where mpmath runs on gmpy2


def _import_flint():
    try:
        import flint
    except ImportError as error:
        raise EngineUnavailableError(f"the arb engine needs python-flint >= 0.9 ({error})") from None
    version = tuple(int(part) for part in flint.__version__.split(".")[:2] if part.isdigit())
    if version < MINIMUM_VERSION:
        raise EngineUnavailableError(f"the arb engine needs python-flint >= 0.9, found {flint.__version__}")
    return flint


class Special:
    """NaN, +inf or -inf where a ball cannot be: a final value, or NaN propagating as mpmath propagates it."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value  # a Python float: nan, inf or -inf

    @property
    def is_nan(self):
        return self.value != self.value

    def _combine(self, other=None):
        if self.is_nan or (isinstance(other, Special) and other.is_nan):
            return NAN_SPECIAL  # NaN op anything is NaN in mpmath (0 and inf included)
        raise Undecided("arithmetic on an infinity")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _combine
    __truediv__ = __rtruediv__ = _combine

    def __neg__(self):
        return self if self.is_nan else Special(-self.value)

    def __abs__(self):
        return self if self.is_nan else Special(abs(self.value))

    def __float__(self):
        return self.value

    def rel_accuracy_bits(self):
        return EXACT_BITS  # an exact value: certification has nothing to ask of it

    @staticmethod
    def is_finite():
        return False

    def __repr__(self):
        return f"Special({self.value})"


NAN_SPECIAL = Special(float("nan"))
EXACT_BITS = 2**62  # what rel_accuracy_bits() says of an exact ball


def _special_sum(*lists):
    """The sum (or dot product) of lists holding a Special: NaN if any term is NaN, else Undecided."""
    if any(isinstance(term, Special) and term.is_nan for terms in lists for term in terms):
        return NAN_SPECIAL
    raise Undecided("a sum holding an infinity")


class ArbEngine:
    name = "arb"

    def __init__(self):
        flint = _import_flint()
        self._arb, self._arb_mat, self._ctx = flint.arb, flint.arb_mat, flint.ctx
        self.version = f"python-flint {flint.__version__}, mpmath {mpmath.__version__}"
        self.description = f"python-flint {flint.__version__}; mpmath {mpmath.__version__} for non-finite values"
        self.zero, self.one = self._arb(0), self._arb(1)
        self.exp = self._arb.exp
        self._ones = lru_cache(maxsize=8)(lambda n: self._arb_mat(n, 1, [1] * n))

    nan, inf, neg_inf = NAN_SPECIAL, Special(float("inf")), Special(float("-inf"))

    @contextmanager
    def precision(self, prec):
        """prec bits for the evaluation; the cyclic garbage collector pauses meanwhile: an evaluation makes
        millions of acyclic balls in long lists, which it would rescan again and again (15% of a 4M-element
        gradient). Both are restored afterwards."""
        saved, collecting = self._ctx.prec, gc.isenabled()
        self._ctx.prec = prec
        gc.disable()
        try:
            yield
        finally:
            self._ctx.prec = saved
            if collecting:
                gc.enable()

    def numbers(self, array):
        """The elements of an exact array (C order) as exact balls; Undecided if one is not finite."""
        if array.dtype == object:
            return [self._from_mpf(v) for v in array.flat]
        flat = array.ravel()
        if not np.isfinite(flat).all():
            raise Undecided("non-finite input")
        return list(map(self._arb, flat.tolist()))

    def _from_mpf(self, value):
        if not mpmath.isfinite(value):
            raise Undecided("non-finite input")
        return self._arb(value)  # exact: python-flint copies the mantissa whatever the precision

    def number(self, value):
        if isinstance(value, (float, np.floating)) and not isinstance(value, np.longdouble):
            if not np.isfinite(value):
                raise Undecided("non-finite input")
            return self._arb(float(value))
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return self._arb(int(value))  # exact for any size
        return self._from_mpf(_scalar_to_mpf(value))

    def differences(self, row, origin):
        """(row as balls, row - origin computed exactly, origin as a ball).

        Exact differences keep the argument of exp a point: a logit far below the row's maximum then gets a
        tight, positive enclosure of its tiny probability instead of a ball around 0."""
        values, shift = self.numbers(row), self.number(origin)
        if row.dtype == object:
            exact = [mpmath.fsub(x, _scalar_to_mpf(origin), exact=True) for x in row.flat]
            return values, [self._from_mpf(d) for d in exact], shift
        differences = [v - shift for v in values]
        for index, bits in _wide_differences(row.ravel(), origin, self._ctx.prec):
            with self._ctx.workprec(bits):
                differences[index] = values[index] - shift
        return values, differences, shift

    def log(self, value):
        result = value.log()
        if result.is_nan():
            raise Undecided("log of a ball that reaches 0 or below")
        return result

    @staticmethod
    def tanh(value):
        return value.tanh()

    def logs_of_positive(self, values):
        """log of each value of a list known to be > 0 from the exact inputs (so no result can be NaN)."""
        return list(map(self._arb.log, values))

    def fsum(self, terms):
        terms = terms if isinstance(terms, list) else list(terms)
        if len(terms) <= SHORT_SUM:
            total = self.zero
            for term in terms:
                total = total + term  # a Special term answers by its own rules
            return total
        try:
            return (self._arb_mat(1, len(terms), terms) * self._ones(len(terms)))[0, 0]
        except TypeError:  # a Special, which arb_mat cannot hold
            return _special_sum(terms)

    def fdot(self, left, right):
        left = left if isinstance(left, list) else list(left)
        right = right if isinstance(right, list) else list(right)
        if len(left) <= SHORT_SUM:
            return self.fsum([a * b for a, b in zip(left, right)])
        try:
            return (self._arb_mat(1, len(left), left) * self._arb_mat(len(right), 1, right))[0, 0]
        except TypeError:  # a Special, which arb_mat cannot hold
            return _special_sum(left, right)

    @staticmethod
    def is_exact_zero(value):
        return not isinstance(value, Special) and value.is_zero()

    @staticmethod
    def isnan(value):
        return value.is_nan if isinstance(value, Special) else value.is_nan()

    @staticmethod
    def divide(numerator, denominator):
        if isinstance(numerator, Special) or isinstance(denominator, Special):
            return (numerator if isinstance(numerator, Special) else denominator)._combine(denominator)
        if denominator.contains(0):  # exactly 0 (the IEEE rules) or undecided: either way mpmath's to answer
            raise Undecided("a denominator that may be 0")
        return numerator / denominator

    @staticmethod
    def to_mpf(value):
        """The midpoint as an mpf, exactly (no rounding to mp.prec). From the midpoint's integer mantissa and
        exponent: python-flint's own ``_mpf_`` gives the same tuple at twice the cost."""
        if isinstance(value, Special):
            return mpmath.mpf(value.value)
        mantissa, exponent = value.mid().man_exp()
        return exact_mpf(_from_man_exp(int(mantissa), int(exponent)))


def _wide_differences(row, origin, prec):
    """(index, bits) for the entries whose float difference from origin needs more than prec bits exactly.

    With x = f 2**e (0.5 <= |f| < 1) a float64 has its lowest bit at or above 2**(e - 53), so x - origin needs at
    most |e_x - e_origin| + 54 bits (one more for a carry); subnormals only make that bound generous."""
    _, exponents = np.frexp(row.astype(np.float64))
    _, origin_exponent = np.frexp(np.float64(origin))
    needed = np.abs(exponents.astype(np.int64) - int(origin_exponent)) + 55
    wide = np.flatnonzero(needed > prec)
    return [(int(i), int(needed[i]) + 8) for i in wide]
