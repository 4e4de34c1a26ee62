"""Certified arrays as float64 numbers: value = hi + lo, rounded to the canonical grid of oracle/_canonical.py
(2**-90 of the scale's binade, so the same bytes from either engine), beside the scale.

The store of conformance/expected/store.py keeps these. From mpf (the mpmath engine) each element is split in
Python; from Arb balls the midpoints are split directly, without forming an mpf per element.
"""
from typing import NamedTuple

import mpmath
import numpy as np

from ._canonical import TIE_BITS, NotCanonical, canonical, nearest


class Float64Evaluation(NamedTuple):
    """A certified array as float64: value ~ hi + lo (lo = 0 where hi is +/-inf or NaN), and the scale."""

    hi: np.ndarray
    lo: np.ndarray
    scale: np.ndarray


def split_mpf(evaluation):
    """Float64Evaluation of an Evaluation of mpf (its scales already floored at |value|)."""
    values, shape = list(evaluation.value.flat), evaluation.value.shape
    hi = np.array([float(v) for v in values], dtype=np.float64)
    with mpmath.workprec(2200):  # v - hi exactly (any float64 and any mpf of the oracle's precisions)
        lo = np.array([float(v - h) if np.isfinite(h) else 0.0 for v, h in zip(values, hi.tolist())],
                      dtype=np.float64)
    scale = np.array([float(s) for s in evaluation.scale.flat], dtype=np.float64)
    hi, lo = canonical(hi, lo, scale, _mpf_decider(values))
    scale = np.where(np.isnan(scale), np.nan, scale)
    return Float64Evaluation(hi.reshape(shape), lo.reshape(shape), scale.reshape(shape))


def _mpf_decider(values):
    """Rounds an mpf element to its grid, a tie within the tie band: the mpf is the certified number, its own
    error (about 2**-150 grid units at 256 bits) far inside the band."""
    def decide(index, below, exponent):
        with mpmath.workprec(2400):  # exact: the shift, the grid multiple and the half are all representable
            offset = mpmath.ldexp(values[index], -exponent) - below - mpmath.mpf(0.5)
            side = 0 if abs(offset) <= mpmath.ldexp(1, -TIE_BITS) else int(mpmath.sign(offset))
        return nearest(below, side)
    return decide


def _ball_decider(values):
    """Rounds an Arb ball's element to its grid where the ball proves which side of the tie band around the
    midpoint it lies on, or that it lies inside (a tie, to even); else NotCanonical, and the evaluation is
    repeated more precisely (at 256 bits a ball is about 2**-150 grid units wide)."""
    import flint

    def decide(index, below, exponent):
        offset = values[index] * flint.arb(2) ** (-exponent) - flint.arb(below) - flint.arb(0.5)
        tie = flint.arb(2) ** -TIE_BITS
        if offset > tie:
            return below + 1
        if offset < -tie:
            return below
        if abs(offset) <= tie:  # the whole ball within the tie band
            return nearest(below, 0)
        raise NotCanonical(index)
    return decide


def split_balls(evaluation):
    """Float64Evaluation of an Evaluation of Arb balls: their midpoints, split; scale = max(scale, |hi|).

    Runs in the precision scope of the evaluation: the midpoint has at most that many bits, and midpoint - hi
    (both within one float64 ulp of each other) is then exact. float() of a ball rounds its midpoint to nearest;
    rounding is monotonic, so flooring after rounding equals rounding the floored scale, as split_mpf sees it."""
    values, shape = list(evaluation.value.flat), evaluation.value.shape
    hi = np.array([float(v) for v in values], dtype=np.float64)
    finite = np.isfinite(hi)
    his = hi.tolist()
    if finite.all():
        lo = np.array([float(v - h) for v, h in zip(values, his)], dtype=np.float64)
    else:
        lo = np.array([float(v - h) if ok else 0.0 for v, h, ok in zip(values, his, finite.tolist())],
                      dtype=np.float64)
    scale = np.array([float(s) for s in evaluation.scale.flat], dtype=np.float64)
    scale = np.fmax(scale, np.abs(hi))
    hi, lo = canonical(hi, lo, scale, _ball_decider(values))
    scale = np.where(np.isnan(scale), np.nan, scale)
    return Float64Evaluation(hi.reshape(shape), lo.reshape(shape), scale.reshape(shape))
