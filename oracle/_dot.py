"""Exact dot products of floating-point vectors, fast: the logits of a fused linear cross-entropy.

``exact_matmul(a, b)`` returns a @ b.T for finite float arrays a (N, H) and b (V, H) as exact dyadic numbers,
(integer mantissas, exponents), with no rounding at all, in float64 matrix products (BLAS speed).

The method is Ozaki's error-free splitting. Each row of a (and of b) is cut into slices: slice k holds integers
of at most ``beta`` bits times a power of two common to the row, and the slices add up to the row exactly (each
is the residual rounded to a multiple of that power, which is exact in float64). With 2 beta + log2(H) <= 53,
every product of two slices and every partial sum of H of them is an integer below 2**53, so a float64 matrix
product of two slice matrices is exact whatever order BLAS adds in. The slice products are then added as Python
integers. A float32 row whose values span 2**30 needs about 3 slices: 9 matrix products for a @ b.T.
"""
import math

import numpy as np

MANTISSA = 53  # float64's significand, the exact integer range of a float64 matrix product
MIN_EXPONENT = -1074  # the smallest subnormal is 2**-1074: every finite float is a multiple of it


def slice_width(length):
    """The bits per slice for dot products of ``length`` terms: products and their sums stay below 2**53."""
    return max(1, (MANTISSA - max(1, math.ceil(math.log2(max(length, 2))))) // 2)


def split_rows(matrix, beta):
    """[(integers, exponents)]: matrix == sum_k integers_k * 2**exponents_k[:, None], exactly; integers_k are
    float64 arrays of integers with |value| <= 2**beta, exponents_k one int64 per row (rows already exact
    have slices of zeros)."""
    residual = np.array(matrix, dtype=np.float64)
    if not np.all(np.isfinite(residual)):
        raise ValueError("exact_matmul takes finite values only")
    slices = []
    while True:
        largest = np.max(np.abs(residual), axis=1) if residual.shape[1] else np.zeros(residual.shape[0])
        if not np.any(largest):
            return slices
        _, top = np.frexp(largest)  # largest < 2**top
        exponents = np.maximum(top.astype(np.int64) - beta, MIN_EXPONENT)
        # Scaled by 2**-exponent, every element that can round to a nonzero integer is a normal number (>= 0.5),
        # so the scaling is exact where it matters and rint rounds the residual to a multiple of 2**exponent.
        if exponents.min() >= -1000 and exponents.max() <= 1000:  # powers of two as factors: faster than ldexp
            integers = np.rint(residual * np.exp2(-exponents.astype(np.float64))[:, None])
            residual -= integers * np.exp2(exponents.astype(np.float64))[:, None]  # exact: what rounding left
        else:
            integers = np.rint(np.ldexp(residual, -exponents[:, None]))
            residual -= np.ldexp(integers, exponents[:, None])
        slices.append((integers, exponents))  # |integers| <= 2**beta


def _shifted(integers, shifts):
    """Python integers ``integers * 2**shifts`` (elementwise; shifts >= 0)."""
    values = integers.astype(np.int64).astype(object)
    return values * np.left_shift(np.ones_like(shifts, dtype=object), shifts.astype(object))


BLOCK = 4096  # rows of b split and multiplied at a time: bounds the memory of the slices


def exact_matmul(a, b, bias=None):
    """(mantissas, exponents): a @ b.T (+ bias) == mantissas * 2**exponents exactly, both (N, V) arrays (Python
    int objects, and int64). a (N, H) and b (V, H) finite floats (float16, float32, float64, or float64 holding
    bfloat16 values); bias (V,) finite floats or None."""
    a = np.asarray(a, dtype=np.float64)
    beta = slice_width(a.shape[1])
    left = split_rows(a, beta)
    mantissas = np.zeros((a.shape[0], len(b)), dtype=object)
    exponents = np.zeros((a.shape[0], len(b)), dtype=np.int64)
    for start in range(0, len(b), BLOCK):
        block = slice(start, start + BLOCK)
        right = split_rows(np.asarray(b[block], dtype=np.float64), beta)
        terms = [(l @ r.T, ea[:, None] + eb[None, :]) for l, ea in left for r, eb in right]
        if bias is not None:
            shape = (a.shape[0], len(right[0][0]) if right else min(BLOCK, len(b) - start))
            for integers, exps in split_rows(np.asarray(bias[block], dtype=np.float64)[:, None], MANTISSA - 1):
                terms.append((np.broadcast_to(integers[:, 0], shape), np.broadcast_to(exps, shape)))
        if terms:
            mantissas[:, block], exponents[:, block] = _combine(terms)
    return mantissas, exponents


def _combine(terms):
    """(sum of integers_k * 2**exponents_k as Python ints times 2**lowest, lowest) over the terms."""
    lowest = np.min([exps for _, exps in terms], axis=0)
    total = 0
    for integers, exps in terms:
        total = total + _shifted(integers, exps - lowest)
    return total, lowest


def to_float64(mantissas, exponents):
    """The exact values rounded to nearest float64 (one rounding: int -> float is correctly rounded, and the
    power of two is exact unless the result is subnormal, where a second rounding is below 2**-1074)."""
    flat = [math.ldexp(float(m), int(e)) if m else 0.0 for m, e in zip(mantissas.flat, exponents.flat)]
    return np.array(flat, dtype=np.float64).reshape(mantissas.shape)
