"""The canonical rounding of certified results (oracle/_canonical.py): hand values, ties to even, the engines'
deciders near a grid midpoint, and NaN as one bit pattern. Both engines' bytes over the corpus sample:
tests/test_oracle_engine_corpus.py."""
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from oracle._canonical import GRID_BITS, NotCanonical, canonical, nearest
from oracle._float64 import _ball_decider, _mpf_decider, split_mpf
from oracle._mp import Evaluation, object_array

GRID = Fraction(2) ** (1 - GRID_BITS)  # the grid of a scale in [1, 2)


def pair(value):
    """(hi, lo) of an exact Fraction: the float64 pair an engine would give."""
    hi = float(value)
    return hi, float(value - Fraction(hi))


@pytest.fixture
def flint_at_256_bits():
    """The deciders run inside an evaluation's precision scope; here, 256 bits."""
    flint = pytest.importorskip("flint")
    saved, flint.ctx.prec = flint.ctx.prec, 256
    yield flint
    flint.ctx.prec = saved


def never(*_):
    raise AssertionError("no element is near a midpoint here")


@pytest.mark.parametrize("offset, expected", [
    (Fraction(3, 4), 1), (Fraction(1, 4), 0), (Fraction(-1, 4), 0), (Fraction(5, 4), 1), (Fraction(0), 0)])
def test_a_value_rounds_to_the_nearest_multiple_of_its_grid(offset, expected):
    hi, lo = pair(1 + offset * GRID)
    new_hi, new_lo = canonical(np.array([hi]), np.array([lo]), np.array([1.5]), never)
    assert Fraction(new_hi[0]) + Fraction(new_lo[0]) == 1 + expected * GRID


@pytest.mark.parametrize("below, expected", [(2 ** 89, 2 ** 89), (2 ** 89 + 1, 2 ** 89 + 2)])
def test_a_tie_goes_to_the_even_multiple_in_both_engines(below, expected, flint_at_256_bits):
    value = (below + Fraction(1, 2)) * GRID
    hi, lo = pair(value)
    with mpmath.workprec(300):
        exact = mpmath.mpf(value.numerator) / value.denominator
    got = split_mpf(Evaluation(object_array([exact], ()), object_array([mpmath.mpf(1.5)], ())))
    assert Fraction(float(got.hi)) + Fraction(float(got.lo)) == expected * GRID
    flint = flint_at_256_bits
    ball = flint.arb(hi) + flint.arb(lo)  # exact: the value has 92 bits
    assert _ball_decider([ball])(0, below, 1 - GRID_BITS) == expected


def test_a_ball_across_a_midpoint_is_not_decided_and_one_beside_it_is(flint_at_256_bits):
    flint = flint_at_256_bits
    midpoint = (flint.arb(2 ** 89) + flint.arb(0.5)) * flint.arb(2) ** (1 - GRID_BITS)
    wide = midpoint + flint.arb(0, 2.0 ** -120)
    with pytest.raises(NotCanonical):
        _ball_decider([wide])(0, 2 ** 89, 1 - GRID_BITS)
    above = midpoint + flint.arb(2.0 ** -110, 2.0 ** -120)
    assert _ball_decider([above])(0, 2 ** 89, 1 - GRID_BITS) == 2 ** 89 + 1


@pytest.mark.parametrize("offset_bits, expected", [(-170, 2 ** 89 + 1), (-200, 2 ** 89)])
def test_the_mpf_decider_rounds_at_its_precision_and_a_value_in_the_tie_band_is_a_tie(offset_bits, expected):
    """2**-170 above the midpoint is 2**-81 grid units (decided up); 2**-200 is inside the 2**-100 band (even)."""
    value = (2 ** 89 + Fraction(1, 2)) * GRID + Fraction(2) ** offset_bits
    with mpmath.workprec(400):
        exact = mpmath.mpf(value.numerator) / value.denominator
    assert _mpf_decider([exact])(0, 2 ** 89, 1 - GRID_BITS) == expected


def test_non_finite_values_keep_their_class_and_nan_has_one_bit_pattern():
    negative_nan = -np.float64("nan")
    hi, lo = canonical(np.array([negative_nan, np.inf, 0.0]), np.array([1.0, 1.0, 0.0]), np.array([1.0, 1.0, 0.0]),
                       never)
    assert hi[0].tobytes() == np.float64("nan").tobytes() and hi[1] == np.inf and hi[2] == 0.0
    assert lo.tolist() == [0.0, 0.0, 0.0]


def test_nearest():
    assert [nearest(4, 1), nearest(4, -1), nearest(4, 0), nearest(5, 0)] == [5, 4, 4, 6]
