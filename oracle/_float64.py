"""Certified arrays as float64 numbers: value = hi + lo to about 2**-106, beside the scale.

The store of conformance/expected/store.py keeps these. From mpf (the mpmath engine) each element is split in
Python; from Arb balls the midpoints are split directly, without forming an mpf per element.
"""
from typing import NamedTuple

import mpmath
import numpy as np


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
    return Float64Evaluation(hi.reshape(shape), lo.reshape(shape), scale.reshape(shape))


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
    return Float64Evaluation(hi.reshape(shape), lo.reshape(shape), scale.reshape(shape))
