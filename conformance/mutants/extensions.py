"""Bugs of the extended contract (docs/extensions.md), as public fused-kernel trackers show them: softcap written
as x tanh(x / c), a z-loss added when it is switched off, the z-loss as the square of the mean lse, a bias gradient
taken from one row, an LSE without the max shift, and padding lanes softcapped to -c and counted. Each is the
reference implementation (conformance/backends/reference.py) with one change; the extension cases
(cases/cross_entropy_extensions.yaml, cases/linear_cross_entropy.yaml) must kill each.

Each factory returns a namespace for ``--backend conformance.mutants.extensions:<name>``.
"""
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from ..backends import reference
from ..spec.features import EXTENSION_FEATURES


def _namespace(description, **replacements):
    functions = {"cross_entropy": reference.cross_entropy, "linear_cross_entropy": reference.linear_cross_entropy}
    functions.update(replacements)
    return SimpleNamespace(__doc__=description, REPLACED=tuple(sorted(replacements)), CONVENTIONS="torch",
                           SUPPORTED_FEATURES=EXTENSION_FEATURES, **functions)


def _softcap_times_x(input, target, *args, softcap=None, **kwargs):
    """softcap as x tanh(x / c) instead of c tanh(x / c)."""
    if softcap is None:
        return reference.cross_entropy(input, target, *args, **kwargs)
    x = reference._opmath(input)
    return reference.cross_entropy(x * torch.tanh(x / softcap), target, *args, **kwargs).to(input.dtype)


def _z_loss_always_on(input, target, *args, z_loss_scale=0.0, **kwargs):
    """A z-loss of 1e-4 lse^2 added when z_loss_scale is 0 (the kernel's default scale, not the caller's)."""
    return reference.cross_entropy(input, target, *args, z_loss_scale=z_loss_scale or 1e-4, **kwargs)


def _z_loss_square_of_mean(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                           reduction="mean", label_smoothing=0.0, softcap=None, z_loss_scale=0.0,
                           z_loss_weighting="count", return_outputs=()):
    """'mean' z-loss as s (mean lse)^2 instead of mean(s lse^2)."""
    if not z_loss_scale or reduction != "mean" or return_outputs:
        return reference.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction,
                                       label_smoothing, softcap, z_loss_scale, z_loss_weighting, return_outputs)
    x = reference.softcapped(reference._opmath(input), softcap)
    loss = F.cross_entropy(x, target, weight=reference._opmath(weight), ignore_index=ignore_index,
                           label_smoothing=label_smoothing)
    counted = (target != ignore_index) if target.shape != input.shape else torch.ones_like(target[..., 0], dtype=bool)
    lse = torch.logsumexp(x, 0 if x.dim() == 1 else 1)
    mean_lse = torch.where(counted, lse, torch.zeros_like(lse)).sum() / counted.sum()
    return (loss + z_loss_scale * mean_lse * mean_lse).to(input.dtype)


def _lse_without_shift(input, target, *args, return_outputs=(), **kwargs):
    """The lse output computed as log(sum(exp(x))), without subtracting the maximum."""
    result = reference.cross_entropy(input, target, *args, return_outputs=return_outputs, **kwargs)
    if "lse" not in return_outputs:
        return result
    x = reference.softcapped(reference._opmath(input), kwargs.get("softcap"))
    result["lse"] = torch.log(torch.exp(x).sum(0 if x.dim() == 1 else 1)).to(input.dtype)
    return result


BLOCK = 1024


def _padding_counted(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                     reduction="mean", label_smoothing=0.0, softcap=None, z_loss_scale=0.0, z_loss_weighting="count",
                     return_outputs=()):
    """Rows padded with -inf to a multiple of 1024 lanes, then softcapped: each padding lane becomes -c and is
    counted in the softmax's normaliser (the kernel masks the load, not the softcapped value)."""
    plain = softcap is None or input.dim() != 2 or input.shape[1] % BLOCK == 0 or label_smoothing or \
        z_loss_scale or return_outputs or size_average is not None or reduce is not None
    if plain:
        return reference.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction,
                                       label_smoothing, softcap, z_loss_scale, z_loss_weighting, return_outputs)
    padded = F.pad(reference._opmath(input), (0, BLOCK - input.shape[1] % BLOCK), value=float("-inf"))
    capped = reference.softcapped(padded, softcap)
    log_p = capped[:, :input.shape[1]] - torch.logsumexp(capped, 1, keepdim=True)
    return F.nll_loss(log_p, target, weight=reference._opmath(weight), ignore_index=ignore_index,
                      reduction=reduction).to(input.dtype)


def _bias_gradient_averaged(input, linear_weight, target, *, linear_bias=None, **kwargs):
    """The bias gradient averaged over the rows where the rows' logit gradients are to be summed."""
    if linear_bias is None or input.dim() != 2:
        return reference.linear_cross_entropy(input, linear_weight, target, linear_bias=linear_bias, **kwargs)
    return reference.linear_cross_entropy(input, linear_weight, target, linear_bias=_AveragedGradient.apply(
        linear_bias, input.shape[0]), **kwargs)


class _AveragedGradient(torch.autograd.Function):
    """Identity forward; backward divides the bias gradient by the number of rows."""

    @staticmethod
    def forward(ctx, bias, rows):
        ctx.rows = rows
        return bias.view_as(bias)

    @staticmethod
    def backward(ctx, grad):
        return grad / max(ctx.rows, 1), None


CATALOG = {
    "softcap_times_x": lambda: _namespace("softcap written as x tanh(x / c)", cross_entropy=_softcap_times_x),
    "z_loss_when_off": lambda: _namespace("a z-loss of 1e-4 lse^2 added with z_loss_scale = 0",
                                          cross_entropy=_z_loss_always_on),
    "z_loss_square_of_mean": lambda: _namespace("'mean' z-loss as s (mean lse)^2",
                                                cross_entropy=_z_loss_square_of_mean),
    "lse_without_max_shift": lambda: _namespace("the lse output as log(sum(exp(x))), no max shift",
                                                cross_entropy=_lse_without_shift),
    "padding_lanes_softcapped": lambda: _namespace("-inf padding lanes softcapped to -c and counted",
                                                   cross_entropy=_padding_counted),
    "bias_gradient_averaged": lambda: _namespace("the bias gradient averaged over the rows, not summed",
                                                 linear_cross_entropy=_bias_gradient_averaged),
}


def __getattr__(name):  # --backend conformance.mutants.extensions:<name> resolves the catalog's factories
    if name in CATALOG:
        return CATALOG[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
