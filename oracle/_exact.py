"""Inputs kept exact until an engine converts them, and the decisions the formulas take on them.

Every branch of a formula (a NaN, an infinity, an exact zero, a row's maximum) is decided here, on the inputs
themselves, never on a computed number: an Arb ball cannot decide a comparison its interval straddles, and a
decision on exact inputs is the same for every engine. float16/32/64 arrays stay numpy arrays (vectorised
checks); anything else (lists of Python numbers, longdouble, mpf) becomes an object array of exact mpf.
"""
import mpmath
import numpy as np

from ._mp import _is_floating, as_numpy, to_mpf_array
from .errors import InputDtypeError

FAST_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def exact_array(values, name="input"):
    """A floating input, checked, as a numpy float16/32/64 array or an object array of mpf (same values)."""
    array = as_numpy(values)
    if array.dtype != object:
        if not _is_floating(array.dtype):
            raise InputDtypeError(f"{name} has dtype {array.dtype}; it must be floating point")
        if array.dtype.kind == "V":  # bfloat16 / float8 from ml_dtypes: float64 holds them exactly
            return array.astype(np.float64)
        if array.dtype in FAST_DTYPES:
            return array
    return to_mpf_array(array, name)


def _flags(array, test):
    if array.dtype != object:
        return test(array)
    flat = np.fromiter((test(v) for v in array.flat), dtype=bool, count=array.size)
    return flat.reshape(array.shape)


def isnan(array):
    return np.isnan(array) if array.dtype != object else _flags(array, mpmath.isnan)


def isposinf(array):
    return np.isposinf(array) if array.dtype != object else _flags(array, lambda v: v == mpmath.inf)


def isneginf(array):
    return np.isneginf(array) if array.dtype != object else _flags(array, lambda v: v == -mpmath.inf)


def is_zero(array):
    return array == 0 if array.dtype != object else _flags(array, lambda v: v == 0)


def is_negative(array):
    return array < 0 if array.dtype != object else _flags(array, lambda v: v < 0)


class RowStates:
    """Per row of a 2-D exact array: whether its softmax is undefined (a NaN, a +inf, only -inf, or no entries),
    whether it has -inf entries, which entries are -inf, and its maximum (meaningful for defined rows)."""

    __slots__ = ("undefined", "has_neg_inf", "neg_inf", "maxima")

    def __init__(self, rows):
        self.neg_inf = isneginf(rows)
        self.has_neg_inf = self.neg_inf.any(axis=1)
        self.undefined = isnan(rows).any(axis=1) | isposinf(rows).any(axis=1) | self.neg_inf.all(axis=1)
        if rows.dtype != object:
            with np.errstate(invalid="ignore"):
                self.maxima = rows.max(axis=1).tolist() if rows.shape[1] else [None] * rows.shape[0]
        else:
            self.maxima = [None if bad else max(row) for row, bad in zip(rows, self.undefined)]
