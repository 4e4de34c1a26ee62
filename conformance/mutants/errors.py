"""Missing argument checks: inputs the documentation rules out are quietly made valid instead of raising.

Each factory returns a namespace for ``--backend conformance.mutants.errors:<name>``.
"""
import torch
import torch.nn.functional as F

from ._base import mutant
from ._common import has_class_indices, n_classes


def _out_of_range_targets_clamped(loss_function):
    def loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
             **kwargs):
        n = n_classes(input)
        if n > 0 and has_class_indices(input, target):
            # Every target but ignore_index clamped into [0, C): no out-of-range error is left for torch to raise.
            target = torch.where(target == ignore_index, target, target.clamp(0, n - 1))
        return loss_function(input, target, weight, size_average, ignore_index, reduce, reduction, **kwargs)
    return loss


def _label_smoothing_clamped(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                             reduction="mean", label_smoothing=0.0):
    label_smoothing = min(label_smoothing, 1.0)  # torch raises above 1; NaN and negative values stay as they are
    return F.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)


def out_of_range_targets_clamped():
    return mutant("class-index targets outside [0, C), other than ignore_index, are clamped into range instead of "
                  "raising",
                  nll_loss=_out_of_range_targets_clamped(F.nll_loss),
                  cross_entropy=_out_of_range_targets_clamped(F.cross_entropy))


def label_smoothing_above_one_accepted():
    return mutant("cross_entropy accepts label_smoothing > 1 (clamped to 1.0) instead of raising",
                  cross_entropy=_label_smoothing_clamped)


CATALOG = {factory.__name__: factory for factory in (out_of_range_targets_clamped, label_smoothing_above_one_accepted)}
