"""Correct kernels of other designs than torch's: the suite must pass every one of them (no false alarm), with no
declared deviation, on the default corpus and the large tier, while it fails every mutant (docs/tolerances.md).

- ``fused``: the blocked fused cross-entropy kernel of _fused.py (online log-sum-exp over blocks of 1024, rows in
  chunks, the gradient computed in the forward pass and stored in the dtype);
- the summation orders of _ordered.py, every function: ``sequential``, ``lanes_4``, ``lanes_8``, ``lanes_16``
  (the vector widths of CPUs: NEON and AVX2 float64, AVX2 float32, AVX-512 float32), ``pairwise``, and
  ``tiles_1024`` (a GPU/Triton-like tree in each tile of 1024 terms, then a sequential loop over the tiles);
- ``stored_gradient``: cross_entropy computed in float32 with its gradient, the gradient rounded to the dtype in
  the forward and multiplied by the upstream gradient in the dtype in the backward (two roundings);
- ``in_place``: the same with the gradient written into the logits' memory, as memory-saving kernels do; it
  declares it (IN_PLACE_GRADIENT), and is then judged without the inputs.unchanged check;
- ``in_place_weight_total``: Liger-Kernel's design, in place with the weighted mean's total weight held in the
  weights' dtype: three roundings to the dtype, declared (DTYPE_ROUNDINGS = 3);
- ``float32_loss``: nll_loss, cross_entropy and kl_div returning float32 losses for float16/bfloat16 inputs, as
  kernels that keep the loss in their accumulation dtype do; it declares it (LOSS_DTYPE): judged as float32.

Each factory returns a namespace for ``--backend conformance.mutants.designs:<name>``; ``REPLACED`` names the
functions it implements (the others are torch's, and are not its business).
"""
import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from . import _ordered
from ._common import effective_reduction
from ..spec.classes import class_dim
from ..spec.names import FUNCTIONS

ORDERS = {"sequential": "sequential", "lanes_4": "lanes-4", "lanes_8": "lanes-8", "lanes_16": "lanes-16",
          "pairwise": "pairwise", "tiles_1024": "tiles-1024"}


def _resolved(size_average, reduce, reduction):
    """The reduction in force by the documented legacy rule; raises for what the docs rule out and torch accepts
    (non-bool legacy flags, the undocumented alias 'elementwise_mean')."""
    for flag in (size_average, reduce):
        if flag is not None and not isinstance(flag, bool):
            raise TypeError(f"size_average and reduce must be True, False or None, got {flag!r}")
    if reduction == "elementwise_mean":
        raise ValueError("reduction='elementwise_mean' is not a documented reduction")
    return effective_reduction(size_average, reduce, reduction)




def _check_documented(input, target, weight, label_smoothing=0.0):
    """The documented rules torch 2.13 does not enforce (docs/spec-notes.md: label_smoothing range, target kinds
    and dtypes, weight shape); torch's own checks ran before."""
    smoothing = float(label_smoothing)
    if math.isnan(smoothing) or smoothing < 0:
        raise ValueError(f"label_smoothing must be in [0.0, 1.0], got {label_smoothing!r}")
    if target.dtype == torch.uint8:
        raise TypeError("class indices must be int64 (torch.long), got uint8")
    if input.dim() == 1 and target.dim() != 0 and target.shape != input.shape:
        raise ValueError(f"an unbatched input of shape {tuple(input.shape)} takes a 0-dim target")
    classes = input.shape[class_dim(input.dim())] if input.dim() else 0
    if weight is not None and tuple(weight.shape) != (classes,):
        raise ValueError(f"weight must have shape ({classes},), got {tuple(weight.shape)}")


def functions(order, stored_gradient=False, in_place=False, float32_loss=False, weight_total_in_dtype=False):
    """The five functions with torch.nn.functional's signatures, every sum in ``order``; ``stored_gradient``:
    cross_entropy keeps its gradient in the dtype from the forward (``in_place``: in the logits' memory, and
    ``weight_total_in_dtype``: the weighted mean's total rounded to the weights' dtype, a third rounding);
    ``float32_loss``: the losses of float16/bfloat16 inputs are returned in float32."""
    _ordered.parse_order(order)

    def loss_dtype(input):
        return torch.float32 if float32_loss and input.dtype in (torch.float16, torch.bfloat16) else None

    def softmax(input, dim=None, _stacklevel=3, dtype=None, *, _log=False):
        reference = (F.log_softmax if _log else F.softmax)(input.detach(), dim, _stacklevel, dtype)  # torch's checks
        if dtype is not None:
            input = input.to(dtype)
        dim = F._get_softmax_dim("softmax", input.dim(), 5) if dim is None else dim % max(input.dim(), 1)
        return _ordered._Softmax.apply(input, dim, order, _log).reshape(reference.shape)

    def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
        return softmax(input, dim, _stacklevel, dtype, _log=True)

    def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        F.nll_loss(input.detach(), target, weight, size_average, ignore_index, reduce, reduction)
        _check_documented(input, target, weight)
        return _ordered._NllLoss.apply(input, target, weight, ignore_index, _resolved(size_average, reduce, reduction),
                                       order, loss_dtype(input))

    def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                      reduction="mean", label_smoothing=0.0):
        F.cross_entropy(input.detach(), target.detach(), weight, size_average, ignore_index, reduce, reduction,
                        label_smoothing)
        _check_documented(input, target, weight, label_smoothing)
        reduction = _resolved(size_average, reduce, reduction)
        if stored_gradient:
            return _ordered._StoredGradientCrossEntropy.apply(input, target, weight, ignore_index, reduction,
                                                              float(label_smoothing), order, in_place,
                                                              weight_total_in_dtype)
        return _ordered._CrossEntropy.apply(input, target, weight, ignore_index, reduction, float(label_smoothing),
                                            order, loss_dtype(input))

    def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
        if input.shape != target.shape:  # the docs: "Target: (*), same shape as the input" (torch broadcasts)
            raise ValueError(f"target of shape {tuple(target.shape)} for input of shape {tuple(input.shape)}")
        F.kl_div(input.detach(), target.detach(), size_average, reduce, reduction, log_target)
        return _ordered._KlDiv.apply(input, target, _resolved(size_average, reduce, reduction), bool(log_target),
                                     order, loss_dtype(input))

    return {"softmax": softmax, "log_softmax": log_softmax, "nll_loss": nll_loss, "cross_entropy": cross_entropy,
            "kl_div": kl_div}


def module_classes(namespace):
    """torch.nn's loss and softmax modules, their forward calling the namespace's functions."""

    def forward_of(name):
        def forward(self, input, target=None):
            if name in ("softmax", "log_softmax"):
                return getattr(namespace, name)(input, self.dim)
            if name == "kl_div":
                return namespace.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
            extra = {"label_smoothing": self.label_smoothing} if name == "cross_entropy" else {}
            return getattr(namespace, name)(input, target, self.weight, ignore_index=self.ignore_index,
                                            reduction=self.reduction, **extra)
        return forward

    bases = {"Softmax": "softmax", "LogSoftmax": "log_softmax", "NLLLoss": "nll_loss",
             "CrossEntropyLoss": "cross_entropy", "KLDivLoss": "kl_div"}
    return {cls: type(cls, (getattr(torch.nn, cls),), {"forward": forward_of(name)}) for cls, name in bases.items()}


def ordered(order, **choices):
    """A torch-API namespace of the five functions with every sum in ``order`` (conformance/verdict/tolerances.py)."""

    namespace = SimpleNamespace(__doc__=f"every function, sums in the order {order}", DEVIATIONS=(),
                                REPLACED=FUNCTIONS, CONVENTIONS="torch", **functions(order, **choices))
    namespace.__dict__.update(module_classes(namespace))
    return namespace


def fused():
    from .fused import reference

    return reference()


def stored_gradient():
    namespace = ordered("tiles-1024", stored_gradient=True)
    namespace.__doc__ = "cross_entropy with its gradient stored in the dtype in the forward (two roundings)"
    namespace.REPLACED = ("cross_entropy",)
    return namespace


def in_place():
    namespace = ordered("tiles-1024", stored_gradient=True, in_place=True)
    namespace.__doc__ = "cross_entropy writing its gradient into the logits' memory (declared)"
    namespace.REPLACED, namespace.IN_PLACE_GRADIENT = ("cross_entropy",), True
    return namespace


def in_place_weight_total():
    """Liger-Kernel's design: in place, and the weighted mean's total weight summed in the weights' dtype (its host
    code's ``weight.gather(...).sum().item()``): three roundings to a 16-bit dtype, declared (DTYPE_ROUNDINGS)."""
    namespace = ordered("tiles-1024", stored_gradient=True, in_place=True, weight_total_in_dtype=True)
    namespace.__doc__ = "cross_entropy in place, the weighted mean's total weight in the dtype (declared)"
    namespace.REPLACED, namespace.IN_PLACE_GRADIENT, namespace.DTYPE_ROUNDINGS = ("cross_entropy",), True, 3
    return namespace


def float32_loss():
    namespace = ordered("tiles-1024", float32_loss=True)
    namespace.__doc__ = "losses returned in float32 for float16/bfloat16 inputs (declared)"
    namespace.LOSS_DTYPE = "float32"
    return namespace


def _order_factory(name):
    def build():
        return ordered(ORDERS[name])
    build.__name__ = name
    return build


CATALOG = {"fused": fused, **{name: _order_factory(name) for name in ORDERS}, "stored_gradient": stored_gradient,
           "in_place": in_place, "in_place_weight_total": in_place_weight_total, "float32_loss": float32_loss}


def __getattr__(name):  # --backend conformance.mutants.designs:<name>
    if name in CATALOG:
        return CATALOG[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
