"""What the four framework adapters (jax, onnxruntime, paddle, mlx) share.

Each adapter module imports without its framework (the entry points of every extra are registered, installed or
not), so the framework is imported when the backend is instantiated, and a missing one names the extra to
install. The rest is the little that every mapping needs: the documented defaults of the keyword arguments (a
Call carries only the keywords the case gives) and the class axis of the losses.
"""
import importlib

import numpy as np

from . import BackendLoadError, Outcome, Unsupported, failure
from .. import spec

# torch.nn.functional's documented defaults, which are part of the semantics under test: a target of -100 is
# ignored even when a case does not pass ignore_index, so an adapter has to pass it to its framework.
DEFAULTS = {"reduction": "mean", "ignore_index": -100, "label_smoothing": 0.0, "log_target": False}


def import_framework(modules, extra):
    """The modules, imported; BackendLoadError with the install command when one is missing or broken."""
    try:
        return [importlib.import_module(name) for name in modules]
    except ImportError as error:  # also a framework that is installed but cannot load its native library
        raise BackendLoadError(f"the {extra} backend needs {', '.join(modules)}, which cannot be imported "
                               f"({error}); install it with: pip install \"loss-conformance[{extra}]\"") from None


def cpu_only(name, device):
    if device not in (None, "cpu"):
        raise BackendLoadError(f"the {name} backend runs on the CPU only (got --device {device})")


def option(kwargs, name):
    """A keyword argument of the call, or its documented default."""
    return kwargs.get(name, DEFAULTS[name])


def class_axis(array):
    """The class axis of a loss input: 0 for an unbatched (C) input, else 1 (N, C, d1, ...)."""
    return 0 if array.ndim == 1 else 1


def float64(array):
    """A framework result as a float64 numpy array (widening float16 / bfloat16 is exact)."""
    return np.asarray(array).astype(np.float64)


def wrt_floats(call):
    """The arguments whose gradients are wanted and can exist: integer class indices have none."""
    return [name for name in call.grad_wrt if call.arrays[name].dtype.kind == "f"]


def run_functional(call, function, to_framework, forward, backward, to_numpy, dtype_name):
    """The Outcome of a call of ``function`` (framework arrays, in the record's argument order) through a
    framework's VJP, the shape the functional adapters (jax, mlx) share:
    ``forward(f, primals) -> (value, state)``, ``backward(f, primals, state, value, cotangent) -> gradients``;
    ``to_framework(numpy array, dtype name)``, ``to_numpy(array)``, ``dtype_name(array)`` convert."""
    arrays = {name: to_framework(array, call.dtype) for name, array in call.arrays.items()}
    order = [name for name in spec.get(call.function).tensor_names if name in arrays]
    wrt = wrt_floats(call)

    def f(*differentiated):
        named = dict(arrays, **dict(zip(wrt, differentiated)))
        return function(*[named[name] for name in order])

    outcome, primals = Outcome(), [arrays[name] for name in wrt]
    try:
        value, state = forward(f, primals)
    except Unsupported:
        raise
    except Exception as error:  # noqa: BLE001 -- the framework's failure is a result
        outcome.error = failure(error)
        return outcome
    outcome.value, outcome.dtype = to_numpy(value), dtype_name(value)
    if call.grad_output is None:
        return outcome
    try:
        grads = backward(f, primals, state, value, to_framework(np.asarray(call.grad_output), call.dtype))
    except Exception as error:  # noqa: BLE001
        outcome.grad_error = failure(error)
        return outcome
    for name, grad in zip(wrt, grads):
        outcome.grads[name], outcome.grad_dtypes[name] = to_numpy(grad), dtype_name(grad)
    return outcome
