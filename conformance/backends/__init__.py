"""Backends: what the suite checks. The array-level protocol, and loading a backend from a ``--backend`` spec.

A spec is one of
  ``torch``                eager torch.nn.functional (the default)
  ``torch-compile``        the same functions under torch.compile
  an entry-point name      an installed entry point of the group ``loss_conformance.backends``
  ``module.path[:attr]``   any object offering torch.nn.functional-compatible callables (cross_entropy, nll_loss,
                           kl_div, softmax, log_softmax) on torch tensors, or an object implementing ``Backend``
docs/backends.md describes the protocol and how to plug in a kernel.
"""
import functools
import importlib
import inspect
import os
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import numpy as np

from ..spec.dtypes import DTYPES
from ..spec.features import LAYOUT_FEATURES, OPT_IN, TORCH_API, known_features
from ..spec import function_names
from ..spec.names import ALL_FUNCTIONS, FUNCTIONS

ENTRY_POINT_GROUP = "loss_conformance.backends"


class BackendLoadError(Exception):
    """A --backend spec that names nothing usable; the message says what would be accepted."""


class Unsupported(NotImplementedError):
    """Raised by a backend call for something the backend does not offer: the check is skipped with the
    message as its reason, never failed. A plain NotImplementedError means the same."""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can evaluate. A case that needs anything else is skipped as unsupported (never failed).

    ``unsupported`` names features of conformance/spec/features.py (e.g. "weight", "probability_targets",
    "shape:k-dim", "reduction:none"); ``supported`` names the opt-in ones (features.OPT_IN) it offers, whose cases
    are unsupported without the declaration. ``api`` says what the backend takes ("torch" tensors or "array"s).
    ``conventions="torch"`` makes torch's API conventions (features.TORCH_API: module classes, legacy
    size_average/reduce, the implicit dim, accepted target dtypes and shapes, weight shapes, broadcasting) part of
    the backend's contract; for any other backend (None) the cases that use them do not apply: it is judged on
    the documented semantics of the losses. ``differentiable`` lists the arguments the backend
    takes gradients of: () for a forward-only backend. ``summation_order`` (an order of conformance/verdict/tolerances.py:
    "pairwise", "tiles-B", "lanes-K", "sequential") asks to be judged by that order's accumulation bound; None
    takes the budget file's default, the bound every correct order meets (docs/tolerances.md).
    ``in_place_gradient``: the backend writes the gradient into the logits' memory by design (the inputs.unchanged
    check is not applied; every call gets fresh tensors anyway). ``loss_dtype``: the dtype it returns losses in
    for float16/bfloat16 inputs ("float32"), judged at that dtype's budget. ``dtype_roundings``: how many times
    its chain rounds to a 16-bit dtype (default: the budget file's, 2), which sets the relative check's budget.
    """

    functions: tuple = FUNCTIONS
    dtypes: tuple = DTYPES
    unsupported: frozenset = frozenset()
    supported: frozenset = frozenset()
    api: str = "array"
    differentiable: tuple = ("input", "target")
    summation_order: str | None = None
    conventions: str | None = None
    in_place_gradient: bool = False
    loss_dtype: str | None = None
    dtype_roundings: int | None = None

    def missing(self, features):
        """The features of a case this backend lacks (sorted); torch API features apply only to torch's conventions."""
        return sorted(f for f in features if f in self.unsupported or (f in OPT_IN and f not in self.supported))

    def not_applicable(self, features):
        """The torch API conventions a case uses that are not part of this backend's contract, and the memory
        layouts of a backend that takes arrays (unless it declares that it takes strided ones)."""
        conventions = [] if self.conventions == "torch" else [f for f in features if f in TORCH_API]
        layouts = [] if self.api == "torch" else [f for f in features if f in LAYOUT_FEATURES
                                                  and f not in self.supported]
        return sorted(conventions + layouts)


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
    features: frozenset = frozenset()  # what the case exercises (conformance/spec/features.py)
    layouts: dict = field(default_factory=dict)  # name -> layout of inputs/layouts.py, for the non-contiguous ones


@dataclass
class Outcome:
    """What a backend returned: arrays converted to float64, with the dtype names it reported. ``value`` is the
    primary output (the loss, the softmax); ``outputs`` holds any further named output of the function's record
    ({"lse": array}); ``grads`` the gradient of each argument by name."""

    value: np.ndarray | None = None
    dtype: str | None = None
    outputs: dict = field(default_factory=dict)  # name -> float64 array, beyond the primary output
    output_dtypes: dict = field(default_factory=dict)
    grads: dict = field(default_factory=dict)  # name -> float64 array
    grad_dtypes: dict = field(default_factory=dict)  # name -> dtype name
    error: tuple | None = None  # (exception class name, message) when the forward call raised
    grad_error: tuple | None = None  # the same for the backward call
    unsupported: tuple | None = None  # (class name, message) when the call raised Unsupported / NotImplementedError
    modified_inputs: list = field(default_factory=list)  # arguments the call changed in place


def failure(error):
    """An (exception class name, message) pair for Outcome.error / grad_error."""
    return type(error).__name__, str(error)


@runtime_checkable
class Backend(Protocol):
    """The array-level interface every backend offers (torch or not).

    ``capabilities`` (optional, a Capabilities) says what it supports. ``supports(call)`` (optional) returns
    None when the backend can evaluate this call, else a sentence saying why not; the older form
    ``supports(function, dtype, form)`` is accepted too. ``run`` reports a failure of the implementation under
    test in Outcome.error / Outcome.grad_error; it may raise Unsupported (or NotImplementedError) for a call it
    does not offer. docs/backends.md shows a complete adapter.
    """

    name: str

    def describe(self) -> dict: ...

    def run(self, call: Call) -> Outcome: ...


def capabilities_of(backend):
    declared = getattr(backend, "capabilities", None)
    return declared if isinstance(declared, Capabilities) else Capabilities()


# The choices a backend may declare, reported in every summary: they change how it is judged, never what is true.
DECLARABLE = ("summation_order", "conventions", "in_place_gradient", "loss_dtype", "dtype_roundings")


def declared_choices(backend, conventions=None):
    """{choice: value} of the choices the backend declared (the ones that change how it is judged); a run's
    --conventions counts as the backend's."""
    capabilities = capabilities_of(backend)
    declared = {name: getattr(capabilities, name) for name in DECLARABLE if getattr(capabilities, name)}
    return dict(declared, conventions=conventions) if conventions else declared


def close_backend(backend):
    """Let a backend that holds processes (a vocab-parallel world) stop them; a no-op for the others."""
    close = getattr(backend, "close", None)
    if callable(close):
        close()


def support_problem(backend, call):
    """Why the backend cannot run this call (a sentence), or None; asks ``supports`` in either form."""
    supports = getattr(backend, "supports", None)
    if supports is None:
        return None
    if _takes_three(supports):  # the first protocol: supports(function, dtype, form)
        return supports(call.function, call.dtype, call.form)
    return supports(call)


def _takes_three(supports):
    """Whether ``supports`` takes three positional arguments (a method's self not counted)."""
    function = getattr(supports, "__func__", supports)
    return _positional_parameters(function) - (function is not supports) >= 3


@functools.lru_cache(maxsize=64)
def _positional_parameters(function):
    """Asked once per function, not per call: inspect.signature on every call cost 0.4 s of a warm run."""
    return len([p for p in inspect.signature(function).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])


def _builtin(spec, device):
    from .torch_backend import TorchBackend

    if spec == "torch":
        return TorchBackend(device=device)
    if spec == "torch-compile":
        return TorchBackend(device=device, compile=True, name="torch-compile")
    return None


def _offers_functions(obj):
    return any(callable(getattr(obj, name, None)) for name in function_names())


def _construct(factory, device):
    """Call a class or factory, with device= if it takes it."""
    try:
        takes_device = "device" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or extension type without a signature
        takes_device = False
    return factory(device=device) if takes_device else factory()


def _from_object(obj, spec, device):
    """A Backend from what a spec resolved to: a Backend (class or instance), a namespace of torch-compatible
    functions (module, class or instance), or a factory returning one of these."""
    from .torch_backend import TorchBackend

    is_class = inspect.isclass(obj)
    if is_class and callable(getattr(obj, "run", None)) and callable(getattr(obj, "describe", None)):
        return _from_object(_construct(obj, device), spec, device)  # a Backend class: its instance is the backend
    if not is_class and isinstance(obj, Backend):
        return obj
    if _offers_functions(obj):
        return TorchBackend(namespace=obj, device=device, name=spec)
    if callable(obj):
        return _from_object(_construct(obj, device), spec, device)
    raise BackendLoadError(f"{spec!r} resolved to {type(obj).__name__}, which offers none of "
                           f"{', '.join(ALL_FUNCTIONS)} and does not implement the Backend protocol")


def _accepted():
    installed = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return (f"expected 'torch', 'torch-compile', an installed entry point ({', '.join(installed) or 'none installed'})"
            " or an importable 'module.path[:attr]'")


def _import(spec):
    """The object ``module.path[:attr]`` names; the working directory is searched first, as ``python -m`` does."""
    module_name, _, attribute = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
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


def load_backend(spec="torch", device="cpu", world=None):
    """The Backend a spec names; raises BackendLoadError with the accepted forms when it names nothing, or when
    its capabilities name features that do not exist (a misspelt feature would silently declare nothing).
    ``world`` ({"world_size", "sharding", "listen", "timeout"}): the spec names a vocab-parallel implementation,
    checked on that many ranks (conformance/backends/distributed)."""
    if world:
        from .distributed.backend import VocabParallelBackend

        return _checked(VocabParallelBackend(spec, device, **world), spec)
    return _checked(_resolve(spec, device), spec)


def _resolve(spec, device):
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


def _checked(backend, spec):
    capabilities = capabilities_of(backend)
    known = set(known_features([name for name in capabilities.functions if name in function_names()]))
    unknown = sorted((set(capabilities.unsupported) | set(capabilities.supported)) - known)
    if unknown:
        raise BackendLoadError(f"backend {spec!r} declares unknown features {unknown}; the features are "
                               f"{', '.join(sorted(known))} (docs/backends.md)")
    return backend
