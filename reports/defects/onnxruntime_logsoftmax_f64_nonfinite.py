"""ONNX Runtime CPU: LogSoftmax on float64 rows that hold NaN or +inf (opset 18, axis=-1).

The ONNX spec defines LogSoftmax(x) = x - log(sum(exp(x))); a row with NaN has no value (NaN), and a row with
+inf is inf - inf = NaN. Reference: numpy in float64 (x - max - log(sum(exp(x - max)))), which propagates NaN.
"""
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

ort.set_default_logger_severity(3)  # the failures are printed below; keep ORT's own log quiet


def session(op, elem):
    node = helper.make_node(op, ["x"], ["y"], axis=-1)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", elem, None)],
                              [helper.make_tensor_value_info("y", elem, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


rows = np.array([[1.0, np.nan, 2.0, 3.0],
                 [1.0, np.inf, 2.0, 3.0],
                 [1.0, 0.5, 2.0, 3.0]])
with np.errstate(invalid="ignore"):
    m = rows.max(axis=-1, keepdims=True)
    reference = rows - m - np.log(np.exp(rows - m).sum(axis=-1, keepdims=True))
print("onnxruntime", ort.__version__)
print("reference (numpy float64):\n", reference)
for op in ("LogSoftmax", "Softmax"):
    for name, elem, dt in (("float64", TensorProto.DOUBLE, np.float64), ("float32", TensorProto.FLOAT, np.float32)):
        print(f"ORT {op} {name}:\n", session(op, elem).run(None, {"x": rows.astype(dt)})[0])
