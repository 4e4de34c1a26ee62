"""The mpmath engine: the reference. Numbers are mpf at the working precision; NaN and +/-inf are values.

Its results are those docs/spec-notes.md describes; certification repeats an evaluation at doubled precision
(oracle/certify.py). Every helper here is what the formulas did with mpmath before engines existed.
"""
from contextlib import contextmanager

import mpmath
from mpmath import mp

from ._mp import INF, NAN, ONE, ZERO, _scalar_to_mpf


class MpmathEngine:
    name = "mpmath"
    zero, one, nan, inf, neg_inf = ZERO, ONE, NAN, INF, -INF

    def __init__(self):
        self.version = f"mpmath {mpmath.__version__}"
        self.description = self.version
        self.exp, self.log, self.tanh = mp.exp, mp.log, mp.tanh

    @contextmanager
    def precision(self, prec):
        with mp.workprec(prec):
            yield

    def numbers(self, array):
        """The elements of an exact array (C order) as mpf: numpy floats widen exactly, object arrays hold mpf."""
        if array.dtype == object:
            return list(array.flat)
        return [mpmath.mpf(v) for v in array.ravel().tolist()]  # a Python float is exact at >= 53 bits

    def number(self, value):
        return _scalar_to_mpf(value)

    def differences(self, row, origin):
        """(row as numbers, row - origin elementwise, origin as a number), rounded at the working precision."""
        values, shift = self.numbers(row), self.number(origin)
        return values, [v - shift for v in values], shift

    def logs_of_positive(self, values):
        """log of each value of a list known to be > 0 from the exact inputs."""
        return list(map(mp.log, values))

    def fsum(self, terms):
        return mp.fsum(terms)

    def fdot(self, left, right):
        # Rounded products, then one correctly rounded sum: the form the formulas have always used here.
        return mp.fsum([a * b for a, b in zip(left, right)])

    @staticmethod
    def is_exact_zero(value):
        return value == 0

    @staticmethod
    def isnan(value):
        return mpmath.isnan(value)

    @staticmethod
    def divide(numerator, denominator):
        """numerator / denominator with IEEE semantics for a zero denominator (mpmath raises instead)."""
        if denominator != 0 or mpmath.isnan(denominator):
            return numerator / denominator
        if numerator == 0 or mpmath.isnan(numerator):
            return NAN
        return INF if numerator > 0 else -INF

    @staticmethod
    def to_mpf(value):
        return value
