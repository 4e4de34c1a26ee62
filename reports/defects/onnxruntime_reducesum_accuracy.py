"""ONNX Runtime CPU: ReduceSum accumulates in the input dtype along the reduced axis, so its error grows linearly
with the number of terms; NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss inherit it ('mean' and 'sum' are
ReduceSum in their ONNX function bodies). The suite: nll_loss/chunks-N=1000-mean-w=spread-ii=leading, float32,
25 u of an 8 u budget; cross_entropy/chunks-N=1000-mean-w=spread-*, 13.6 u in float32 and 13.2 u in float64.

1. ReduceSum of n copies of one float32 value (the exact sum is n * v): error in units of the last place (u),
   beside numpy's pairwise sum and a sequential loop (numpy.cumsum).
2. The weighted 'mean' of the suite's case shape: 1000 rows, C = 5, targets sorted by class, the first 400
   ignored, class weights 0.42, 6.07, 6.13, 0.96, 0.32: mean = sum w[y] * -x[n, y] / sum w[y] over kept rows.
"""
import math

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

ort.set_default_logger_severity(3)


def session(node, inputs, element):
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, t, None) for n, t in inputs],
                              [helper.make_tensor_value_info("out", element, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def ulps(got, exact):
    return abs(float(got) - exact) / abs(exact) / 2.0 ** -24


print("onnxruntime", ort.__version__)
reduce_sum = session(helper.make_node("ReduceSum", ["v"], ["out"], keepdims=0), [("v", TensorProto.FLOAT)],
                     TensorProto.FLOAT)
for n in (100, 1000, 4096, 100_000):
    v = np.full(n, 6.06772375, np.float32)
    exact = n * float(v[0])
    print(f"ReduceSum of {n:>6} x {float(v[0])}: ORT {ulps(reduce_sum.run(None, {'v': v})[0], exact):7.1f} u, "
          f"numpy pairwise {ulps(v.sum(), exact):5.1f} u, sequential loop {ulps(np.cumsum(v)[-1], exact):8.1f} u")

rng = np.random.default_rng(0)
logits = rng.normal(scale=2, size=(1000, 5))
logp = (logits - np.log(np.exp(logits).sum(1, keepdims=True))).astype(np.float32)
target = np.sort(rng.integers(0, 5, 1000))
target[:400] = -100
weight = np.array([0.42146459, 6.06772375, 6.12547493, 0.96082366, 0.31906956], np.float32)
nll = session(helper.make_node("NegativeLogLikelihoodLoss", ["x", "y", "w"], ["out"], reduction="mean",
                               ignore_index=-100),
              [("x", TensorProto.FLOAT), ("y", TensorProto.INT64), ("w", TensorProto.FLOAT)], TensorProto.FLOAT)
got = nll.run(None, {"x": logp, "y": target, "w": weight})[0]
kept = target != -100
exact = (math.fsum(-float(weight[t]) * float(logp[n, t]) for n, t in enumerate(target) if t != -100)
         / math.fsum(float(weight[t]) for t in target[kept]))
products = -weight[target[kept]] * logp[kept, target[kept]]
print(f"NegativeLogLikelihoodLoss float32 weighted mean of 600 kept rows: ORT {float(got)!r}, exact {exact!r}: "
      f"{ulps(got, exact):.1f} u; numpy float32 pairwise sums {ulps(products.sum() / weight[target[kept]].sum(), exact):.1f} u")
