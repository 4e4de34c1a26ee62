"""ONNX Runtime (CPU execution provider) as a backend: ``pip install "loss-conformance[onnxruntime]"``,
``--backend onnxruntime``. Forward only.

Each call runs a one-node model of a standard ONNX operator, built with the onnx package: Softmax, LogSoftmax
(opset-13 semantics), SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss. What ONNX does not have is declared,
not emulated: no KL divergence operator, no label smoothing, no probability targets, scores of shape (N, C) or
(N, C, d1, ...) only, no bfloat16 kernels on the CPU, and no gradients in ONNX Runtime's inference build.
In that build neither loss has a kernel of its own: ORT runs the operators' ONNX function bodies (Reshape,
LogSoftmax, GatherElements, ReduceSum...), so their messages name those nodes.
"""
from . import Capabilities, Outcome, Unsupported, failure
from ._adapter import cpu_only, float64, import_framework, option

OPSET = 18  # every operator used here has had its current semantics since opset 13
OPERATORS = {"softmax": "Softmax", "log_softmax": "LogSoftmax", "cross_entropy": "SoftmaxCrossEntropyLoss",
             "nll_loss": "NegativeLogLikelihoodLoss"}


class OnnxRuntimeBackend:
    name = "onnxruntime"
    capabilities = Capabilities(
        functions=("softmax", "log_softmax", "nll_loss", "cross_entropy"),
        dtypes=("float64", "float32", "float16"),  # bfloat16: no CPU kernel (ReduceMax, the loss bodies)
        unsupported=frozenset({"label_smoothing", "probability_targets", "shape:1-dim"}),
        api="array", differentiable=())

    def __init__(self, device="cpu"):
        cpu_only(self.name, device)
        self._onnx, self._ort = import_framework(("onnx", "onnxruntime"), "onnxruntime")
        tensor = self._onnx.TensorProto
        self._element = {"float64": tensor.DOUBLE, "float32": tensor.FLOAT, "float16": tensor.FLOAT16}
        # Targets go in with their own type, so that ONNX's type checks (int32 and int64 are its Tind) decide.
        self._index = {"int64": tensor.INT64, "int32": tensor.INT32, "uint8": tensor.UINT8, "bool": tensor.BOOL,
                       "float64": tensor.DOUBLE, "float32": tensor.FLOAT}
        self._sessions = {}
        self._options = self._ort.SessionOptions()
        self._options.intra_op_num_threads = self._options.inter_op_num_threads = 1  # the runner's workers share
        self._options.log_severity_level = 3  # a rejected model or a failing kernel is a result: keep ORT's
        self._ort.set_default_logger_severity(3)  # error log (of the session and of the run) off stderr

    def describe(self):
        return {"name": self.name, "framework": "onnxruntime", "version": self._ort.__version__,
                "onnx": self._onnx.__version__, "opset": OPSET, "device": "cpu",
                "providers": ["CPUExecutionProvider"]}

    def _signature(self, call):
        """(operator attributes, [(input name, element type)]) of the model for this call."""
        element = self._element[call.dtype]
        if call.function in ("softmax", "log_softmax"):
            return {"axis": call.kwargs["dim"]}, [("input", element)]  # a non-int dim is ONNX's to reject
        # ONNX ignores no target unless ignore_index is given: torch's default -100 is passed explicitly.
        attributes = {"reduction": option(call.kwargs, "reduction"),
                      "ignore_index": option(call.kwargs, "ignore_index")}
        target = call.arrays["target"].dtype.name
        inputs = [("input", element), ("target", self._index.get(target, self._onnx.TensorProto.INT64))]
        if "weight" in call.arrays:
            inputs.append(("weight", element))
        return attributes, inputs

    def _session(self, call):
        attributes, inputs = self._signature(call)
        key = (call.function, call.dtype, tuple(inputs), repr(sorted(attributes.items())))  # repr: 1 != 1.0
        if key not in self._sessions:
            helper = self._onnx.helper
            node = helper.make_node(OPERATORS[call.function], [n for n, _ in inputs], ["output"], **attributes)
            graph = helper.make_graph(
                [node], call.function, [helper.make_tensor_value_info(n, t, None) for n, t in inputs],
                [helper.make_tensor_value_info("output", self._element[call.dtype], None)])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
            self._sessions[key] = self._ort.InferenceSession(model.SerializeToString(), self._options,
                                                             providers=["CPUExecutionProvider"])
        return self._sessions[key]

    def run(self, call):
        smoothing = option(call.kwargs, "label_smoothing")
        if smoothing != 0:  # also an invalid -0.1 or NaN, which the features do not count as smoothing
            raise Unsupported(f"SoftmaxCrossEntropyLoss has no label smoothing (label_smoothing={smoothing!r})")
        # Float arrays hold values of the dtype already (the cast is exact); a target goes in as it is.
        feed = {name: array.astype(call.dtype) if name != "target" and array.dtype.kind == "f" else array
                for name, array in call.arrays.items()}
        outcome = Outcome()
        try:
            value = self._session(call).run(["output"], feed)[0]
        except Exception as error:  # noqa: BLE001 -- a model ONNX rejects or a kernel that fails: a result
            outcome.error = failure(error)
            return outcome
        outcome.value, outcome.dtype = float64(value), value.dtype.name
        return outcome
