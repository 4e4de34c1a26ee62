"""linear_cross_entropy: ``F.linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None,
reduction='mean', ignore_index=None, label_smoothing=0.0)`` (torch >= 2.13), documented as
``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``: the loss of a fused linear
cross-entropy kernel, which never materialises the logits. input (H) or (N, H); linear_weight (C, H) or
(C, d1, ..., dK, H); targets as cross_entropy's for the logits' shape. The extended contract of fused kernels
(softcap, z_loss_scale, return_outputs) applies as to cross_entropy (docs/extensions.md)."""
import numpy as np

from . import FunctionSpec, Tensor, register
from .cross_entropy import EXTENSION_KEYWORDS, OUTPUTS, _axes as cross_entropy_axes, _features
from .nll_loss import LABELS, WEIGHT

INPUT = Tensor("input", stream=0)
LINEAR_WEIGHT = Tensor("linear_weight", stream=3, batched=False)
LINEAR_BIAS = Tensor("linear_bias", positional=False, required=False, stream=4, default_shape="classes",
                     batched=False)


def logits_shape(input_shape, weight_shape):
    """The shape of linear(input, linear_weight): (C,) for an (H) input, else (N, C, d1, ..., dK)."""
    outputs = tuple(weight_shape[:-1])
    return outputs if len(input_shape) == 1 else (input_shape[0],) + outputs


def reference_shape(arrays):
    """The shape the other tensors derive theirs from (targets, class weights, bias): the logits'."""
    if "linear_weight" not in arrays:
        return arrays["input"].shape
    return logits_shape(arrays["input"].shape, arrays["linear_weight"].shape)


def _axes(kwargs, arrays):
    logits = {**arrays, "input": np.broadcast_to(np.float64(0), reference_shape(arrays))}  # a view: no N x V array
    resolved = dict(kwargs, ignore_index=-100 if kwargs.get("ignore_index") is None else kwargs["ignore_index"])
    return dict(cross_entropy_axes(resolved, logits), bias="bias" if "linear_bias" in arrays else "none")


def _probe():
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]])
    w = np.array([[0.25, 0.5, -1.0], [1.0, -0.5, 0.0], [0.0, 2.0, 0.5], [-1.0, 0.0, 1.0]])
    return {"input": x, "linear_weight": w, "target": np.array([0, 3])}, {}, np.array(1.0)


def _examples(rng):
    x, w = rng.normal(size=(3, 8)), rng.normal(size=(6, 8)) / 3
    return [((x, w, np.array([1, 5, -100])), {"linear_bias": rng.normal(size=6), "label_smoothing": 0.1})]


def _no_generated_cases(row):
    raise ValueError("linear_cross_entropy has no generated covering cases: its cases are written "
                     "(cases/linear_cross_entropy.yaml)")


register(FunctionSpec(
    "linear_cross_entropy", tensors=(INPUT, LINEAR_WEIGHT, Tensor("target", stream=1), LINEAR_BIAS, WEIGHT),
    keywords={"reduction": "mean", "ignore_index": None, "label_smoothing": 0.0, **EXTENSION_KEYWORDS},
    module="LinearCrossEntropyLoss", kind="linear", oracle="linear_cross_entropy", derive_axes=_axes,
    build_case=_no_generated_cases, probe=_probe, derive_features=_features,
    feature_names=("label_smoothing", "probability_targets"), outputs=OUTPUTS, reductions=("none", "mean", "sum"),
    labels=LABELS, examples=_examples, reference_shape=reference_shape))
