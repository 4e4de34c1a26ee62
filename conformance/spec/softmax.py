"""softmax and log_softmax: ``F.softmax(input, dim=None, _stacklevel=3, dtype=None)``, along ``dim``
(torch's implicit rule when it is None: oracle.implicit_dim)."""
import numpy as np

from . import FunctionSpec, Tensor, register
from .features import SHAPES, shape_kind

AXES = {"shape": ("0-dim", "1-dim", "2-dim", "k-dim"), "dim": ("explicit", "implicit")}


def _axes(kwargs, arrays):
    return {"shape": shape_kind(arrays["input"].ndim), "dim": "implicit" if kwargs.get("dim") is None else "explicit"}


def _build_case(row):
    inputs = {"input": {"shape": SHAPES[row["shape"]], "dist": "normal", "scale": 2}}
    return inputs, {} if row["dim"] == "implicit" else {"dim": -1 if row["shape"] != "0-dim" else 0}


def _probe():
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]])
    return {"input": x}, {"dim": 1}, np.ones_like(x)


def _examples(rng):
    return [((rng.normal(size=(4, 5)),), {"dim": 1})]


for _name, _module in (("softmax", "Softmax"), ("log_softmax", "LogSoftmax")):
    register(FunctionSpec(
        _name, tensors=(Tensor("input", stream=0),), keywords={"dim": None}, module=_module, kind="softmax",
        oracle=_name, derive_axes=_axes, build_case=_build_case, probe=_probe, outputs=("output",), axes=AXES,
        labels={"dim": "dim="}, examples=_examples))
