"""What a case exercises, derived from its function's record, form, keyword arguments, dtype and the inputs
themselves (never tagged by hand): the parameter *axes* that pairwise coverage counts (docs/case-format.md), and
the *features* a backend must support to run it (docs/backends.md, "Capabilities").

Axes map to one value each, e.g. {"reduction": "mean", "weight": "negative", "shape": "k-dim"}; features are
names such as "weight", "label_smoothing", "probability_targets", "shape:k-dim". Each record derives its own axes
and the features they imply; the rules all functions share are here: the common axes, the shape, weight, ignore
and smoothing kinds, the reduction in force, and torch's API conventions.
"""
import numpy as np

from . import get
from .classes import class_dim

# torch's API conventions, beside the documented semantics of the losses (docs/backends.md, "Conventions"): the
# module classes, the legacy size_average/reduce, the implicit softmax dim, which target dtypes and shapes are
# accepted, the exact weight shape, the 'elementwise_mean' alias, broadcasting, the type of dim. A backend is judged
# on them only when it takes torch's conventions as its contract (Capabilities.conventions == "torch").
TORCH_API = ("module_form", "legacy_reduction", "implicit_dim", "uint8_target", "dim_of_0_dim", "target_dtype",
             "weight_shape", "target_shape_1", "reduction_alias", "broadcast", "dim_type")
# Memory layouts a tensor may be handed over in (inputs/layouts.py); "layout:<name>" is the feature of a case that
# uses one. They are torch's notion: part of a torch-API backend's contract, not applicable to an array backend
# unless it declares that it takes strided arrays (Capabilities.supported).
LAYOUTS = ("contiguous", "transposed", "sliced", "sliced_rows", "offset", "row_padded", "batch_padded",
           "size1_stride", "channels_last", "expanded", "expanded_rows")
LAYOUT_FEATURES = tuple(f"layout:{name}" for name in LAYOUTS if name != "contiguous")
COMMON_FEATURES = ("shape:0-dim", "shape:1-dim", "shape:k-dim", "empty", "nonfinite_input", "weight", "ignore_index",
                   "ignore_index_class", "reduction:none", "reduction:mean", "reduction:sum", "reduction:batchmean")
# The extended contract of fused cross-entropy kernels (docs/extensions.md): softcapped logits, a z-loss, and the
# outputs beside the loss. torch.nn.functional offers none of them.
EXTENSION_OUTPUTS = ("z_loss", "lse", "target_logprob", "entropy")
EXTENSION_FEATURES = ("softcap", "z_loss") + tuple(f"output:{name}" for name in EXTENSION_OUTPUTS)
# Features a backend must declare it supports (Capabilities.supported) for their cases to run: the ones added after
# the first corpus, which an adapter written before them cannot express. Without the declaration their cases are
# unsupported, never passed by a backend that silently computes something else.
OPT_IN = EXTENSION_FEATURES
COMMON_AXES = {"dtype": ("float64", "float32", "float16", "bfloat16"),
               "grad_output": ("random", "one", "zero", "negative", "none")}
# The ingredients of generated covering cases (corpus/coverage.py), shared by the records' case builders.
SHAPES = {"0-dim": [], "1-dim": [5], "2-dim": [4, 5], "k-dim": [2, 5, 3]}
WEIGHTS = {"positive": {"dist": "uniform", "low": 0.25, "high": 2},
           "zeros": {"dist": "uniform", "low": 0.25, "high": 2, "zeros": 0.4},
           "negative": {"dist": "uniform", "low": 0.25, "high": 2, "negative": 0.4}}


def known_features(functions):
    """Every feature name a backend may declare for these functions: torch's conventions, the common ones, and
    those the records add."""
    return TORCH_API + COMMON_FEATURES + LAYOUT_FEATURES + OPT_IN + tuple(
        f for name in functions for f in get(name).feature_names)


def function_axes(function):
    """{axis: values} of one function: its own axes and the common ones."""
    return {**get(function).axes, **COMMON_AXES}


def effective_reduction(kwargs):
    """The reduction in force, resolved by the oracle's own rule (legacy size_average/reduce override it)."""
    from oracle import OracleError  # imported here: the command line's parser imports the spec, not the oracle
    from oracle._reduction import KL_REDUCTIONS, resolve_reduction

    try:
        return resolve_reduction(kwargs.get("reduction", "mean"), kwargs.get("size_average"), kwargs.get("reduce"),
                                 KL_REDUCTIONS)
    except OracleError:  # an invalid reduction (an error case): matched as written
        return kwargs.get("reduction")


def shape_kind(ndim):
    return {0: "0-dim", 1: "1-dim", 2: "2-dim"}.get(ndim, "k-dim")


def weight_kind(weight):
    if weight is None:
        return "none"
    if np.any(weight < 0):
        return "negative"
    return "zeros" if np.any(weight == 0) else "positive"


def smoothing_kind(value):
    try:
        value = float(value)
    except (TypeError, ValueError):  # an invalid value (an error case) smooths in some way
        return "partial"
    return "0" if not value > 0 else "1" if value == 1 else "partial"


def loss_axes(kwargs, arrays):
    """The axes of a class-index or probability loss: shape, reduction, weight and ignore_index kinds."""
    x, target = arrays["input"], arrays["target"]
    probabilities = target.shape == x.shape and x.ndim > 0
    n_classes = x.shape[class_dim(x.ndim)] if x.ndim else 0
    axes = {"shape": shape_kind(x.ndim), "reduction": effective_reduction(kwargs),
            "weight": weight_kind(arrays.get("weight"))}
    axes["ignore_index"] = "n/a" if probabilities else _ignore_kind(arrays, kwargs, n_classes)
    return axes


def _ignore_kind(arrays, kwargs, n_classes):
    ignore_index = kwargs.get("ignore_index", -100)
    if isinstance(ignore_index, (int, np.integer)) and not isinstance(ignore_index, bool) \
            and 0 <= ignore_index < n_classes:
        return "class"
    return "ignored" if np.any(arrays["target"] == ignore_index) else "none"


def case_axes(case, arrays, dtype):
    """{axis: value} of a case in a dtype, from its (rounded) input arrays."""
    axes = {"dtype": dtype, "grad_output": case.grad_output if case.grad else "none"}
    axes.update(get(case.function).derive_axes(case.kwargs, arrays))
    return axes


def _torch_api_features(case, arrays, record):
    kwargs = case.kwargs
    found = set()
    if case.form == "module":
        found.add("module_form")
    if kwargs.get("size_average") is not None or kwargs.get("reduce") is not None:
        found.add("legacy_reduction")
    if record.kind == "softmax":
        dim = kwargs.get("dim")
        if dim is None:
            found.add("implicit_dim")
        elif isinstance(dim, bool) or not isinstance(dim, int):
            found.add("dim_type")
        if arrays["input"].ndim == 0:
            found.add("dim_of_0_dim")
    if kwargs.get("reduction") == "elementwise_mean":
        found.add("reduction_alias")
    return found | _target_conventions(arrays, record)


def _target_conventions(arrays, record):
    """The target and weight conventions a case relies on: dtypes other than int64 class indices or floating
    probabilities, a (1,) target of an unbatched input, a weight of C elements in another shape, broadcasting."""
    x, target, weight, found = arrays["input"], arrays.get("target"), arrays.get("weight"), set()
    if target is None or record.kind == "linear":  # the linear form has no torch conventions of its own yet
        return found
    if record.kind != "loss":  # a pointwise loss: its target broadcasts or not
        if target.shape != x.shape and _broadcastable(x.shape, target.shape):
            found.add("broadcast")
        return found
    if target.dtype == np.uint8:
        found.add("uint8_target")
    probabilities = target.shape == x.shape and x.ndim > 0
    if (probabilities and target.dtype.kind != "f") or (not probabilities and target.dtype not in (np.int64,
                                                                                                 np.uint8)):
        found.add("target_dtype")
    if x.ndim == 1 and target.shape == (1,):
        found.add("target_shape_1")
    classes = x.shape[class_dim(x.ndim)] if x.ndim else 0
    if weight is not None and weight.size == classes and weight.shape != (classes,):
        found.add("weight_shape")
    return found


def _broadcastable(first, second):
    try:
        np.broadcast_shapes(first, second)
    except ValueError:
        return False
    return True


def case_layouts(case):
    """{tensor name: layout} of the tensors a case hands over in a layout other than contiguous; "grad_output" for
    the upstream gradient of a differentiable case."""
    layouts = {name: spec["layout"] for name, spec in case.inputs.items() if spec.get("layout", "contiguous")
               != "contiguous"}
    if case.grad and case.expect_error is None and case.grad_output_layout != "contiguous":
        layouts["grad_output"] = case.grad_output_layout
    return layouts


def extension_features(kwargs):
    """The features of the extended contract a call uses (docs/extensions.md)."""
    found = set()
    if kwargs.get("softcap") is not None:
        found.add("softcap")
    if kwargs.get("z_loss_scale", 0):
        found.add("z_loss")
    outputs = kwargs.get("return_outputs", ())
    if isinstance(outputs, (list, tuple)):
        found.update(f"output:{name}" for name in outputs if isinstance(name, str))
    return found


def required_features(case, arrays, dtype):
    """The features (names of known_features) a backend needs to run this case in this dtype."""
    record = get(case.function)
    axes = case_axes(case, arrays, dtype)
    found = _torch_api_features(case, arrays, record) | {f"layout:{name}" for name in case_layouts(case).values()} \
        | extension_features(case.kwargs)
    if axes["shape"] in ("0-dim", "k-dim") or (axes["shape"] == "1-dim" and record.kind == "loss"):
        found.add(f"shape:{axes['shape']}")
    if any(a.size == 0 for a in arrays.values()):
        found.add("empty")
    if any(a.dtype.kind == "f" and not np.all(np.isfinite(a)) for a in arrays.values()):
        found.add("nonfinite_input")
    if axes.get("weight", "none") != "none":
        found.add("weight")
    if axes.get("ignore_index") in ("ignored", "class"):
        found.add("ignore_index")
    if axes.get("ignore_index") == "class":
        found.add("ignore_index_class")
    if axes.get("reduction") in ("none", "mean", "sum", "batchmean"):
        found.add(f"reduction:{axes['reduction']}")
    return frozenset(found | set(record.derive_features(axes)))
