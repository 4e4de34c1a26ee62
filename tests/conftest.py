"""Shared helpers for the oracle's own tests: every value a test reads is certified (doubled precision)."""
import mpmath
import numpy as np
import pytest

import oracle


def certified(function, *args, **kwargs):
    """The certified value of an oracle call (raises CertificationError if doubling precision disagrees)."""
    result = oracle.certify(function, *args, **kwargs)
    if isinstance(result, oracle.Gradients):
        return oracle.Gradients(*(None if r is None else r.value for r in result))
    return result.value


def as_mpf(values):
    """An object array of mpf (values taken exactly), for inputs computed at high precision."""
    array = np.empty(np.shape(values), dtype=object)
    array[...] = values
    return array


def assert_close(got, wanted, bits=100, label=""):
    """Elementwise |got - wanted| <= 2**-bits * max(|wanted|, 1e-300), NaN where NaN, infinities equal."""
    __tracebackhide__ = True
    got, wanted = np.asarray(got, dtype=object), np.asarray(wanted, dtype=object)
    assert got.shape == wanted.shape, f"{label} shape {got.shape}, but should be {wanted.shape}"
    for index in np.ndindex(got.shape):
        g, w = mpmath.mpf(got[index]), mpmath.mpf(wanted[index])
        if mpmath.isnan(w) or mpmath.isinf(w):
            ok = (mpmath.isnan(g) and mpmath.isnan(w)) or g == w
        else:
            ok = abs(g - w) <= mpmath.ldexp(max(abs(w), mpmath.mpf("1e-300")), -bits)
        assert ok, f"{label}[{index}] = {mpmath.nstr(g, 25)}, but should be {mpmath.nstr(w, 25)}"


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)
