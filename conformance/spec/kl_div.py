"""kl_div: ``F.kl_div(input, target, size_average=None, reduce=None, reduction='mean', log_target=False)``, the
pointwise y (log y - x) (or e^y (y - x) with log_target), a target of the input's shape."""
import numpy as np

from . import FunctionSpec, Tensor, register
from .features import SHAPES, effective_reduction, shape_kind

AXES = {"shape": ("0-dim", "1-dim", "2-dim", "k-dim"), "reduction": ("none", "mean", "sum", "batchmean"),
        "target": ("probabilities", "log-probabilities")}


def _axes(kwargs, arrays):
    return {"shape": shape_kind(arrays["input"].ndim), "reduction": effective_reduction(kwargs),
            "target": "log-probabilities" if kwargs.get("log_target") else "probabilities"}


def _build_case(row):
    log_target = row["target"] == "log-probabilities"
    inputs = {"input": {"shape": SHAPES[row["shape"]], "dist": "normal", "scale": 2, "transform": "log_softmax"},
              "target": {"kind": "log_probabilities" if log_target else "probabilities"}}
    return inputs, {"reduction": row["reduction"], **({"log_target": True} if log_target else {})}


def _probe():
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]])
    return {"input": x, "target": np.full_like(x, 1 / 3)}, {}, np.array(1.0)


def _examples(rng):
    log_probs, probabilities = np.log(rng.dirichlet(np.ones(5), size=4)), rng.dirichlet(np.ones(5), size=4)
    return [((log_probs, probabilities), {"reduction": "batchmean"}),
            ((log_probs, np.log(probabilities)), {"reduction": "sum", "log_target": True})]


register(FunctionSpec(
    "kl_div", tensors=(Tensor("input", stream=0), Tensor("target", stream=1)),
    keywords={"size_average": None, "reduce": None, "reduction": "mean", "log_target": False}, module="KLDivLoss",
    kind="pointwise", oracle="kl_div", derive_axes=_axes, build_case=_build_case, probe=_probe,
    derive_features=lambda axes: {"log_target"} if axes["target"] == "log-probabilities" else set(),
    feature_names=("log_target",), outputs=("loss",), reductions=("none", "mean", "sum", "batchmean"), axes=AXES,
    labels={"size_average": "sa=", "reduce": "re=", "log_target": "lt="}, examples=_examples))
