"""The torch backends: eager torch.nn.functional, torch.compile, and any namespace of compatible callables.

A namespace (a module or object with ``cross_entropy``, ``nll_loss``, ``kl_div``, ``softmax``, ``log_softmax``
taking torch tensors, like torch.nn.functional) is how a kernel author plugs in a Triton or custom kernel. It may
declare ``SUPPORTED_DTYPES`` (names such as "float32"; otherwise each dtype is probed once with a tiny call),
``UNSUPPORTED_FEATURES`` and ``SUPPORTED_FEATURES`` (names of conformance/spec/features.py: what it lacks, and the
opt-in features it offers), ``DIFFERENTIABLE`` (("input",) when targets
have no gradient), ``SUMMATION_ORDER`` (the order its sums take, to be judged by that order's bound),
``CONVENTIONS = "torch"`` (to be judged on torch's API conventions too, not only the documented semantics),
``IN_PLACE_GRADIENT = True`` (it writes the gradient into the logits), ``LOSS_DTYPE = "float32"`` (its losses
of float16/bfloat16 logits are float32) and ``DTYPE_ROUNDINGS`` (how many times it rounds to a 16-bit dtype); a
call that raises NotImplementedError is skipped as unsupported.
"""
import contextlib
import importlib.metadata
import logging
import os
import sys
import types
import warnings

import numpy as np

from . import Call, Capabilities, Outcome, failure
from .. import spec
from ..inputs.layouts import strided
from ..spec.features import EXTENSION_FEATURES, OPT_IN

UNSUPPORTED_PHRASES = ("not implemented for", "not supported", "unsupported dtype")
# autograd reaches every floating argument: input, target, and a linear layer's weight and bias
_DIFFERENTIABLE = ("input", "target", "linear_weight", "linear_bias")
TORCH_DTYPE_NAMES = {"float64": "double", "float32": "float", "float16": "half", "bfloat16": "bfloat16"}


def _names_the_dtype(message, dtype):
    """Whether a probe's error says the dtype is the problem ("not implemented for 'Half'", "float16 ...")."""
    text = message.lower()
    names = (dtype, TORCH_DTYPE_NAMES[dtype], f"'{TORCH_DTYPE_NAMES[dtype]}'")
    return any(phrase in text for phrase in UNSUPPORTED_PHRASES) and any(name in text for name in names) or \
        f"'{TORCH_DTYPE_NAMES[dtype]}'" in text or f" {dtype}" in f" {text}"


def _probe_call(function, dtype):
    """The record's tiny valid call of the function, used to find out whether a dtype is supported at all."""
    arrays, kwargs, grad_output = spec.get(function).probe()
    return Call(function, dtype, arrays, kwargs, grad_output=grad_output, grad_wrt=("input",))


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

    def _compiled_function(self, name, function):
        """torch.compile of a function, with shapes dynamic from the start; past dynamo's default of 8
        recompilations per function it would run the rest of the corpus eagerly without saying so.

        Compiled through a frame of its own (``_own_frame``): given a torch function, torch.compile wraps it in a
        frame whose code object every such wrapper shares (torch/_dynamo/external_utils.py, ``wrap_inline``), so
        dynamo's state for that code was shared by every function: once a compiled ``linear_cross_entropy``
        raised on a wrong bias shape, dynamo skipped that code, and every function compiled afterwards in the
        process ran eagerly without a word (docs/backends.md)."""
        config = self.torch._dynamo.config
        config.cache_size_limit = config.accumulated_cache_size_limit = 1 << 20
        if hasattr(config, "recompile_limit"):
            config.recompile_limit = config.accumulated_recompile_limit = 1 << 20
        if not os.environ.get("TORCH_LOGS"):
            # Fake-tensor propagation logs the full traceback of every error a case expects (a dim out of
            # range, a bad target) before re-raising it; the error reaches the check all the same.
            logging.getLogger("torch._subclasses.fake_tensor").setLevel(logging.CRITICAL)
        return self.torch.compile(_own_frame(name, function), dynamic=True)

    def _attempt_again(self, function):
        """After a compiled call raised: dynamo may have marked the function's frame to be skipped (run eagerly)
        from then on, so its next call must be compiled again. The mark is reset where this torch offers the
        setter (dynamo's own, as its skip_code uses it), which keeps the graphs compiled so far: throwing the
        compiled function away instead cost 13 s of a 93 s warm run of the corpus, every graph of the function
        traced again."""
        compiled = self._compiled.get(function)
        if compiled is None:  # eager torch, or not compiled yet: nothing to reset (and dynamo not imported)
            return
        reset = _skip_reset()
        if reset is None:  # another torch: a new frame, compiled from scratch
            del self._compiled[function]
        else:
            reset(compiled._torchdynamo_orig_callable.__code__)

    @property
    def capabilities(self):
        declared = getattr(self.namespace, "SUPPORTED_DTYPES", None)
        extra = {} if declared is None else {"dtypes": tuple(declared)}
        unsupported = set(getattr(self.namespace, "UNSUPPORTED_FEATURES", ()))
        if self.compile:  # nn.CrossEntropyLoss(...) instances are new per call: compiled through F.* only
            unsupported.add("module_form")
        torch_itself = self.is_torch_functional or self.namespace is getattr(self.torch.nn, "functional", None)
        # torch itself offers the opt-in features of its own API, not the extended contract of fused kernels
        supported = tuple(f for f in OPT_IN if f not in EXTENSION_FEATURES) if torch_itself else \
            getattr(self.namespace, "SUPPORTED_FEATURES", ())
        return Capabilities(functions=spec.function_names(), api="torch", unsupported=frozenset(unsupported),
                            supported=frozenset(supported),
                            differentiable=tuple(getattr(self.namespace, "DIFFERENTIABLE", _DIFFERENTIABLE)),
                            conventions="torch" if torch_itself else getattr(self.namespace, "CONVENTIONS", None),
                            summation_order=getattr(self.namespace, "SUMMATION_ORDER", None),
                            in_place_gradient=bool(getattr(self.namespace, "IN_PLACE_GRADIENT", False)),
                            loss_dtype=getattr(self.namespace, "LOSS_DTYPE", None),
                            dtype_roundings=getattr(self.namespace, "DTYPE_ROUNDINGS", None), **extra)

    def describe(self):
        torch = self.torch
        version = torch.__version__ if self.is_torch_functional else namespace_version(self.namespace)
        description = {"name": self.name, "framework": "torch", "version": version,
                       "framework_version": torch.__version__, "device": self.device,
                       "namespace": getattr(self.namespace, "__name__", type(self.namespace).__name__),
                       "compile": self.compile}
        if self.device.startswith("cuda") and torch.cuda.is_available():
            description["device_name"] = torch.cuda.get_device_name(self.device)
            description["cuda"] = torch.version.cuda
        return description

    @contextlib.contextmanager
    def one_thread(self):
        """torch computing with one intra-op thread, the setting the batch_invariant check is made in: torch's
        CPU kernels split a batch between threads at points that move with its size (docs/results.md)."""
        threads = self.torch.get_num_threads()
        self.torch.set_num_threads(1)
        try:
            yield
        finally:
            self.torch.set_num_threads(threads)

    def _device_problem(self):
        torch = self.torch
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            return "CUDA is not available on this machine (torch.cuda.is_available() is False)"
        if self.device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            return "MPS is not available on this machine"
        return None

    def supports(self, call):
        function, dtype, form = call.function, call.dtype, call.form
        problem = self._device_problem()
        if problem:
            return problem
        module = spec.get(function).module
        if form == "module" and not self.is_torch_functional and not hasattr(self.namespace, module):
            return f"{self.name} offers no module class {module} for the module form"
        if not callable(getattr(self.namespace, function, None)):
            return f"{self.name} offers no function {function!r}"
        if getattr(self.namespace, "SUPPORTED_DTYPES", None) is not None:  # declared: the runner checks, no probe
            return None
        key = (function, dtype)
        if key not in self._dtype_support:
            outcome = self.run(_probe_call(function, dtype))
            problem = (outcome.unsupported or outcome.error or outcome.grad_error or (None, ""))[1]
            unsupported = _names_the_dtype(problem, dtype)  # other refusals are the cases' own business
            self._dtype_support[key] = (f"{self.name} does not support {dtype}: {problem[:200]}"
                                        if unsupported else None)
        return self._dtype_support[key]

    def _tensor(self, array, dtype, requires_grad=False, layout=None):
        """A fresh tensor of the array's values (floats in ``dtype``), in ``layout`` (inputs/layouts.py: the same
        values at other strides, in a buffer of its own), a leaf that takes a gradient when asked."""
        torch = self.torch
        buffer, strides, offset = strided(array, layout) if layout else (array, None, 0)
        if buffer.dtype.kind == "f":
            tensor = exact_tensor(buffer, dtype)
        else:
            tensor = torch.from_numpy(np.array(buffer))
        tensor = tensor.to(self.device)
        if layout:
            tensor = torch.as_strided(tensor, array.shape, strides, offset)
        return tensor.requires_grad_(True) if requires_grad else tensor

    def callable_for(self, function, form, kwargs, keyword):
        """f(*positional tensors) of the call: the function with its keyword tensors and arguments, or the
        module class of the record constructed with them (torch.nn's modules take the keyword tensors too)."""
        if form == "module":
            module_class = getattr(self.torch.nn if self.is_torch_functional else self.namespace,
                                   spec.get(function).module)
            module = module_class(**keyword, **kwargs)
            return lambda *tensors: module(*tensors)
        target = getattr(self.namespace, function)
        if self.compile:
            if function not in self._compiled:
                self._compiled[function] = self._compiled_function(function, target)
            target = self._compiled[function]
        return lambda *tensors: target(*tensors, **keyword, **kwargs)

    def run(self, call):
        tensors = {name: self._tensor(array, call.dtype, name in call.grad_wrt and array.dtype.kind == "f",
                                      call.layouts.get(name)) for name, array in call.arrays.items()}
        snapshot = {name: tensor.detach().clone() for name, tensor in tensors.items()}
        positional, keyword = spec.get(call.function).call_arguments(tensors)
        outcome = Outcome()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # legacy size_average/reduce, implicit dim, batchmean advice
                function = self.callable_for(call.function, call.form, call.kwargs, keyword)
                result, others = _named(function(*positional), _asked_outputs(call))
            outcome.value, outcome.dtype = read_tensor(result)
            for name, tensor in others.items():
                outcome.outputs[name], outcome.output_dtypes[name] = read_tensor(tensor)
        except NotImplementedError as error:  # the kernel's way of saying "not this call": skipped, not failed
            outcome.unsupported = failure(error)
            return outcome
        except Exception as error:  # noqa: BLE001 -- the implementation under test failed: a result, not a crash
            outcome.error = failure(error)
            self._attempt_again(call.function)
        else:
            if call.grad_output is not None:
                self._backward(call, tensors, result, outcome)
        outcome.modified_inputs = [name for name, tensor in tensors.items() if not same_bits(tensor, snapshot[name])]
        return outcome

    def _backward(self, call, tensors, result, outcome):
        torch = self.torch
        wrt = [name for name in call.grad_wrt if tensors[name].requires_grad]
        try:
            upstream = np.asarray(call.grad_output).reshape(result.shape)
            grad_output = self._tensor(upstream, str(result.dtype).removeprefix("torch."), layout=call.layouts.get(
                "grad_output"))
            grads = torch.autograd.grad(result, [tensors[n] for n in wrt], grad_output, allow_unused=True)
            for name, grad in zip(wrt, grads):
                grad = torch.zeros_like(tensors[name]) if grad is None else grad  # unused: the gradient is zero
                outcome.grads[name], outcome.grad_dtypes[name] = read_tensor(grad)
        except Exception as error:  # noqa: BLE001 -- any failure of the backward is a result
            outcome.grads, outcome.grad_dtypes = {}, {}
            outcome.grad_error = failure(error)


def _skip_reset():
    """f(code) that sets dynamo's decision for a frame back to its default (compile it), or None where this
    torch has no such setter."""
    try:
        from torch._dynamo.eval_frame import set_code_exec_strategy
        from torch._dynamo.types import FrameAction, FrameExecStrategy
    except ImportError:
        return None
    default = FrameExecStrategy(FrameAction.DEFAULT, FrameAction.DEFAULT)
    return lambda code: set_code_exec_strategy(code, default)


def _own_frame(name, function):
    """function(*args, **kwargs) behind a frame whose code object is this function's alone (named after it), so
    that dynamo's cache, recompile counts and skip decisions for it are its own."""
    def call(*args, **kwargs):
        return function(*args, **kwargs)

    call.__code__ = call.__code__.replace(co_name=name)  # a new code object, named for dynamo's logs
    return call


def _asked_outputs(call):
    """The names of what a call returns, in order: the record's outputs, or with ``return_outputs`` (the extended
    contract, docs/extensions.md) the primary one and those asked, in the order asked."""
    outputs = spec.get(call.function).outputs
    asked = call.kwargs.get("return_outputs")
    return (outputs[0],) + tuple(asked) if isinstance(asked, (list, tuple)) and asked else outputs


def _named(result, outputs):
    """(the primary output, {name: another output}) of what a call returned: one tensor or, for a function of
    several outputs, a tuple in the record's output order or a mapping by output name."""
    if len(outputs) == 1:
        return result, {}
    if isinstance(result, dict):
        return result.get(outputs[0]), {name: result[name] for name in outputs[1:] if name in result}
    if isinstance(result, (tuple, list)) and result:
        return result[0], {name: tensor for name, tensor in zip(outputs[1:], result[1:])}
    return result, {}


def exact_tensor(array, dtype):
    """A CPU tensor of a float64 array's values in ``dtype`` (a name), in storage of its own: exact, the values
    being of that dtype. numpy's copy, then torch's view of it, takes 20-50% less time than torch.tensor(array)."""
    import torch

    return torch.from_numpy(np.array(array, dtype=np.float64)).to(getattr(torch, dtype))


def read_tensor(result):
    """(float64 numpy array, dtype name) of what a call returned; TypeError when it is not a readable tensor."""
    import torch

    if not isinstance(result, torch.Tensor):
        raise TypeError(f"returned {type(result).__name__}, not a torch.Tensor")
    if result.is_meta:
        raise TypeError("returned a tensor on the meta device, which holds no values")
    return result.detach().to("cpu", torch.float64).numpy(), str(result.dtype).removeprefix("torch.")


def same_bits(tensor, before):
    """Whether a tensor still holds exactly the bits it was given (NaN payloads and -0.0 included)."""
    import torch

    after = tensor.detach()
    if after.shape != before.shape or after.dtype != before.dtype:
        return False
    if after.is_floating_point():
        same_width = {2: torch.int16, 4: torch.int32, 8: torch.int64}[after.element_size()]
        after, before = after.view(same_width), before.view(same_width)
    return bool(torch.equal(after, before))


def namespace_version(namespace):
    """The version of the package a namespace comes from: its distribution's, else its top module's
    ``__version__``; None when neither says (a namespace defined in a script). A namespace object that states
    its own ``__version__`` (an adapter's, such as Liger's) is taken at its word."""
    if not isinstance(namespace, types.ModuleType) and getattr(namespace, "__version__", None) is not None:
        return str(namespace.__version__)
    if isinstance(namespace, types.ModuleType):
        module_name = namespace.__name__
    else:
        module_name = getattr(namespace, "__module__", None) or type(namespace).__module__
    top = (module_name or "").split(".")[0]
    for distribution in importlib.metadata.packages_distributions().get(top, ()):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    version = getattr(sys.modules.get(top), "__version__", None)
    return None if version is None else str(version)
