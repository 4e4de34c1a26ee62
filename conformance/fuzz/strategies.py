"""Hypothesis strategies for the calls the fuzzer makes: small, named and composable.

Building blocks (shapes, dtypes, element values, tensors, keyword arguments, targets, weights) combine into one
strategy of valid calls per function and a family of invalid calls, each with the oracle's typed error it must
raise. Every float tensor is drawn in float64 and rounded to the dtype under test here, so a drawn value is
exactly the value the backend and the oracle see, and exactly what a found case file writes down.
Shrinking goes towards small shapes, default keyword arguments, float64 and values near 0.
"""
import math
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..spec.dtypes import DTYPES, float_format, round_to
from ..spec.classes import class_dim, class_layout

MAX_CLASSES = 5
MAX_BATCH = 3
REGIMES = ("moderate", "moderate", "moderate", "wide", "extreme")  # per tensor; repeated entries weight the draw
# Binary orders of magnitude left free below each dtype's largest value by default: sums of up to 2**10 drawn
# terms stay finite. headroom=0 (--full-range) reaches the top of the range, where torch's intermediates overflow
# in every dtype (docs/fuzzing.md, "Findings").
HEADROOM = 10


@dataclass
class DrawnCall:
    """One call to check: arrays hold values of ``dtype`` (float64) or integers; ``expect_error`` for invalid calls."""

    function: str
    dtype: str
    arrays: dict  # "input", and "target" / "weight" where the call has them
    kwargs: dict = field(default_factory=dict)
    form: str = "functional"
    seed: int = 0  # the seed of the upstream gradient (conformance.inputs.generate.make_grad_output)
    expect_error: str | None = None  # an oracle error class name
    defect: str = ""  # for an invalid call: what is wrong with it, e.g. "target-out-of-range"


# ---- dtypes, forms, seeds ---------------------------------------------------------------------------------------


def dtypes(names=DTYPES):
    """One of the dtype names (shrinks towards the first)."""
    return st.sampled_from(tuple(names))


def forms():
    """'functional' (F.cross_entropy(...)) or 'module' (nn.CrossEntropyLoss(...)(...))."""
    return st.sampled_from(("functional", "module"))


def seeds():
    """A seed for the upstream gradient."""
    return st.integers(0, 2**16)


# ---- element values ---------------------------------------------------------------------------------------------


def moderate_values():
    """Small integers (exact in every dtype, good shrink targets) or floats in [-8, 8]."""
    return st.integers(-4, 4).map(float) | st.floats(-8.0, 8.0)


def wide_values(dtype, max_exponent=None, headroom=HEADROOM):
    """Signed m * 2**e from the smallest subnormal of ``dtype`` up to 2**max_exponent (default: the dtype's top
    exponent less ``headroom``), and 0."""
    fmt = float_format(dtype)
    smallest_exponent = fmt.min_exponent - fmt.precision + 1
    top = fmt.max_exponent - headroom if max_exponent is None else max_exponent
    magnitudes = st.builds(lambda m, e: math.ldexp(m, e), st.floats(1.0, 2.0, exclude_max=True),
                           st.integers(smallest_exponent, top))
    return st.just(0.0) | magnitudes | magnitudes.map(lambda v: -v)


def extreme_values(dtype, headroom=HEADROOM):
    """The edges of ``dtype``: +-largest * 2**-headroom, +-smallest normal, the smallest subnormal, +-0."""
    fmt = float_format(dtype)
    smallest_subnormal = math.ldexp(1.0, fmt.min_exponent - fmt.precision + 1)
    top = math.ldexp(fmt.largest, -headroom)
    edges = (top, -top, fmt.smallest_normal, -fmt.smallest_normal, smallest_subnormal, 0.0, -0.0)
    return st.sampled_from(edges)


def element_values(dtype, regime, neg_inf=False, headroom=HEADROOM):
    """Elements of one tensor: every regime mixes in moderate values; -inf only where the caller allows it."""
    elements = moderate_values()
    if regime in ("wide", "extreme"):
        elements |= wide_values(dtype, headroom=headroom)
    if regime == "extreme":
        elements |= extreme_values(dtype, headroom)
    if neg_inf:
        elements |= st.just(-math.inf)
    return elements


def shifts(dtype):
    """A constant added to a whole tensor of logits (0 mostly): large shifts test the max subtraction."""
    fmt = float_format(dtype)
    return st.sampled_from([0.0] * 6 + [s for s in (64.0, 1e4, -1e4, 1e6) if abs(s) * 4 < fmt.largest])


# ---- tensors ----------------------------------------------------------------------------------------------------


@st.composite
def float_tensors(draw, shape, dtype, elements=None, neg_inf=False, shift=False, headroom=HEADROOM):
    """A float64 array of ``shape`` holding ``dtype`` values (drawn, shifted, then rounded to the dtype)."""
    if elements is None:
        regime = draw(st.sampled_from(REGIMES))
        elements = element_values(dtype, regime, neg_inf and draw(st.integers(0, 3)) == 0, headroom)
    values = draw(hnp.arrays(np.float64, shape, elements=elements))
    if shift:
        values = values + draw(shifts(dtype))
    return round_to(values, dtype)


def sizes(low=1, high=MAX_CLASSES):
    return st.integers(low, high)


@st.composite
def shapes(draw, max_rank=4, max_side=3):
    """Any shape of rank 0 to max_rank with sides 0 to max_side (softmax, log_softmax, kl_div)."""
    rank = draw(st.integers(0, max_rank))
    return tuple(draw(st.lists(sides(max_side), min_size=rank, max_size=rank)))


def sides(high=3):
    """A dimension's size in [0, high]; 0 (an empty tensor) is drawn less often than the others."""
    return st.sampled_from(tuple(range(1, high + 1)) * 2 + (0,))


@st.composite
def class_shapes(draw, min_classes=1):
    """A loss input shape: (C) unbatched, (N, C), or K-dim (N, C, d1[, d2]); N may be 0."""
    n_classes = draw(sizes(min_classes))
    layout = draw(st.sampled_from(("NC", "C", "NCd1", "NCd1d2")))
    if layout == "C":
        return (n_classes,)
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=len(layout) // 2 - 1, max_size=len(layout) // 2 - 1)))
    return (draw(sides(MAX_BATCH)), n_classes) + spatial


# ---- keyword arguments ------------------------------------------------------------------------------------------


@st.composite
def keywords(draw, **strategies):
    """kwargs in which each keyword is drawn from its strategy or left out (the function's default)."""
    return {name: draw(strategy) for name, strategy in strategies.items() if draw(st.booleans())}


def reduction_kwargs(reductions=("none", "mean", "sum")):
    """reduction drawn or left out; sometimes also the legacy size_average / reduce, which override it."""
    legacy_flag = st.none() | st.booleans()
    reduction = st.sampled_from(reductions)
    return keywords(reduction=reduction) | keywords(reduction=reduction, size_average=legacy_flag, reduce=legacy_flag)


def dims(ndim):
    """A valid dim for a tensor of rank ndim, or None (the implicit dim: deprecated, still documented)."""
    return st.none() | st.integers(-max(ndim, 1), max(ndim, 1) - 1)


def label_smoothings():
    """A label_smoothing in the documented range [0, 1]: round values first, then any multiple of 1/1000."""
    return st.sampled_from((0.0, 0.1, 0.25, 0.5, 1.0)) | st.integers(1, 999).map(lambda k: k / 1000)


def ignore_indices(n_classes):
    """The default -100, another negative value, or a valid class (whose rows are then ignored)."""
    return st.sampled_from((-100, -1)) | st.integers(0, n_classes - 1)


# ---- targets and weights ----------------------------------------------------------------------------------------


def index_targets(n_classes, out_shape, ignore_index=-100):
    """int64 class indices in [0, C) with ``ignore_index`` mixed in."""
    return hnp.arrays(np.int64, out_shape, elements=st.integers(0, n_classes - 1) | st.just(ignore_index))


@st.composite
def class_weights(draw, n_classes, dtype):
    """Per-class weights: positive, with exact zeros, or with negatives (the formula applies as written)."""
    kind = draw(st.sampled_from(("positive", "zeros", "negative")))
    elements = st.sampled_from((1.0, 0.5, 2.0, 3.0)) | st.floats(0.125, 4.0)
    if kind in ("zeros", "negative"):
        elements |= st.just(0.0)
    if kind == "negative":
        elements |= st.floats(-4.0, -0.125) | st.just(-1.0)
    return draw(float_tensors((n_classes,), dtype, elements=elements))


def _normalise(values, dim):
    """Rows scaled to sum 1 along dim with a correctly rounded sum; all-zero rows stay zero."""
    if values.size == 0 or values.ndim == 0:
        return values
    moved = np.moveaxis(values, dim, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    totals = np.array([math.fsum(row) for row in rows])
    scaled = np.divide(rows, totals[:, None], out=rows.copy(), where=totals[:, None] > 0)
    return np.moveaxis(scaled.reshape(moved.shape), -1, dim)


@st.composite
def probability_targets(draw, shape, dtype, dim):
    """Non-negative targets of ``shape``: normalised along dim, unnormalised, or one-hot; zeros mixed in."""
    kind = draw(st.sampled_from(("normalised", "unnormalised", "one-hot")))
    if kind == "one-hot":
        elements = st.sampled_from((0.0, 1.0))
    else:
        regime = draw(st.sampled_from(REGIMES))
        elements = st.just(0.0) | st.floats(0.0, 4.0)
        if regime != "moderate":  # tiny probabilities, down to the smallest subnormal; never above 1
            elements |= wide_values(dtype, max_exponent=-1).map(abs)
    values = draw(hnp.arrays(np.float64, shape, elements=elements))
    if kind == "normalised":
        values = _normalise(values, dim)
    return round_to(values, dtype)


# ---- valid calls, one strategy per function ---------------------------------------------------------------------


@st.composite
def softmax_calls(draw, function, dtype, headroom=HEADROOM):
    """softmax or log_softmax of any shape along a drawn or implicit dim; logits with -inf and shifts."""
    shape = draw(shapes())
    kwargs = draw(keywords(dim=dims(len(shape))))
    form = draw(forms()) if "dim" in kwargs else "functional"  # nn.Softmax() without dim is another question
    values = draw(float_tensors(shape, dtype, neg_inf=True, shift=True, headroom=headroom))
    return DrawnCall(function, dtype, {"input": values}, kwargs, form, draw(seeds()))


@st.composite
def class_index_loss(draw, function, dtype, shape, headroom=HEADROOM):
    """(arrays, kwargs) of nll_loss or cross_entropy with class-index targets."""
    _, n_classes, out_shape = class_layout(shape)
    kwargs = draw(keywords(ignore_index=ignore_indices(n_classes)))
    kwargs.update(draw(reduction_kwargs()))
    logits = float_tensors(shape, dtype, neg_inf=True, shift=function == "cross_entropy", headroom=headroom)
    arrays = {"input": draw(logits),
              "target": draw(index_targets(n_classes, out_shape, kwargs.get("ignore_index", -100)))}
    if draw(st.booleans()):
        arrays["weight"] = draw(class_weights(n_classes, dtype))
    return arrays, kwargs


@st.composite
def nll_loss_calls(draw, dtype, headroom=HEADROOM):
    """nll_loss on log-probability-like inputs (any floats, -inf included) with class-index targets."""
    arrays, kwargs = draw(class_index_loss("nll_loss", dtype, draw(class_shapes()), headroom))
    return DrawnCall("nll_loss", dtype, arrays, kwargs, draw(forms()), draw(seeds()))


@st.composite
def cross_entropy_calls(draw, dtype, headroom=HEADROOM):
    """cross_entropy with class indices or class probabilities (normalised or not), weights, label smoothing."""
    shape = draw(class_shapes())
    if draw(st.booleans()):
        arrays, kwargs = draw(class_index_loss("cross_entropy", dtype, shape, headroom))
    else:
        dim, n_classes, _ = class_layout(shape)
        kwargs = draw(keywords(ignore_index=st.sampled_from((-100, -1))))  # a class index would be an error
        kwargs.update(draw(reduction_kwargs()))
        arrays = {"input": draw(float_tensors(shape, dtype, neg_inf=True, shift=True, headroom=headroom)),
                  "target": draw(probability_targets(shape, dtype, dim))}
        if draw(st.booleans()):
            arrays["weight"] = draw(class_weights(n_classes, dtype))
    kwargs.update(draw(keywords(label_smoothing=label_smoothings())))
    return DrawnCall("cross_entropy", dtype, arrays, kwargs, draw(forms()), draw(seeds()))


@st.composite
def kl_div_calls(draw, dtype, headroom=HEADROOM):
    """kl_div of log-probability inputs and probability targets in [0, 1] (with log_target: log-probabilities,
    which are <= 0)."""
    shape = draw(shapes(max_rank=3))
    kwargs = draw(keywords(log_target=st.booleans()))
    kwargs.update(draw(reduction_kwargs(("none", "mean", "sum", "batchmean"))))
    if kwargs.get("log_target"):
        target = -np.abs(draw(float_tensors(shape, dtype, neg_inf=True, headroom=headroom)))
    else:
        target = draw(probability_targets(shape, dtype, class_dim(len(shape))))
    arrays = {"input": draw(float_tensors(shape, dtype, neg_inf=True, headroom=headroom)), "target": target}
    return DrawnCall("kl_div", dtype, arrays, kwargs, draw(forms()), draw(seeds()))


def valid_calls(function, dtype, headroom=HEADROOM):
    """Valid calls of ``function`` in ``dtype``: the oracle returns a value for every one."""
    if function in ("softmax", "log_softmax"):
        return softmax_calls(function, dtype, headroom)
    strategy = {"nll_loss": nll_loss_calls, "cross_entropy": cross_entropy_calls, "kl_div": kl_div_calls}[function]
    return strategy(dtype, headroom)
