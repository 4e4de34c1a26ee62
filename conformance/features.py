"""What a case exercises, derived from its function, form, keyword arguments, dtype and the inputs themselves
(never tagged by hand): the parameter *axes* that pairwise coverage counts (docs/case-format.md), and the
*features* a backend must support to run it (docs/backends.md, "Capabilities").

Axes map to one value each, e.g. {"reduction": "mean", "weight": "negative", "shape": "k-dim"}; features are
names such as "weight", "label_smoothing", "probability_targets", "shape:k-dim". The features of torch's API
conventions (TORCH_API) are part of a backend's contract only when it declares the torch API.
"""
import numpy as np

from .layout import class_dim

LOSSES = ("nll_loss", "cross_entropy")
SOFTMAXES = ("softmax", "log_softmax")
# torch's API conventions, beside the documented semantics of the losses (docs/backends.md, "Conventions"): the
# module classes, the legacy size_average/reduce, the implicit softmax dim, which target dtypes and shapes are
# accepted, the exact weight shape, the 'elementwise_mean' alias, broadcasting, the type of dim. A backend is judged
# on them only when it takes torch's conventions as its contract (Capabilities.conventions == "torch").
TORCH_API = ("module_form", "legacy_reduction", "implicit_dim", "uint8_target", "dim_of_0_dim", "target_dtype",
             "weight_shape", "target_shape_1", "reduction_alias", "broadcast", "dim_type")
FEATURES = TORCH_API + (
    "shape:0-dim", "shape:1-dim", "shape:k-dim", "empty", "nonfinite_input", "weight", "ignore_index",
    "ignore_index_class", "label_smoothing", "probability_targets", "log_target",
    "reduction:none", "reduction:mean", "reduction:sum", "reduction:batchmean")
AXES = {  # the axes of each function, with every value they take
    "common": {"dtype": ("float64", "float32", "float16", "bfloat16"),
               "grad_output": ("random", "one", "zero", "negative", "none")},
    "softmax": {"shape": ("0-dim", "1-dim", "2-dim", "k-dim"), "dim": ("explicit", "implicit")},
    "nll_loss": {"shape": ("1-dim", "2-dim", "k-dim"), "reduction": ("none", "mean", "sum"),
                 "weight": ("none", "positive", "zeros", "negative"),
                 "ignore_index": ("none", "ignored", "class")},
    "cross_entropy": {"shape": ("1-dim", "2-dim", "k-dim"), "reduction": ("none", "mean", "sum"),
                      "weight": ("none", "positive", "zeros", "negative"),
                      "ignore_index": ("none", "ignored", "class", "n/a"),
                      "label_smoothing": ("0", "partial", "1"), "target": ("index", "probabilities")},
    "kl_div": {"shape": ("0-dim", "1-dim", "2-dim", "k-dim"), "reduction": ("none", "mean", "sum", "batchmean"),
               "target": ("probabilities", "log-probabilities")},
}
AXES["log_softmax"] = AXES["softmax"]


def function_axes(function):
    """{axis: values} of one function: its own axes and the common ones."""
    return {**AXES[function], **AXES["common"]}


def _shape_kind(ndim):
    return {0: "0-dim", 1: "1-dim", 2: "2-dim"}.get(ndim, "k-dim")


def _weight_kind(weight):
    if weight is None:
        return "none"
    if np.any(weight < 0):
        return "negative"
    return "zeros" if np.any(weight == 0) else "positive"


def _reduction(kwargs):
    from .tolerances import effective_reduction

    return effective_reduction(kwargs)


def _smoothing_kind(value):
    try:
        value = float(value)
    except (TypeError, ValueError):  # an invalid value (an error case) smooths in some way
        return "partial"
    return "0" if not value > 0 else "1" if value == 1 else "partial"


def _ignore_kind(arrays, kwargs, n_classes):
    ignore_index = kwargs.get("ignore_index", -100)
    if isinstance(ignore_index, (int, np.integer)) and not isinstance(ignore_index, bool) \
            and 0 <= ignore_index < n_classes:
        return "class"
    return "ignored" if np.any(arrays["target"] == ignore_index) else "none"


def _loss_axes(function, arrays, kwargs):
    x, target = arrays["input"], arrays["target"]
    probabilities = target.shape == x.shape and x.ndim > 0
    n_classes = x.shape[class_dim(x.ndim)] if x.ndim else 0
    axes = {"shape": _shape_kind(x.ndim), "reduction": _reduction(kwargs),
            "weight": _weight_kind(arrays.get("weight"))}
    axes["ignore_index"] = "n/a" if probabilities else _ignore_kind(arrays, kwargs, n_classes)
    if function == "cross_entropy":
        axes["label_smoothing"] = _smoothing_kind(kwargs.get("label_smoothing", 0.0))
        axes["target"] = "probabilities" if probabilities else "index"
    return axes


def case_axes(case, arrays, dtype):
    """{axis: value} of a case in a dtype, from its (rounded) input arrays."""
    axes = {"dtype": dtype, "grad_output": case.grad_output if case.grad else "none"}
    x = arrays["input"]
    if case.function in SOFTMAXES:
        axes.update(shape=_shape_kind(x.ndim), dim="implicit" if case.kwargs.get("dim") is None else "explicit")
    elif case.function in LOSSES:
        axes.update(_loss_axes(case.function, arrays, case.kwargs))
    else:
        axes.update(shape=_shape_kind(x.ndim), reduction=_reduction(case.kwargs),
                    target="log-probabilities" if case.kwargs.get("log_target") else "probabilities")
    return axes


def _torch_api_features(case, arrays):
    kwargs = case.kwargs
    found = set()
    if case.form == "module":
        found.add("module_form")
    if kwargs.get("size_average") is not None or kwargs.get("reduce") is not None:
        found.add("legacy_reduction")
    if case.function in SOFTMAXES and kwargs.get("dim", None) is None:
        found.add("implicit_dim")
    if case.function in SOFTMAXES and arrays["input"].ndim == 0:
        found.add("dim_of_0_dim")
    found |= _target_conventions(case, arrays)
    if kwargs.get("reduction") == "elementwise_mean":
        found.add("reduction_alias")
    dim = kwargs.get("dim")
    if case.function in SOFTMAXES and dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)):
        found.add("dim_type")
    return found


def _target_conventions(case, arrays):
    """The target and weight conventions a case relies on: dtypes other than int64 class indices or floating
    probabilities, a (1,) target of an unbatched input, a weight of C elements in another shape, broadcasting."""
    x, target, weight, found = arrays["input"], arrays.get("target"), arrays.get("weight"), set()
    if target is None:
        return found
    if case.function == "kl_div":
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


def required_features(case, arrays, dtype):
    """The features (names of FEATURES) a backend needs to run this case in this dtype."""
    axes = case_axes(case, arrays, dtype)
    found = _torch_api_features(case, arrays)
    if axes["shape"] in ("0-dim", "k-dim") or (axes["shape"] == "1-dim" and case.function in LOSSES):
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
    if axes.get("label_smoothing", "0") != "0":
        found.add("label_smoothing")
    if axes.get("target") == "probabilities" and case.function == "cross_entropy":
        found.add("probability_targets")
    if axes.get("target") == "log-probabilities":
        found.add("log_target")
    if axes.get("reduction") in ("none", "mean", "sum", "batchmean"):
        found.add(f"reduction:{axes['reduction']}")
    return frozenset(found)
