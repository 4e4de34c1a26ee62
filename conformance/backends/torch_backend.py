"""The torch backends: eager torch.nn.functional, torch.compile, and any namespace of compatible callables.

A namespace (a module or object with ``cross_entropy``, ``nll_loss``, ``kl_div``, ``softmax``, ``log_softmax``
taking torch tensors, like torch.nn.functional) is how a kernel author plugs in a Triton or custom kernel; it may
declare ``SUPPORTED_DTYPES`` (names such as "float32"), otherwise each dtype is probed once with a tiny call.
"""
import warnings

import numpy as np

from . import Call, Outcome

MODULE_CLASSES = {"softmax": "Softmax", "log_softmax": "LogSoftmax", "nll_loss": "NLLLoss",
                  "cross_entropy": "CrossEntropyLoss", "kl_div": "KLDivLoss"}
UNSUPPORTED_PHRASES = ("not implemented for", "not supported", "unsupported dtype")


def _probe_call(function, dtype):
    """A tiny valid call of the function, used to find out whether a dtype is supported at all."""
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]])
    if function in ("softmax", "log_softmax"):
        return Call(function, dtype, {"input": x}, {"dim": 1}, grad_output=np.ones_like(x), grad_wrt=("input",))
    target = {"kl_div": np.full_like(x, 1 / 3)}.get(function, np.array([0, 2]))
    return Call(function, dtype, {"input": x, "target": target}, {"reduction": "sum"}, grad_output=np.array(1.0),
                grad_wrt=("input",))


class TorchBackend:
    """Backend over torch tensors: functional (or module) calls, then torch.autograd for the gradients."""

    def __init__(self, namespace=None, device="cpu", compile=False, name="torch"):
        import torch
        import torch.nn.functional

        self.torch = torch
        self.namespace = torch.nn.functional if namespace is None else namespace
        self.is_torch_functional = namespace is None
        self.device, self.compile, self.name = device, compile, name
        self._compiled, self._dtype_support = {}, {}

    def describe(self):
        torch = self.torch
        description = {"name": self.name, "framework": "torch", "version": torch.__version__, "device": self.device,
                       "namespace": getattr(self.namespace, "__name__", type(self.namespace).__name__),
                       "compile": self.compile}
        if self.device.startswith("cuda") and torch.cuda.is_available():
            description["device_name"] = torch.cuda.get_device_name(self.device)
            description["cuda"] = torch.version.cuda
        return description

    def _device_problem(self):
        torch = self.torch
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            return "CUDA is not available on this machine (torch.cuda.is_available() is False)"
        if self.device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            return "MPS is not available on this machine"
        return None

    def supports(self, function, dtype, form):
        problem = self._device_problem()
        if problem:
            return problem
        if form == "module" and not self.is_torch_functional and not hasattr(self.namespace, MODULE_CLASSES[function]):
            return f"{self.name} offers no module class {MODULE_CLASSES[function]} for the module form"
        if not callable(getattr(self.namespace, function, None)):
            return f"{self.name} offers no function {function!r}"
        declared = getattr(self.namespace, "SUPPORTED_DTYPES", None)
        if declared is not None:  # declared support is taken as is: no probe call
            return None if dtype in declared else f"{self.name} declares SUPPORTED_DTYPES without {dtype}"
        key = (function, dtype)
        if key not in self._dtype_support:
            outcome = self.run(_probe_call(function, dtype))
            failure = outcome.error or outcome.grad_error
            unsupported = failure and (failure[0] == "NotImplementedError"
                                       or any(p in failure[1].lower() for p in UNSUPPORTED_PHRASES))
            self._dtype_support[key] = (f"{self.name} does not support {dtype}: {failure[1][:200]}"
                                        if unsupported else None)
        return self._dtype_support[key]

    def _tensor(self, array, dtype, requires_grad=False):
        torch = self.torch
        if array.dtype.kind == "f":
            tensor = torch.tensor(array, dtype=torch.float64).to(getattr(torch, dtype))
        else:
            tensor = torch.from_numpy(np.array(array))
        tensor = tensor.to(self.device)
        return tensor.requires_grad_(True) if requires_grad else tensor

    def _callable(self, function, form, kwargs, weight):
        if form == "module":
            module_class = getattr(self.torch.nn if self.is_torch_functional else self.namespace,
                                   MODULE_CLASSES[function])
            module = module_class(**kwargs) if weight is None else module_class(weight=weight, **kwargs)
            return lambda *tensors: module(*tensors)
        target = getattr(self.namespace, function)
        if self.compile:
            target = self._compiled.setdefault(function, self.torch.compile(target))
        extra = {} if weight is None else {"weight": weight}
        return lambda *tensors: target(*tensors, **extra, **kwargs)

    def run(self, call):
        torch = self.torch
        tensors = {name: self._tensor(array, call.dtype, name in call.grad_wrt and array.dtype.kind == "f")
                   for name, array in call.arrays.items()}
        positional = [tensors["input"]] + ([tensors["target"]] if "target" in tensors else [])
        outcome = Outcome()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # legacy size_average/reduce, implicit dim, batchmean advice
                result = self._callable(call.function, call.form, call.kwargs, tensors.get("weight"))(*positional)
            if not isinstance(result, torch.Tensor):
                raise TypeError(f"returned {type(result).__name__}, not a torch.Tensor")
        except Exception as error:  # noqa: BLE001 -- the implementation under test failed: a result, not a crash
            outcome.error = (type(error).__name__, str(error))
            return outcome
        outcome.value = result.detach().to("cpu", torch.float64).numpy()
        outcome.dtype = str(result.dtype).removeprefix("torch.")
        if call.grad_output is not None:
            self._backward(call, tensors, result, outcome)
        return outcome

    def _backward(self, call, tensors, result, outcome):
        torch = self.torch
        wrt = [name for name in call.grad_wrt if tensors[name].requires_grad]
        try:
            grad_output = self._tensor(call.grad_output, call.dtype).to(result.dtype).reshape(result.shape)
            grads = torch.autograd.grad(result, [tensors[n] for n in wrt], grad_output, allow_unused=True)
        except Exception as error:  # noqa: BLE001 -- any failure of the backward is a result
            outcome.grad_error = (type(error).__name__, str(error))
            return
        for name, grad in zip(wrt, grads):
            grad = torch.zeros_like(tensors[name]) if grad is None else grad  # unused: the gradient is zero
            outcome.grads[name] = grad.detach().to("cpu", torch.float64).numpy()
            outcome.grad_dtypes[name] = str(grad.dtype).removeprefix("torch.")
