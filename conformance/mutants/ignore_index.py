"""ignore_index bugs of class-index losses: ignored rows that still count, or targets that are not ignored.

Each factory returns a namespace for ``--backend conformance.mutants.ignore_index:<name>``. Probability
targets, which know no ignore_index, go straight to torch.
"""
import torch
import torch.nn.functional as F

from ._base import mutant
from ._common import (
    accumulation_dtype,
    class_dim,
    effective_reduction,
    has_class_indices,
    mean_denominator,
    n_classes,
)


def _ignored_rows_counted_in_mean(loss_function):
    """'mean' = torch's 'sum' over the weight sum of every row; an ignored row weighs w[ignore_index] where that
    names a class, else 1 (there is no class to look up)."""
    def loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
             **kwargs):
        if effective_reduction(size_average, reduce, reduction) != "mean" or not has_class_indices(input, target):
            return loss_function(input, target, weight, size_average, ignore_index, reduce, reduction, **kwargs)
        total = loss_function(input, target, weight, None, ignore_index, None, "sum", **kwargs)
        acc = accumulation_dtype(input.dtype)
        ignored_weight = 1.0
        if weight is not None and 0 <= ignore_index < n_classes(input):
            ignored_weight = weight[ignore_index].to(acc)
        denominator = (mean_denominator(target, weight, ignore_index, acc)
                       + (target == ignore_index).sum().to(acc) * ignored_weight)
        return (total.to(acc) / denominator).to(input.dtype)
    return loss


def _smoothing_term_not_masked(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                               reduction="mean", label_smoothing=0.0):
    loss = F.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)
    if not label_smoothing > 0 or not has_class_indices(input, target) or not (target == ignore_index).any():
        return loss
    dim = class_dim(input)
    log_probs = F.log_softmax(input, dim)
    if weight is not None:
        log_probs = log_probs * weight.reshape([-1] + [1] * (input.dim() - dim - 1))
    # The smoothing term of the ignored rows, which torch masks to 0: added back.
    smoothing = -(label_smoothing / input.shape[dim]) * log_probs.sum(dim)
    extra = torch.where(target == ignore_index, smoothing, 0)
    mode = effective_reduction(size_average, reduce, reduction)
    if mode == "none":
        return loss + extra
    if mode == "sum":
        return loss + extra.sum()
    return loss + extra.sum() / mean_denominator(target, weight, ignore_index, extra.dtype)


def _ignore_index_used_as_index(loss_function):
    def loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
             **kwargs):
        n = n_classes(input)
        if ignore_index < 0 and n > 0 and has_class_indices(input, target):
            # Python's rule for a negative index: -100 on C = 6 classes reads class -100 % 6 = 2.
            target = torch.where(target == ignore_index, ignore_index % n, target).to(target.dtype)
        return loss_function(input, target, weight, size_average, ignore_index, reduce, reduction, **kwargs)
    return loss


def _ignore_index_in_range_treated_as_class(loss_function):
    def loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
             **kwargs):
        if 0 <= ignore_index < n_classes(input) and has_class_indices(input, target):
            # An ignore_index no target holds, and negative (no class): every other target keeps torch's checks.
            ignore_index = min(int(target.min()) - 1, -1) if target.numel() else -1
        return loss_function(input, target, weight, size_average, ignore_index, reduce, reduction, **kwargs)
    return loss


def ignored_rows_counted_in_mean():
    return mutant("class-index 'mean' divides by a weight sum that includes the ignored rows",
                  nll_loss=_ignored_rows_counted_in_mean(F.nll_loss),
                  cross_entropy=_ignored_rows_counted_in_mean(F.cross_entropy))


def smoothing_term_not_masked():
    return mutant("cross_entropy's label-smoothing term also sums over the rows whose target is ignore_index",
                  cross_entropy=_smoothing_term_not_masked)


def ignore_index_used_as_index():
    return mutant("targets equal to a negative ignore_index are read as class ignore_index mod C, like a negative "
                  "Python index, instead of being ignored",
                  nll_loss=_ignore_index_used_as_index(F.nll_loss),
                  cross_entropy=_ignore_index_used_as_index(F.cross_entropy))


def ignore_index_in_range_treated_as_class():
    return mutant("an ignore_index inside [0, C) is not honoured: its rows count as that class",
                  nll_loss=_ignore_index_in_range_treated_as_class(F.nll_loss),
                  cross_entropy=_ignore_index_in_range_treated_as_class(F.cross_entropy))


CATALOG = {factory.__name__: factory for factory in (
    ignored_rows_counted_in_mean, smoothing_term_not_masked, ignore_index_used_as_index,
    ignore_index_in_range_treated_as_class)}
