"""nll_loss: ``F.nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
reduction='mean')``, input (C), (N, C) or (N, C, d1, ..., dK) of log-probabilities, int64 class-index targets.
The class-index losses (this and cross_entropy) share their tensors, keywords, axes and case builder."""
import numpy as np

from . import FunctionSpec, Tensor, register
from .features import SHAPES, WEIGHTS, loss_axes

LEGACY = {"size_average": None, "reduce": None, "reduction": "mean"}
INPUT = Tensor("input", stream=0)
WEIGHT = Tensor("weight", positional=False, required=False, differentiable=False, stream=2,
                default_shape="classes", batched=False)
AXES = {"shape": ("1-dim", "2-dim", "k-dim"), "reduction": ("none", "mean", "sum"),
        "weight": ("none", "positive", "zeros", "negative"), "ignore_index": ("none", "ignored", "class")}
LABELS = {"size_average": "sa=", "reduce": "re=", "ignore_index": "ii="}


def build_loss_case(row, log_probabilities):
    """(inputs, kwargs) of a covering case of a class-index loss with the axis values of ``row``."""
    inputs = {"input": {"shape": SHAPES[row["shape"]], "dist": "normal", "scale": 2}}
    kwargs = {"reduction": row["reduction"]}
    if log_probabilities:
        inputs["input"]["transform"] = "log_softmax"
    if row.get("target") == "probabilities":
        inputs["target"] = {"kind": "probabilities"}
    else:
        inputs["target"] = {"kind": "index", **({"ignore": 0.5} if row["ignore_index"] == "ignored" else {})}
        if row["ignore_index"] == "class":
            kwargs["ignore_index"] = 1
    if row["weight"] != "none":
        inputs["weight"] = dict(WEIGHTS[row["weight"]])
    return inputs, kwargs


def loss_probe():
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]])
    return {"input": x, "target": np.array([0, 2])}, {}, np.array(1.0)


def _examples(rng):
    log_probs = np.log(rng.dirichlet(np.ones(5), size=4))
    return [((log_probs, np.array([1, 0, 4, -100])), {"weight": rng.uniform(0.5, 2.0, size=5)})]


register(FunctionSpec(
    "nll_loss", tensors=(INPUT, Tensor("target", differentiable=False, stream=1), WEIGHT),
    keywords={"size_average": None, "ignore_index": -100, "reduce": None, "reduction": "mean"}, module="NLLLoss",
    kind="loss", oracle="nll_loss", derive_axes=loss_axes, build_case=lambda row: build_loss_case(row, True),
    probe=loss_probe, outputs=("loss",), reductions=("none", "mean", "sum"), axes=AXES, labels=LABELS,
    examples=_examples))
