"""PaddlePaddle (CPU) as a backend: ``pip install "loss-conformance[paddle]"``, ``--backend paddle``.

paddle.nn.functional's softmax, log_softmax, cross_entropy (soft_label=True for probability targets, axis=1 for
(N, C, d1, ...) inputs, 0 for an unbatched (C) one), nll_loss and kl_div, gradients by paddle.grad. Paddle
registers only float64 and float32 CPU kernels for these ("The kernel with key (CPU, ..., float16) of kernel
softmax is not registered"), its nll_loss takes no unbatched (C) input ("Expected 2 or more dimensions"), and it
does not differentiate the target of kl_div or of soft-label cross_entropy (paddle.grad returns None), so the
backend declares input gradients only.
"""
import warnings

from . import Capabilities, Outcome, Unsupported, failure
from .. import spec
from ._adapter import class_axis, cpu_only, float64, import_framework, option, wrt_floats


def _paddle_dtype(dtype):
    return str(dtype).removeprefix("paddle.")


def _arguments(call):
    """The keyword arguments of the paddle.nn.functional call, in paddle's names."""
    kwargs = call.kwargs
    if call.function in ("softmax", "log_softmax"):
        return {"axis": kwargs["dim"]}
    out = {"reduction": option(kwargs, "reduction")}
    if call.function == "kl_div":
        out["log_target"] = option(kwargs, "log_target")
        return out
    out["ignore_index"] = option(kwargs, "ignore_index")
    if call.function == "cross_entropy":
        out.update(axis=class_axis(call.arrays["input"]), label_smoothing=option(kwargs, "label_smoothing"),
                   soft_label="probability_targets" in call.features)
    return out


def _squeeze_soft_label_axis(call, result, arguments):
    """paddle documents cross_entropy's 'none' result with soft labels (and label smoothing, which turns into
    soft labels) as [N, ..., 1], keeping the class axis with size 1; the loss itself is that array squeezed."""
    axis = arguments.get("axis")
    if (call.function == "cross_entropy" and arguments["reduction"] == "none"
            and result.ndim == call.arrays["input"].ndim and result.shape[axis] == 1):
        return result.squeeze(axis)
    return result


class PaddleBackend:
    name = "paddle"
    capabilities = Capabilities(
        functions=("softmax", "log_softmax", "nll_loss", "cross_entropy", "kl_div"),
        dtypes=("float64", "float32"), unsupported=frozenset(), api="array", differentiable=("input",))

    def __init__(self, device="cpu"):
        cpu_only(self.name, device)
        with warnings.catch_warnings():  # paddle warns about OMP_NUM_THREADS on every import
            warnings.simplefilter("ignore")
            self._paddle, self._functional = import_framework(("paddle", "paddle.nn.functional"), "paddle")
        self._paddle.set_device("cpu")

    def describe(self):
        paddle = self._paddle
        return {"name": self.name, "framework": "paddle", "version": paddle.__version__,
                "commit": paddle.version.commit, "device": "cpu"}

    def _tensor(self, array, dtype, differentiable):
        tensor = self._paddle.to_tensor(array.astype(dtype) if array.dtype.kind == "f" else array)
        tensor.stop_gradient = not differentiable
        return tensor

    def run(self, call):
        if call.function == "nll_loss" and call.arrays["input"].ndim < 2:
            raise Unsupported("paddle.nn.functional.nll_loss takes (N, C) or (N, C, d1, ...) inputs only")
        wrt = wrt_floats(call)
        tensors = {name: self._tensor(a, call.dtype, name in wrt) for name, a in call.arrays.items()}
        arguments = _arguments(call)
        positional, weight = spec.get(call.function).call_arguments(tensors)
        outcome = Outcome()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = getattr(self._functional, call.function)(*positional, **weight, **arguments)
        except Exception as error:  # noqa: BLE001 -- paddle's failure is a result
            outcome.error = failure(error)
            return outcome
        result = _squeeze_soft_label_axis(call, result, arguments)
        outcome.value, outcome.dtype = float64(result.numpy()), _paddle_dtype(result.dtype)
        if call.grad_output is not None:
            self._gradients(call, result, tensors, wrt, outcome)
        return outcome

    def _gradients(self, call, result, tensors, wrt, outcome):
        try:
            cotangent = self._paddle.to_tensor(call.grad_output.astype(call.dtype)).reshape(result.shape)
            grads = self._paddle.grad([result], [tensors[n] for n in wrt], [cotangent], allow_unused=True)
        except Exception as error:  # noqa: BLE001
            outcome.grad_error = failure(error)
            return
        for name, grad in zip(wrt, grads):
            if grad is not None:  # None: paddle did not differentiate it; reported as missing, never as zeros
                outcome.grads[name], outcome.grad_dtypes[name] = float64(grad.numpy()), _paddle_dtype(grad.dtype)
