"""Backends: what the suite checks. The array-level protocol, and loading a backend from a ``--backend`` spec.

A spec is one of
  ``torch``                eager torch.nn.functional (the default)
  ``torch-compile``        the same functions under torch.compile
  an entry-point name      an installed entry point of the group ``loss_conformance.backends``
  ``module.path[:attr]``   any object offering torch.nn.functional-compatible callables (cross_entropy, nll_loss,
                           kl_div, softmax, log_softmax) on torch tensors, or an object implementing ``Backend``
docs/backends.md describes the protocol and how to plug in a kernel.
"""
import importlib
import inspect
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import numpy as np

from ..names import FUNCTIONS

ENTRY_POINT_GROUP = "loss_conformance.backends"


class BackendLoadError(Exception):
    """A --backend spec that names nothing usable; the message says what would be accepted."""


@dataclass
class Call:
    """One evaluation request, in arrays: float arrays hold values of ``dtype`` (as float64), integers as is."""

    function: str
    dtype: str
    arrays: dict  # "input", and "target" / "weight" where the case has them
    kwargs: dict
    form: str = "functional"  # or "module": torch.nn.CrossEntropyLoss(**kwargs)(input, target) and the like
    grad_output: np.ndarray | None = None  # set when gradients are wanted
    grad_wrt: tuple = ()  # argument names whose gradients are wanted, e.g. ("input", "target")


@dataclass
class Outcome:
    """What a backend returned: arrays converted to float64, with the dtype names it reported."""

    value: np.ndarray | None = None
    dtype: str | None = None
    grads: dict = field(default_factory=dict)  # name -> float64 array
    grad_dtypes: dict = field(default_factory=dict)  # name -> dtype name
    error: tuple | None = None  # (exception class name, message) when the forward call raised
    grad_error: tuple | None = None  # the same for the backward call


@runtime_checkable
class Backend(Protocol):
    """The array-level interface every backend offers (torch or not).

    ``supports`` returns None when the backend can evaluate the function in that dtype and form, else a
    sentence saying why not (the cases are then skipped with it). ``run`` never raises for a failure of the
    implementation under test: it reports it in Outcome.error / Outcome.grad_error.
    """

    name: str

    def describe(self) -> dict: ...

    def supports(self, function: str, dtype: str, form: str) -> str | None: ...

    def run(self, call: Call) -> Outcome: ...


def _builtin(spec, device):
    from .torch_backend import TorchBackend

    if spec == "torch":
        return TorchBackend(device=device)
    if spec == "torch-compile":
        return TorchBackend(device=device, compile=True, name="torch-compile")
    return None


def _from_object(obj, spec, device):
    from .torch_backend import TorchBackend

    if isinstance(obj, Backend):
        return obj
    if any(callable(getattr(obj, name, None)) for name in FUNCTIONS):
        return TorchBackend(namespace=obj, device=device, name=spec)
    if callable(obj):  # a factory: called (with device= if it takes it), it returns a backend or a namespace
        takes_device = "device" in inspect.signature(obj).parameters
        return _from_object(obj(device=device) if takes_device else obj(), spec, device)
    raise BackendLoadError(f"{spec!r} resolved to {type(obj).__name__}, which offers none of "
                           f"{', '.join(FUNCTIONS)} and does not implement the Backend protocol")


def _accepted():
    installed = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return (f"expected 'torch', 'torch-compile', an installed entry point ({', '.join(installed) or 'none installed'})"
            " or an importable 'module.path[:attr]'")


def _import(spec):
    module_name, _, attribute = spec.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as error:
        raise BackendLoadError(f"cannot import module {module_name!r} for --backend {spec!r} ({error}); "
                               f"{_accepted()}") from None
    for part in filter(None, attribute.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise BackendLoadError(f"module {module_name!r} has no attribute {attribute!r}") from None
    return obj


def load_backend(spec="torch", device="cpu"):
    """The Backend a spec names; raises BackendLoadError with the accepted forms when it names nothing."""
    try:
        builtin = _builtin(spec, device)
    except ImportError as error:
        raise BackendLoadError(f"backend {spec!r} needs torch, which cannot be imported: {error}") from None
    if builtin is not None:
        return builtin
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == spec:
            return _from_object(entry_point.load(), spec, device)
    if not spec or not all(part.isidentifier() for part in spec.replace(":", ".").split(".")):
        raise BackendLoadError(f"--backend {spec!r} names no backend; {_accepted()}")
    return _from_object(_import(spec), spec, device)
