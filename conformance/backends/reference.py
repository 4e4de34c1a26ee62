"""Reference implementations of the extended contract of fused cross-entropy kernels (docs/extensions.md), in
torch operations, and torch's own chunked linear cross-entropy.

- ``--backend conformance.backends.reference``: ``cross_entropy`` and ``linear_cross_entropy`` with softcap,
  z-loss and the outputs beside the loss, composed of torch.nn.functional calls. 16-bit inputs are computed in
  float32 and rounded once, as fused kernels do; the plain arguments go to F.cross_entropy unchanged, so torch's
  API conventions hold.
- ``conformance.backends.reference:compiled``: the same functions under torch.compile.
- ``conformance.backends.reference:chunked``: torch's F.linear_cross_entropy on its chunked path
  (``options=LinearCrossEntropyOptions()``), which never materialises the logits (torch >= 2.13).
"""
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from ..spec.features import EXTENSION_FEATURES, EXTENSION_OUTPUTS

SUPPORTED_FEATURES = EXTENSION_FEATURES
CONVENTIONS = "torch"
Z_LOSS_WEIGHTINGS = ("count", "class")


def _check(softcap, z_loss_scale, z_loss_weighting, return_outputs):
    def number(value):
        return not isinstance(value, bool) and isinstance(value, (int, float)) and abs(value) < float("inf")

    if softcap is not None and not (number(softcap) and softcap > 0):
        raise ValueError(f"softcap must be None or a finite number > 0, got {softcap!r}")
    if not (number(z_loss_scale) and z_loss_scale >= 0):
        raise ValueError(f"z_loss_scale must be a finite number >= 0, got {z_loss_scale!r}")
    if z_loss_weighting not in Z_LOSS_WEIGHTINGS:
        raise ValueError(f"z_loss_weighting must be one of {Z_LOSS_WEIGHTINGS}, got {z_loss_weighting!r}")
    if not isinstance(return_outputs, (list, tuple)) or any(n not in EXTENSION_OUTPUTS for n in return_outputs) \
            or len(set(return_outputs)) != len(return_outputs):
        raise ValueError(f"return_outputs must list distinct names among {EXTENSION_OUTPUTS}")


def _opmath(tensor):
    """A 16-bit tensor (logits, probability targets, weights) in float32, where it is computed."""
    return tensor.float() if tensor is not None and tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def softcapped(logits, softcap):
    """c tanh(x / c), or the logits unchanged without a softcap (docs/extensions.md, E1)."""
    return logits if softcap is None else softcap * torch.tanh(logits / softcap)


def _reduce(values, reduction, denominator):
    if reduction == "none":
        return values
    return values.sum() if reduction == "sum" else values.sum() / denominator


def _extended(logits, target, weight, ignore_index, reduction, label_smoothing, softcap, z_loss_scale,
              z_loss_weighting, return_outputs, legacy=None):
    """The loss (and outputs) of logits already in the type they are computed in; results in ``out_dtype``."""
    x = softcapped(logits, softcap)
    loss = F.cross_entropy(x, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing, **(legacy or {}))
    if reduction not in ("none", "mean", "sum") or not (z_loss_scale or return_outputs):
        return loss, {}
    class_dim = 0 if x.dim() == 1 else 1
    lse = torch.logsumexp(x, class_dim)
    probabilities = target.shape == x.shape
    counted = torch.ones_like(lse) if probabilities else (target != ignore_index).to(x.dtype)
    per_row = counted.clone()
    if z_loss_weighting == "class" and weight is not None and not probabilities:
        per_row = counted * weight[torch.where(target == ignore_index, 0, target)]
    z = torch.where(counted > 0, z_loss_scale * lse * lse * per_row, torch.zeros_like(lse))  # ignored rows: 0
    z_loss = _reduce(z, reduction, per_row.sum())
    if z_loss_scale:
        loss = loss + z_loss
    outputs = {"z_loss": z_loss, "lse": lse}
    log_p = torch.log_softmax(x, class_dim)
    if "entropy" in return_outputs:
        p = log_p.exp()
        # 0 log 0 = 0 by masking the log, not the product: a where() around p * log_p sends a zero upstream
        # gradient through 0 * -inf (NaN) once a compiled graph materialises the output's zero tangent
        outputs["entropy"] = -(p * torch.where(p == 0, torch.zeros_like(log_p), log_p)).sum(class_dim)  # NaN stays
    if "target_logprob" in return_outputs:
        if probabilities:
            raise ValueError("target_logprob is defined for class-index targets only")
        safe = torch.where(target == ignore_index, 0, target).unsqueeze(class_dim)
        picked = log_p.gather(class_dim, safe).squeeze(class_dim)
        outputs["target_logprob"] = torch.where(target == ignore_index, torch.zeros_like(picked), picked)
    return loss, {name: outputs[name] for name in return_outputs}


def _finish(loss, outputs, dtype, return_outputs):
    if not return_outputs:
        return loss.to(dtype)
    return {"loss": loss.to(dtype), **{name: tensor.to(dtype) for name, tensor in outputs.items()}}


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0, softcap=None, z_loss_scale=0.0, z_loss_weighting="count", return_outputs=()):
    """F.cross_entropy of c tanh(input / c), plus z_loss_scale * lse^2 per counted row; outputs on request."""
    _check(softcap, z_loss_scale, z_loss_weighting, return_outputs)
    legacy = {"size_average": size_average, "reduce": reduce} if (size_average, reduce) != (None, None) else None
    if legacy:
        reduction = torch.nn._reduction.legacy_get_string(size_average, reduce)
    loss, outputs = _extended(_opmath(input), _opmath(target), _opmath(weight), ignore_index, reduction,
                              label_smoothing, softcap, z_loss_scale, z_loss_weighting, tuple(return_outputs))
    return _finish(loss, outputs, input.dtype, return_outputs)


def _logits(input, linear_weight, linear_bias):
    """input @ linear_weight^T (+ bias), (C, d1, ..., dK) outputs kept: (N, C, d1, ..., dK) or (C,)."""
    flat = linear_weight.reshape(-1, linear_weight.shape[-1])
    logits = input @ flat.T
    if linear_bias is not None:
        logits = logits + linear_bias.reshape(-1)
    shape = tuple(linear_weight.shape[:-1])
    return logits.reshape(shape if input.dim() == 1 else (input.shape[0],) + shape)


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                         ignore_index=None, label_smoothing=0.0, softcap=None, z_loss_scale=0.0,
                         z_loss_weighting="count", return_outputs=()):
    """cross_entropy (above) of input @ linear_weight^T + linear_bias, the logits computed in float32 for 16-bit."""
    _check(softcap, z_loss_scale, z_loss_weighting, return_outputs)
    logits = _logits(_opmath(input), _opmath(linear_weight), _opmath(linear_bias))
    ignore_index = -100 if ignore_index is None else ignore_index
    loss, outputs = _extended(logits, _opmath(target), _opmath(weight), ignore_index, reduction, label_smoothing,
                              softcap, z_loss_scale, z_loss_weighting, tuple(return_outputs))
    return _finish(loss, outputs, input.dtype, return_outputs)


def compiled(device="cpu"):
    """This module's functions under torch.compile (inductor)."""
    import sys

    from .torch_backend import TorchBackend

    return TorchBackend(namespace=sys.modules[__name__], device=device, compile=True, name="reference-compiled")


def chunked(device="cpu"):
    """torch's F.linear_cross_entropy on its chunked path (no logits materialised), alone: the other functions
    are not offered. Named torch-linear-chunked: its declared deviations are cases/xfails/torch-linear-chunked.yaml."""
    from torch.nn import LinearCrossEntropyOptions

    from .torch_backend import TorchBackend

    def chunked_linear_cross_entropy(input, linear_weight, target, **kwargs):
        return F.linear_cross_entropy(input, linear_weight, target, options=LinearCrossEntropyOptions(), **kwargs)

    namespace = SimpleNamespace(__name__="torch-linear-chunked", linear_cross_entropy=chunked_linear_cross_entropy,
                                CONVENTIONS="torch")
    return TorchBackend(namespace=namespace, device=device, name="torch-linear-chunked")
