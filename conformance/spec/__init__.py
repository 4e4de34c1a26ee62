"""The spec: one declarative record per function, read by every stage that needs a signature.

A record (``FunctionSpec``, one small file per function: softmax.py, nll_loss.py, cross_entropy.py, kl_div.py) says
what a call of the function is: its tensor arguments (role, call order, whether they take a gradient, the seed
stream and default shape of generated values), its keywords with their documented defaults, its named outputs, its
torch.nn module class, the oracle functions that certify it, the parameter axes it derives from a case, and a tiny
valid call to probe a backend with. The case loader, the input generator, the oracle calls, the backends, coverage
and the budgets read the record; none of them restates a signature. ``register`` adds a record at run time (a test
adds a toy function this way); docs/architecture.md, "Adding a function", lists the other places a real one needs.
The rules every record shares live beside it: the class dimension (classes.py), the dtypes (dtypes.py), the
features of a case (features.py).
"""
from dataclasses import dataclass, field

from .names import ALL_FUNCTIONS, FUNCTIONS


@dataclass(frozen=True)
class Tensor:
    """A tensor argument: ``positional`` (else passed by keyword), ``differentiable`` (a floating tensor of this
    role has a gradient), ``stream`` (the key of its generated values' seed stream), ``default_shape`` ("input":
    the input's shape; "classes": (C,), one per class of the input), ``batched`` (dim 0 is the batch's)."""

    name: str
    positional: bool = True
    required: bool = True
    differentiable: bool = True
    stream: int = 0
    default_shape: str = "input"
    batched: bool = True  # dim 0 runs over the batch's rows (not a class weight, a linear layer's weight)


@dataclass(frozen=True)
class FunctionSpec:
    """One function, declaratively (module docstring). ``kind`` says where its classes are: "softmax" (along the
    ``dim`` keyword) or "loss" (the class dimension of conformance/spec/classes.py). ``oracle`` names the oracle
    function (a callable for a function the oracle does not know); its VJP is ``oracle_vjp``, by default
    ``<oracle>_vjp``. ``outputs``: the named outputs, the first the primary one, whose checks carry no prefix.
    ``derive_axes(kwargs, arrays)`` gives the values of ``axes`` for a call, ``derive_features(axes)`` the features
    of ``feature_names`` they imply, and ``build_case(row)`` the (inputs, kwargs) of a generated case with the
    axis values of ``row`` (pairwise coverage); ``probe()`` a tiny valid call (arrays, kwargs, upstream gradient);
    ``examples(rng)`` documented calls for the demo ((args, kwargs) pairs); ``labels`` the short forms of keywords
    in generated case ids."""

    name: str
    tensors: tuple
    keywords: dict
    module: str
    kind: str
    oracle: object
    derive_axes: object
    build_case: object
    probe: object
    derive_features: object = lambda axes: ()
    feature_names: tuple = ()
    oracle_vjp: object = None
    outputs: tuple = ("output",)
    reductions: tuple = ()
    axes: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    examples: object = None
    reference_shape: object = None  # arrays -> the shape targets and class weights follow (default: the input's)

    def shape_for_others(self, arrays):
        """The shape the other tensors' default shapes and class counts derive from (the logits')."""
        return self.reference_shape(arrays) if self.reference_shape else arrays["input"].shape

    @property
    def tensor_names(self):
        return tuple(t.name for t in self.tensors)

    @property
    def checks(self):
        """The budgeted checks of the function: its primary value, the gradient of each differentiable tensor,
        and each other output by its name (the budget file gives each)."""
        return ("value",) + tuple(f"grad_{t.name}" for t in self.tensors if t.differentiable) + self.outputs[1:]

    def tensor(self, name):
        return next(t for t in self.tensors if t.name == name)

    def call_arguments(self, arrays):
        """(positional, keyword) of a call on ``arrays`` ({name: array}), in the signature's order."""
        present = [t for t in self.tensors if t.name in arrays]
        return ([arrays[t.name] for t in present if t.positional],
                {t.name: arrays[t.name] for t in present if not t.positional})

    def oracle_functions(self):
        """(forward, VJP) of the oracle."""
        import oracle

        forward = getattr(oracle, self.oracle) if isinstance(self.oracle, str) else self.oracle
        vjp = self.oracle_vjp or (f"{self.oracle}_vjp" if isinstance(self.oracle, str) else None)
        return forward, getattr(oracle, vjp) if isinstance(vjp, str) else vjp


_REGISTRY = {}
_LOADED = []


def register(record):
    """Add a function (or replace one of the same name); returns it."""
    _REGISTRY[record.name] = record
    return record


def unregister(name):
    _REGISTRY.pop(name, None)


def get(name):
    """The record of a function; KeyError naming the known ones otherwise."""
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no function {name!r}; known: {', '.join(_REGISTRY)}") from None


def function_names():
    """The names of every registered function: the built-in ones (ALL_FUNCTIONS) first."""
    _load()
    return tuple(_REGISTRY)


SHARED = ("names", "classes", "dtypes", "features")  # the modules of this package that hold no record


def _load():
    """Import every record module of this package once (each registers its records)."""
    if not _LOADED:
        import importlib
        import pkgutil

        _LOADED.append(True)
        for module in pkgutil.iter_modules(__path__):
            if module.name not in SHARED:
                importlib.import_module(f"{__name__}.{module.name}")

        records = dict(_REGISTRY)
        _REGISTRY.clear()  # the built-in functions first, in ALL_FUNCTIONS order, then any registered before
        _REGISTRY.update({name: records.pop(name) for name in ALL_FUNCTIONS}, **records)


__all__ = ["ALL_FUNCTIONS", "FUNCTIONS", "FunctionSpec", "Tensor", "function_names", "get", "register", "unregister"]
