"""cross_entropy: ``F.cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
reduce=None, reduction='mean', label_smoothing=0.0)``: logits (C), (N, C) or (N, C, d1, ..., dK), targets of
int64 class indices or of class probabilities (a target of the input's shape); and the extended contract of fused
kernels (softcap, z_loss_scale, z_loss_weighting, return_outputs: docs/extensions.md)."""
import numpy as np

from . import FunctionSpec, Tensor, register
from .features import loss_axes, smoothing_kind
from .nll_loss import AXES as LOSS_AXES
from .nll_loss import INPUT, LABELS, WEIGHT, build_loss_case, loss_probe

SMOOTHING = {"0": 0.0, "partial": 0.1, "1": 1.0}
AXES = {**LOSS_AXES, "ignore_index": ("none", "ignored", "class", "n/a"), "label_smoothing": ("0", "partial", "1"),
        "target": ("index", "probabilities")}


def _axes(kwargs, arrays):
    x, target = arrays["input"], arrays["target"]
    probabilities = target.shape == x.shape and x.ndim > 0
    return dict(loss_axes(kwargs, arrays), label_smoothing=smoothing_kind(kwargs.get("label_smoothing", 0.0)),
                target="probabilities" if probabilities else "index")


def _features(axes):
    return ({"label_smoothing"} if axes["label_smoothing"] != "0" else set()) | \
        ({"probability_targets"} if axes["target"] == "probabilities" else set())


def _build_case(row):
    inputs, kwargs = build_loss_case(row, False)
    if SMOOTHING.get(row.get("label_smoothing", "0")):
        kwargs["label_smoothing"] = SMOOTHING[row["label_smoothing"]]
    return inputs, kwargs


def _examples(rng):
    logits, classes = rng.normal(size=(4, 5)), np.array([1, 0, 4, -100])
    probabilities, weight = rng.dirichlet(np.ones(5), size=4), rng.uniform(0.5, 2.0, size=5)
    return [((logits, classes), {}), ((logits, classes), {"weight": weight, "label_smoothing": 0.1}),
            ((logits, probabilities), {"reduction": "sum", "label_smoothing": 0.2})]


# The extended contract of fused kernels (docs/extensions.md), opt-in features torch.nn.functional does not offer.
EXTENSION_KEYWORDS = {"softcap": None, "z_loss_scale": 0.0, "z_loss_weighting": "count", "return_outputs": ()}
OUTPUTS = ("loss", "z_loss", "lse", "target_logprob", "entropy")

register(FunctionSpec(
    "cross_entropy", tensors=(INPUT, Tensor("target", stream=1), WEIGHT),
    keywords={"size_average": None, "ignore_index": -100, "reduce": None, "reduction": "mean",
              "label_smoothing": 0.0, **EXTENSION_KEYWORDS},
    module="CrossEntropyLoss", kind="loss", oracle="cross_entropy", derive_axes=_axes, build_case=_build_case,
    probe=loss_probe, derive_features=_features, feature_names=("label_smoothing", "probability_targets"),
    outputs=OUTPUTS, reductions=("none", "mean", "sum"), axes=AXES, labels={**LABELS, "label_smoothing": "ls="},
    examples=_examples))
