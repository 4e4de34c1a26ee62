"""The floating dtypes under test: their roundoff, range, and exact rounding of float64 values to them.

Rounding is done here, with IEEE-exact numpy operations (frexp, ldexp, rint), instead of by a framework, so the
inputs of a case are the same bits on every machine and for every backend; bfloat16 needs no extra package.
"""
import re
from typing import NamedTuple

import numpy as np


class FloatFormat(NamedTuple):
    name: str
    precision: int  # significant bits, the implicit one included
    min_exponent: int  # exponent of the smallest normal number: 2**min_exponent
    max_exponent: int  # the largest finite number is (2 - 2**(1 - precision)) * 2**max_exponent

    @property
    def unit_roundoff(self):
        return 2.0 ** -self.precision

    @property
    def smallest_normal(self):
        return 2.0 ** self.min_exponent

    @property
    def largest(self):
        return (2.0 - 2.0 ** (1 - self.precision)) * 2.0 ** self.max_exponent


FORMATS = {
    "float64": FloatFormat("float64", 53, -1022, 1023),
    "float32": FloatFormat("float32", 24, -126, 127),
    "float16": FloatFormat("float16", 11, -14, 15),
    "bfloat16": FloatFormat("bfloat16", 8, -126, 127),
}
DTYPES = tuple(FORMATS)


def float_format(name):
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; expected one of {', '.join(DTYPES)}") from None


def round_to(values, dtype):
    """float64 values rounded to nearest-even in ``dtype`` (subnormals and overflow to inf included), as float64."""
    fmt = float_format(dtype)
    values = np.asarray(values, dtype=np.float64)
    if dtype == "float64":
        return values.copy()
    if dtype == "float32":  # the IEEE conversion is this rounding, at a third of the formula's cost; NaN kept as is
        with np.errstate(over="ignore", invalid="ignore"):
            return np.where(np.isnan(values), values, values.astype(np.float32).astype(np.float64))
    return rounded_by_formula(values, fmt)


def rounded_by_formula(values, fmt):
    """round_to for any format, from its precision and exponent range (numpy has no bfloat16 to cast to)."""
    with np.errstate(over="ignore", invalid="ignore"):
        _, exponent = np.frexp(values)  # values = m * 2**exponent, 0.5 <= |m| < 1
        # The spacing of dtype numbers near each value: 2**(e - p) for normals, fixed below the normal range.
        spacing_exponent = np.maximum(exponent - fmt.precision, fmt.min_exponent + 1 - fmt.precision)
        rounded = np.ldexp(np.rint(np.ldexp(values, -spacing_exponent)), spacing_exponent)
        rounded = np.where(np.abs(rounded) > fmt.largest, np.copysign(np.inf, values), rounded)
        return np.where(np.isfinite(values), rounded, values)


DTYPE_ALIASES = {"double": "float64", "float": "float32", "half": "float16", "bf16": "bfloat16", "fp16": "float16",
                 "fp32": "float32", "fp64": "float64"}


def normalize_dtype_name(name):
    """A framework's dtype name as the suite spells it: "paddle.float32", "mlx.core.float32", "torch.bfloat16",
    "dtype('float64')" and "<class 'jax.numpy.float16'>" end in the name that counts; None stays None."""
    if name is None:
        return None
    words = re.findall(r"[A-Za-z0-9_]+", str(name))
    last = words[-1].lower() if words else str(name)
    return DTYPE_ALIASES.get(last, last)
