"""Precision, the public result types, exact conversion to mpf, and the public (mpf) form of a result.

Every input value is converted *exactly*: float16/float32/float64 (and bfloat16 held in float32) are dyadic
rationals with at most 64 significant bits, which an mpf (or an Arb ball) holds without rounding at any precision
the oracle accepts (>= 64 bits). Arithmetic on them then happens in the active engine at the working precision
``prec`` (oracle/_engine.py).
"""
from typing import NamedTuple

import mpmath
import numpy as np
from mpmath import mp
from mpmath.libmp import fnan, mpf_abs, mpf_ge

from .errors import InputDtypeError

DEFAULT_PREC = 128  # bits; above binary128's 113 so that float64 results keep > 60 guard bits
MIN_PREC = 64  # enough to hold any input (float64: 53 bits, x87 long double: 64 bits) exactly

ZERO = mpmath.mpf(0)
ONE = mpmath.mpf(1)
NAN = mpmath.mpf("nan")
INF = mpmath.mpf("inf")


class Evaluation(NamedTuple):
    """An oracle result with, per element, the scale its error is measured against.

    ``scale`` is the sum of the absolute values of the terms that formed each element (>= ``|value|``), so a
    result that cancels is judged relative to what the arithmetic actually handled.
    """

    value: np.ndarray
    scale: np.ndarray


class Gradients(dict):
    """A vector-Jacobian product: {argument name: its gradient} for the arguments that have one (``input``, and
    ``target`` where it is differentiable; any other name a function's gradients need). A name without a gradient
    is absent, and reads as None as an attribute (``gradients.target``)."""

    def __init__(self, input=None, target=None, **others):
        super().__init__((name, value) for name, value in dict(input=input, target=target, **others).items()
                         if value is not None)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)

    def __reduce__(self):  # pickled as its items: the keyword constructor rebuilds it
        return _gradients, (dict(self),)


def _gradients(items):
    return Gradients(**items)


class Outputs(Gradients):
    """The named outputs of a function that returns more than one ({"loss": ..., "lse": ...}, the primary one
    first): a mapping of Evaluations, handled as Gradients are."""

    def __init__(self, **outputs):
        dict.__init__(self, ((name, value) for name, value in outputs.items() if value is not None))

    def __reduce__(self):
        return _outputs, (dict(self),)


def _outputs(items):
    return Outputs(**items)


def resolve_prec(prec):
    if prec is None:
        return DEFAULT_PREC
    if isinstance(prec, bool) or not isinstance(prec, int) or prec < MIN_PREC:
        raise ValueError(f"prec must be an int of at least {MIN_PREC} bits, got {prec!r}")
    return prec


def _scalar_to_mpf(value):
    if isinstance(value, mpmath.mpf):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"boolean value {value!r} is not a number")
    if isinstance(value, (int, np.integer)):
        with mp.workprec(max(mp.prec, int(value).bit_length() + 1)):
            return mpmath.mpf(int(value))
    if isinstance(value, np.longdouble) and np.finfo(np.longdouble).nmant > 52:
        if not np.isfinite(value):
            return mpmath.mpf(float(value))
        numerator, denominator = value.as_integer_ratio()  # denominator is a power of two: exact
        return mpmath.ldexp(_scalar_to_mpf(numerator), -(denominator.bit_length() - 1))
    if isinstance(value, (float, np.floating)):
        return mpmath.mpf(float(value))  # float16/32/64 widen to float64 exactly
    raise TypeError(f"{type(value).__name__} value {value!r} is not a real number")


_to_mpf_elementwise = np.frompyfunc(_scalar_to_mpf, 1, 1)


def _is_floating(dtype):
    if dtype.kind == "f":
        return True
    # bfloat16/float8 from ml_dtypes register as kind 'V'; accept them when float64 holds them exactly.
    return dtype.kind == "V" and "float" in dtype.name


def as_numpy(values):
    """numpy view of an array or nested list; Python scalars of a list keep their exact values (object dtype)."""
    if isinstance(values, np.ndarray):
        return values
    if isinstance(values, np.generic):
        return np.asarray(values)
    array = np.array(values, dtype=object)
    if any(isinstance(v, (list, tuple, np.ndarray)) for v in array.flat):
        raise ValueError("nested list is ragged: every row must have the same length")
    return array


def is_integer_array(array):
    """True for integer dtypes, and for object arrays (from lists) that hold only Python ints."""
    if array.dtype != object:
        return array.dtype.kind in "iu"
    return all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in array.flat)


def to_mpf_array(values, name="input"):
    """Exact elementwise conversion of a floating array (or nested list of Python numbers) to mpf."""
    array = as_numpy(values)
    if array.dtype == object:
        if any(isinstance(v, (bool, np.bool_)) for v in array.flat):
            raise InputDtypeError(f"{name} holds booleans; it must be floating point")
    elif not _is_floating(array.dtype):
        raise InputDtypeError(f"{name} has dtype {array.dtype}; it must be floating point")
    elif array.dtype.kind == "V":
        array = array.astype(np.float64)
    with mp.workprec(max(mp.prec, MIN_PREC)), np.errstate(invalid="ignore"):  # NaN inputs are values here
        converted = _to_mpf_elementwise(array) if array.size else np.empty(array.shape, dtype=object)
    return np.asarray(converted, dtype=object).reshape(array.shape)


def object_array(values, shape):
    """A numpy object array of the given shape from a flat sequence of mpf values."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array.reshape(shape)


def exact_mpf(raw):
    """An mpf holding mpmath's raw tuple as it is: mpf(tuple), abs() and mpf's constructor round to mp.prec, and
    the constructor's parsing costs 1 us more per number."""
    number = object.__new__(mpmath.mpf)
    number._mpf_ = raw
    return number


def _at_least_abs(scale, value):
    """max(scale, |value|), scale where value is NaN; on mpmath's raw tuples (the mpf operators cost 3x more)."""
    raw_value, raw_scale = getattr(value, "_mpf_", None), getattr(scale, "_mpf_", None)
    if raw_value is None or raw_scale is None:  # not mpf (no oracle result is): mpmath's operators decide
        return scale if mpmath.isnan(value) or scale >= abs(value) else abs(value)
    if raw_value == fnan:
        return scale
    magnitude = mpf_abs(raw_value)
    if mpf_ge(raw_scale, magnitude):
        return scale
    return value if magnitude is raw_value else exact_mpf(magnitude)


_scale_floor = np.frompyfunc(_at_least_abs, 2, 1)


def wrap(value, scale, return_scale):
    """The public form of a result: the values, or an Evaluation whose scale is never below |value|."""
    if not return_scale:
        return value
    floored = _scale_floor(scale, value) if value.size else scale  # rounding could leave it an ulp below
    return Evaluation(value, np.asarray(floored, dtype=object).reshape(value.shape))
