"""Reduction bugs: the wrong divisor for kl_div 'batchmean', a per-sample mean of K-dim losses, and an empty
'mean' that returns 0 instead of 0/0 = NaN.

Each factory returns a namespace for ``--backend conformance.mutants.reductions:<name>``.
"""
import math

import torch
import torch.nn.functional as F

from ._base import mutant
from ._common import (
    accumulation_dtype,
    counted_weights,
    effective_reduction,
    has_class_indices,
    mean_denominator,
)


def _kl_div_batchmean_over_numel(input, target, size_average=None, reduce=None, reduction="mean",
                                 log_target=False):
    if reduction != "batchmean":
        return F.kl_div(input, target, size_average, reduce, reduction, log_target)
    # torch: the sum (or, with legacy arguments, their reduction) over input.size(0), unless the input is 0-dim.
    total = F.kl_div(input, target, size_average, reduce, "sum", log_target)
    return total if input.dim() == 0 else total / input.numel()


def _mean_over_spatial_dims_only(loss_function):
    """'mean' of a K-dim loss: per sample n, sum_d l_{n,d} over its own denominator (the weighted count of its
    counted elements, or d1 * ... * dK for probabilities), and then the sum over n of those means."""
    def loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
             **kwargs):
        if effective_reduction(size_average, reduce, reduction) != "mean" or input.dim() < 3:
            return loss_function(input, target, weight, size_average, ignore_index, reduce, reduction, **kwargs)
        losses = loss_function(input, target, weight, None, ignore_index, None, "none", **kwargs)
        acc = accumulation_dtype(input.dtype)
        spatial = tuple(range(1, losses.dim()))
        if has_class_indices(input, target):
            denominators = counted_weights(target, weight, ignore_index, acc).sum(spatial)
        else:
            denominators = math.prod(losses.shape[1:])
        return (losses.to(acc).sum(spatial) / denominators).sum().to(input.dtype)
    return loss


def _empty_mean_is_zero(loss_function):
    def loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
             **kwargs):
        result = loss_function(input, target, weight, size_average, ignore_index, reduce, reduction, **kwargs)
        if effective_reduction(size_average, reduce, reduction) != "mean":
            return result
        if has_class_indices(input, target):
            nothing_counts = mean_denominator(target, weight, ignore_index, torch.float64) == 0
        else:  # probabilities: the mean divides by the number of rows
            nothing_counts = input.numel() == 0
        if not nothing_counts:
            return result
        # 0, with gradient 0 for every element (where, unlike 0 * x, stays 0 at inf and NaN).
        zero = torch.where(torch.zeros_like(input, dtype=torch.bool), input, 0).sum()
        if target.is_floating_point():
            zero = zero + torch.where(torch.zeros_like(target, dtype=torch.bool), target, 0).sum()
        return zero.to(result.dtype).reshape(result.shape)
    return loss


def batchmean_over_all_elements():
    return mutant("kl_div 'batchmean' divides by input.numel() instead of input.size(0)",
                  kl_div=_kl_div_batchmean_over_numel)


def mean_over_spatial_dims_only():
    return mutant("'mean' of a K-dim nll_loss or cross_entropy averages over d1, ..., dK per sample and then sums "
                  "over the batch",
                  nll_loss=_mean_over_spatial_dims_only(F.nll_loss),
                  cross_entropy=_mean_over_spatial_dims_only(F.cross_entropy))


def empty_mean_is_zero():
    return mutant("'mean' of nll_loss or cross_entropy returns 0, with zero gradients, instead of NaN when nothing "
                  "counts (every target ignored, zero total weight, an empty batch)",
                  nll_loss=_empty_mean_is_zero(F.nll_loss), cross_entropy=_empty_mean_is_zero(F.cross_entropy))


CATALOG = {factory.__name__: factory for factory in (
    batchmean_over_all_elements, mean_over_spatial_dims_only, empty_mean_is_zero)}
