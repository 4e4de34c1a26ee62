"""Canonical certified results: the same bytes from either engine, on every machine (docs/oracle-engines.md,
"Canonical results").

Each finite element is rounded to the nearest multiple of its grid ``2**(e - GRID_BITS)``, ties to even, where
``e`` is the exponent of its scale (``scale < 2**e``): an error of at most ``2**-(GRID_BITS + 1)`` of ``2**e``, far
below what any float64 check can see (``2**-37`` of a float64 ulp of the scale), and a value of at most
GRID_BITS + 1 bits, which a double-double holds exactly: ``hi`` is its nearest float64, ``lo`` the rest. Certified
values are known to ``2**-112`` of their scale, so their rounding to the grid is decided except within about
``2**-22`` of a grid point's midpoint; those few elements are decided on the engine's own number (an Arb ball: a
comparison that is proved, else more precision; an mpf: at its precision), never on the float64 pair, and a value
within ``2**-TIE_BITS`` grid units of a midpoint counts as the midpoint.
"""
from fractions import Fraction

import numpy as np

GRID_BITS = 90
# A value within 2**-100 grid units of a midpoint is a tie (to even): no engine could tell its side at a usable
# precision when it is a dyadic number plus exp(-10000), and both engines' errors (about 2**-150 grid units at
# 256 bits) are far inside the band, so they agree.
TIE_BITS = 100
# Elements this close (in grid units) to a midpoint are decided on the engine's number: the certified radius
# (2**-22 of a grid unit at most) plus the float64 pair's own error (2**-16) plus the arithmetic's, with margin.
_CANDIDATE = 2.0 ** -14


class NotCanonical(Exception):
    """An element whose rounding to the grid the evaluation's precision cannot decide (the arb engine retries)."""

    def __init__(self, index):
        super().__init__(f"element {index} is too close to a rounding boundary of the canonical grid")
        self.index = index


def grid_exponents(scale):
    """The exponent of each element's grid, e - GRID_BITS with scale < 2**e, at least float64's -1074."""
    return np.maximum(np.frexp(scale)[1] - GRID_BITS, -1074)


def canonical(hi, lo, scale, decide):
    """(hi, lo) of each finite element rounded to its grid (scale: float64, already at least |hi|).

    decide(index, below, exponent) is called for the elements near a midpoint: ``below`` is the grid multiple
    (a Python int, in units of 2**exponent) just under the engine's number; it returns that int or the next one,
    ties to even, or raises NotCanonical."""
    hi, lo, scale = (np.asarray(a, dtype=np.float64) for a in (hi, lo, scale))
    finite = np.isfinite(hi) & np.isfinite(lo) & (scale > 0) & np.isfinite(scale)
    exponents = np.where(finite, grid_exponents(np.where(finite, scale, 1.0)), 0)
    with np.errstate(all="ignore"):
        a = np.where(finite, np.ldexp(hi, -exponents), 0.0)  # exact: a power-of-two scaling
        n_hi = np.rint(a)  # exact integers (|a| < 2**91; beyond 2**52 a is one already)
        t = (a - n_hi) + np.where(finite, np.ldexp(lo, -exponents), 0.0)
        k = np.rint(t)
        distance = 0.5 - np.abs(t - k)
    new_hi, new_lo = _two_sum(np.ldexp(n_hi, exponents), np.ldexp(k, exponents))
    # NaN as one bit pattern (engines differ in its sign bit); lo = 0 beside a non-finite hi
    new_hi = np.where(finite, new_hi, np.where(np.isnan(hi), np.nan, hi))
    new_lo = np.where(finite, new_lo, np.where(np.isfinite(hi), lo, 0.0))
    for index in np.flatnonzero(finite & (distance <= _CANDIDATE)).tolist():
        below = int(n_hi.flat[index]) + int(np.floor(t.flat[index]))
        chosen = decide(index, below, int(exponents.flat[index]))
        exact = Fraction(chosen) * Fraction(2) ** int(exponents.flat[index])
        new_hi.flat[index] = float(exact)  # float(Fraction) rounds to nearest
        new_lo.flat[index] = float(exact - Fraction(new_hi.flat[index]))  # exact: at most GRID_BITS + 1 bits
    return new_hi, new_lo


def _two_sum(a, b):
    """(s, e) with s = RN(a + b) and e = a + b - s exactly (Knuth)."""
    with np.errstate(all="ignore"):
        s = a + b
        bb = s - a
        return s, (a - (s - bb)) + (b - bb)


def nearest(below, above_midpoint):
    """The grid multiple below or the next one: ``above_midpoint`` is -1, 0 (a tie: to even) or 1, the sign of
    (value - (below + 1/2) grid units)."""
    if above_midpoint > 0:
        return below + 1
    if above_midpoint < 0:
        return below
    return below if below % 2 == 0 else below + 1
