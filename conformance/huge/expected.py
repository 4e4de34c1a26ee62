"""What the oracle says a huge case should give, certified on its kinds alone, and the budgets it is judged by.

The oracle certifies each kind's row (its loss or log-probabilities, and its gradient for the kind's upstream
gradient) as a (K, C) problem. A 'none' loss or a full-size output is then its kinds' values placed by the
pattern. A 'mean' over R rows is sum_k count_k * loss_k / count: formed here in mpmath from the certified float64
pairs (exact sums of two floats), 256 bits, so its own error (2**-200 relative) is nothing beside the float64
canonical grid; its scale is the oracle's rule for a reduction (sum of the terms' scales over the denominator).
Its gradient is the kind's 'none' gradient for an upstream 1, divided by the count of rows that count: a power
of two (cases.Geometry), so the division is exact. The budgets are the suite's own (cases/tolerances.yaml) for the
huge shape's sum lengths.
"""
import mpmath
import numpy as np

import oracle

from ..expected.calls import Wanted
from ..verdict.tolerances import Tolerances
from .cases import IGNORE_INDEX


def _wanted(certified):
    return Wanted(certified.hi, certified.lo, certified.scale)


def _exact_mean(per_kind, counts, denominator):
    """Wanted () of sum_k counts_k (hi_k + lo_k) / denominator, and its scale."""
    with mpmath.workprec(256):
        total = mpmath.fsum(int(n) * (mpmath.mpf(h) + mpmath.mpf(l))
                            for n, h, l in zip(counts, per_kind.hi, per_kind.lo)) / denominator
        scale = mpmath.fsum(int(n) * mpmath.mpf(s) for n, s in zip(counts, per_kind.scale)) / denominator
        hi = float(total)
        lo = float(total - hi)
    return Wanted(np.array(hi), np.array(lo), np.array(float(scale)))


def certify(case, kinds):
    """{"value": Wanted, "grad_input": Wanted}: per kind ((K,) or (K, C)) or, for a 'mean', the scalar value."""
    if case.function == "log_softmax":
        value = oracle.certify_float64(oracle.log_softmax, kinds.logits, dim=-1)
        grad = oracle.certify_float64(oracle.log_softmax_vjp, kinds.logits, kinds.upstream, dim=-1)
        return {"value": _wanted(value), "grad_input": _wanted(grad["input"])}
    keywords = {"reduction": "none", "ignore_index": IGNORE_INDEX}
    value = _wanted(oracle.certify_float64(oracle.cross_entropy, kinds.logits, kinds.targets, **keywords))
    if kinds.upstream is not None:
        grad = oracle.certify_float64(oracle.cross_entropy_vjp, kinds.logits, kinds.targets, kinds.upstream,
                                      **keywords)
        return {"value": value, "grad_input": _wanted(grad["input"])}
    counts = kinds.counts()
    counted = int(counts[kinds.targets != IGNORE_INDEX].sum())
    if counted & (counted - 1):
        raise ValueError(f"the mean's denominator {counted} is not a power of two: its gradient would not be exact")
    grad = oracle.certify_float64(oracle.cross_entropy_vjp, kinds.logits, kinds.targets, np.ones(len(counts)),
                                  **keywords)["input"]
    exponent = -(counted.bit_length() - 1)
    return {"value": _exact_mean(value, counts, counted),
            "grad_input": Wanted(*(np.ldexp(part, exponent) for part in (grad.hi, grad.lo, grad.scale)))}


def budget(case, geometry, check, dtype, order=None, roundings=None, tolerances=None):
    """The tolerances.Budget of one check ("value", "grad_input") of the case in a dtype, for the huge shape's
    sums: the class sum over C and, for a 'mean', the sums over the rows and of the denominator."""
    tolerances = tolerances or Tolerances.load()
    lengths = {"class": geometry.classes}
    if case.kwargs.get("reduction") == "mean":
        lengths.update(rows=geometry.rows, weights=geometry.rows)
    kwargs = {**case.kwargs, "ignore_index": IGNORE_INDEX} if case.function == "cross_entropy" else case.kwargs
    return tolerances.resolve(case.function, check, dtype, kwargs, lengths, order=order, roundings=roundings)
