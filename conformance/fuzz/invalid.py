"""Invalid calls: a valid call with exactly one defect, and the oracle's typed error that the defect must raise.

One defect per call, so that the expected error is unambiguous: if the oracle raises another error (or none),
the runner reports a case problem, which the fuzzer reports as a finding against the oracle or these
strategies. Defects torch is known to accept (negative label_smoothing, non-bool size_average) are drawn too;
conformance/fuzz/known.py recognises them as declared deviations.
"""
import numpy as np
from hypothesis import strategies as st

from ..spec.classes import class_layout
from .strategies import (DrawnCall, class_index_loss, class_shapes, cross_entropy_calls, float_tensors, forms,
                         kl_div_calls, moderate_values, probability_targets, seeds, shapes, valid_calls)

UNKNOWN_REDUCTIONS = ("avg", "MEAN", "", "elementwise_sum")
LEGACY = ("size_average", "reduce")


def with_defect(call, error, defect, arrays=None, kwargs=None, drop=()):
    """A copy of ``call`` with some arrays and kwargs replaced (and ``drop`` removed), expecting ``error``."""
    new_kwargs = {k: v for k, v in {**call.kwargs, **(kwargs or {})}.items() if k not in drop}
    return DrawnCall(call.function, call.dtype, {**call.arrays, **(arrays or {})}, new_kwargs, call.form, call.seed,
                     error, defect)


@st.composite
def index_loss_calls(draw, function, dtype, batched=False):
    """A valid nll_loss / cross_entropy call with class-index targets; batched: rank >= 2 and N >= 1."""
    shape = draw(class_shapes().filter(lambda s: len(s) == 1 or s[0] >= 1))
    if batched and len(shape) == 1:
        shape = (1,) + shape
    arrays, kwargs = draw(class_index_loss(function, dtype, shape))
    if function == "cross_entropy" and draw(st.booleans()):
        kwargs["label_smoothing"] = draw(st.sampled_from((0.0, 0.1, 1.0)))
    return DrawnCall(function, dtype, arrays, kwargs, draw(forms()), draw(seeds()))


@st.composite
def out_of_range_targets(draw, function, dtype):
    """One class index set to C (or beyond) or to a negative value that is not ignore_index."""
    call = draw(index_loss_calls(function, dtype))
    n_classes = class_layout(call.arrays["input"].shape)[1]
    bad = draw(st.sampled_from((n_classes, n_classes + 7, -2)))  # ignore_index is -100, -1 or a class: never these
    target = call.arrays["target"].copy()
    if target.ndim == 0:
        target = np.array(bad, dtype=np.int64)
    else:
        target[tuple(draw(st.integers(0, side - 1)) for side in target.shape)] = bad
    return with_defect(call, "TargetOutOfRangeError", "target-out-of-range", arrays={"target": target})


@st.composite
def batch_mismatches(draw, function, dtype):
    """A class-index target with one row more than the input has (N + 1)."""
    call = draw(index_loss_calls(function, dtype, batched=True))
    target = call.arrays["target"]
    extra = np.zeros((1,) + target.shape[1:], dtype=np.int64)
    return with_defect(call, "ShapeMismatchError", "batch-mismatch",
                       arrays={"target": np.concatenate([target, extra])})


@st.composite
def wrong_weights(draw, function, dtype):
    """A weight of C + 1 (or C - 1) entries, or a 2-D (1, C) weight."""
    call = draw(index_loss_calls(function, dtype))
    n_classes = class_layout(call.arrays["input"].shape)[1]
    shapes_allowed = [(n_classes + 1,), (1, n_classes)] + ([(n_classes - 1,)] if n_classes > 1 else [])
    shape = draw(st.sampled_from(shapes_allowed))
    weight = draw(float_tensors(shape, dtype, elements=st.floats(0.125, 4.0)))
    return with_defect(call, "WeightSizeError", "weight-size", arrays={"weight": weight})


@st.composite
def smoothing_out_of_range(draw, dtype):
    """cross_entropy with label_smoothing above 1 (torch raises) or below 0 (torch accepts: a declared deviation)."""
    call = draw(cross_entropy_calls(dtype))
    value = draw(st.sampled_from((1.5, 2.0, 1.001)) | st.sampled_from((-0.1, -0.5)))
    return with_defect(call, "LabelSmoothingRangeError", "label-smoothing-range", kwargs={"label_smoothing": value})


@st.composite
def ignore_index_with_probabilities(draw, dtype):
    """cross_entropy with class-probability targets and an ignore_index that names a class (or C)."""
    shape = draw(class_shapes())
    dim, n_classes, _ = class_layout(shape)
    arrays = {"input": draw(float_tensors(shape, dtype)), "target": draw(probability_targets(shape, dtype, dim))}
    call = DrawnCall("cross_entropy", dtype, arrays, {}, draw(forms()), draw(seeds()))
    return with_defect(call, "IgnoreIndexWithProbabilitiesError", "ignore-index-with-probabilities",
                       kwargs={"ignore_index": draw(st.integers(0, n_classes))})


@st.composite
def unknown_reductions(draw, function, dtype):
    """A reduction the function does not document (legacy arguments dropped: they would override it)."""
    call = draw(valid_calls(function, dtype))
    names = UNKNOWN_REDUCTIONS + (() if function == "kl_div" else ("batchmean",))
    return with_defect(call, "UnknownReductionError", "unknown-reduction",
                       kwargs={"reduction": draw(st.sampled_from(names))}, drop=LEGACY)


@st.composite
def legacy_non_bool(draw, function, dtype):
    """size_average or reduce given a value that is not a bool (torch uses its truth: a declared deviation)."""
    call = draw(valid_calls(function, dtype))
    name = draw(st.sampled_from(LEGACY))
    return with_defect(call, "UnknownReductionError", "legacy-not-bool", kwargs={name: draw(st.sampled_from((2, 0)))})


@st.composite
def wrong_target_dtypes(draw, function, dtype):
    """Class indices held as int32, bool or floats (a target of another shape than the input's is an index)."""
    call = draw(index_loss_calls(function, dtype))
    target = call.arrays["target"]
    n_classes = class_layout(call.arrays["input"].shape)[1]
    kind = draw(st.sampled_from(("int32", "float", "bool")))
    clipped = np.clip(target, 0, n_classes - 1)  # ignore_index -100 would not survive bool or be a float class
    converted = {"int32": clipped.astype(np.int32), "float": clipped.astype(np.float64),
                 "bool": (clipped > 0)}[kind]
    return with_defect(call, "TargetDtypeError", f"target-dtype-{kind}", arrays={"target": converted})


@st.composite
def bad_dims(draw, function, dtype):
    """softmax / log_softmax along a dim outside [-ndim, ndim) (a 0-dim input accepts -1 and 0)."""
    shape = draw(shapes())
    bound = max(len(shape), 1)
    dim = draw(st.sampled_from((bound, -bound - 1, bound + 2)))
    call = DrawnCall(function, dtype, {"input": draw(float_tensors(shape, dtype))}, {"dim": dim}, draw(forms()),
                     draw(seeds()))
    return with_defect(call, "DimensionError", "dim-out-of-range")


@st.composite
def empty_classes(draw, function, dtype):
    """An input with C = 0 classes (N >= 1 rows) and class-index targets."""
    n_rows = draw(st.integers(1, 3))
    call = DrawnCall(function, dtype, {"input": np.zeros((n_rows, 0)), "target": np.zeros(n_rows, dtype=np.int64)},
                     {}, draw(forms()), draw(seeds()))
    return with_defect(call, "ShapeMismatchError", "no-classes")


@st.composite
def integer_inputs(draw, function, dtype):
    """An int64 input: the functions are defined on floating inputs only."""
    call = draw(valid_calls(function, dtype).filter(lambda c: c.arrays["input"].size > 0))
    values = draw(st.lists(st.integers(-3, 3), min_size=call.arrays["input"].size,
                           max_size=call.arrays["input"].size))
    integers = np.array(values, dtype=np.int64).reshape(call.arrays["input"].shape)
    return with_defect(call, "InputDtypeError", "integer-input", arrays={"input": integers})


@st.composite
def kl_shape_mismatches(draw, dtype):
    """kl_div with a target whose last side differs and cannot broadcast (torch broadcasts only size-1 sides)."""
    call = draw(kl_div_calls(dtype).filter(lambda c: c.arrays["input"].ndim >= 1 and c.arrays["input"].shape[-1] >= 2))
    shape = call.arrays["input"].shape[:-1] + (call.arrays["input"].shape[-1] + 1,)
    target = draw(float_tensors(shape, dtype, elements=moderate_values().map(abs)))
    return with_defect(call, "ShapeMismatchError", "shape-mismatch", arrays={"target": target})


def defect_strategies(function, dtype):
    """{defect name: strategy} of the defects that apply to ``function``."""
    common = {"integer-input": integer_inputs(function, dtype)}
    if function in ("softmax", "log_softmax"):
        return {"dim-out-of-range": bad_dims(function, dtype), **common}
    if function == "kl_div":
        return {"shape-mismatch": kl_shape_mismatches(dtype), "unknown-reduction": unknown_reductions(function, dtype),
                "legacy-not-bool": legacy_non_bool(function, dtype), **common}
    defects = {"target-out-of-range": out_of_range_targets(function, dtype),
               "batch-mismatch": batch_mismatches(function, dtype), "weight-size": wrong_weights(function, dtype),
               "target-dtype": wrong_target_dtypes(function, dtype),
               "unknown-reduction": unknown_reductions(function, dtype), "no-classes": empty_classes(function, dtype),
               "legacy-not-bool": legacy_non_bool(function, dtype), **common}
    if function == "cross_entropy":
        defects.update({"label-smoothing-range": smoothing_out_of_range(dtype),
                        "ignore-index-with-probabilities": ignore_index_with_probabilities(dtype)})
    return defects


def invalid_calls(function, dtype):
    """Calls of ``function`` that the documentation rules out, each expecting the oracle's typed error."""
    return st.one_of(list(defect_strategies(function, dtype).values()))
