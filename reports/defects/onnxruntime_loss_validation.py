"""ONNX Runtime CPU: SoftmaxCrossEntropyLoss / NegativeLogLikelihoodLoss accept inputs the ONNX spec rules out.

Spec (onnx/defs/math/defs.cc, SoftmaxCrossEntropyLoss / NegativeLogLikelihoodLoss): labels/target "... Each element
should be in range [0, C). If ignore_index is specified, it may have a value outside [0, C) and the target values
should either be in the range [0, C) or have the value ignore_index"; target shape (N) or (N, d1, ..., dk) for
scores (N, C, ...); reduction "none (no reduction), sum (sum the output), mean (weighted mean ...)".
Every call below should raise; the reference column says what a valid call would have to look like.
"""
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

ort.set_default_logger_severity(3)  # the failures are printed below; keep ORT's own log quiet


def run(op, x, y, w=None, **attrs):
    names = ["x", "y"] + (["w"] if w is not None else [])
    types = [TensorProto.DOUBLE, TensorProto.INT64, TensorProto.DOUBLE]
    node = helper.make_node(op, names, ["out"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, t, None) for n, t in zip(names, types)],
                              [helper.make_tensor_value_info("out", TensorProto.DOUBLE, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {"x": x, "y": y} | ({"w": w} if w is not None else {})
    try:
        return sess.run(None, feed)[0]
    except Exception as e:  # noqa: BLE001
        return f"raised {type(e).__name__}: {str(e).splitlines()[0][:120]}"


rng = np.random.default_rng(0)
x = rng.normal(size=(4, 6))
logp = x - np.log(np.exp(x).sum(1, keepdims=True))
print("onnxruntime", ort.__version__)
for op, inp in (("SoftmaxCrossEntropyLoss", x), ("NegativeLogLikelihoodLoss", logp)):
    print(f"--- {op}")
    y = np.array([0, -3, 2, 5])
    print("target -3 (not ignore_index=-100), sum:", run(op, inp, y, reduction="sum", ignore_index=-100),
          "| rows 0,2,3 alone:", run(op, inp[[0, 2, 3]], y[[0, 2, 3]], reduction="sum", ignore_index=-100))
    print("target -3, no ignore_index attr, sum:", run(op, inp, y, reduction="sum"))
    print("target 6 (== C), sum:", run(op, inp, np.array([0, 6, 2, 5]), reduction="sum"))
    print("target of 3 rows for 4 input rows, sum:", run(op, inp, np.array([0, 1, 2]), reduction="sum"),
          "| first 3 rows:", run(op, inp[:3], np.array([0, 1, 2]), reduction="sum"))
    print("target of 5 rows for 4 input rows, sum:", run(op, inp, np.array([0, 1, 2, 3, 4]), reduction="sum"))
    for red in ("avg", "Mean", "batchmean"):
        print(f"reduction={red!r}:", run(op, inp, np.array([0, 1, 2, 3]), reduction=red),
              "| mean:", run(op, inp, np.array([0, 1, 2, 3]), reduction="mean"))
    print("weight of 7 for C=6, sum:", run(op, inp, np.array([0, 1, 2, 3]), np.ones(7), reduction="sum"))
    print("(1, 1, 1, 1) input (C = 1) with a (1, 1) weight (the spec: a 1-D tensor of size C), sum:",
          run(op, np.full((1, 1, 1, 1), 0.5), np.zeros((1, 1, 1), np.int64), np.ones((1, 1)), reduction="sum"))
    print("weight of 5 for C=6, sum:", run(op, inp, np.array([0, 1, 2, 5]), np.ones(5), reduction="sum"))
    print("empty (0, 6, 2) input, sum:", run(op, np.zeros((0, 6, 2)), np.zeros((0, 2), np.int64), reduction="sum"),
          "| empty (0, 6):", run(op, np.zeros((0, 6)), np.zeros((0,), np.int64), reduction="sum"))
