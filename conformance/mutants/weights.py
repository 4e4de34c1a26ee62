"""Class-weight bugs of nll_loss and cross_entropy: weights applied twice, forgotten, or stripped of their sign.

Each factory returns a namespace for ``--backend conformance.mutants.weights:<name>``.
"""
import torch
import torch.nn.functional as F

from ._base import mutant
from ._common import effective_reduction, has_class_indices, mean_denominator, n_classes


def _with_weight(loss_function, transform):
    """``loss_function`` called with ``transform(weight)`` in place of the class weights; all else torch's."""
    def loss(input, target, weight=None, *args, **kwargs):
        return loss_function(input, target, None if weight is None else transform(weight), *args, **kwargs)
    return loss


def _square(weight):
    return weight * weight


def _smoothing_term_unweighted(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                               reduction="mean", label_smoothing=0.0):
    if weight is None or not 0 < label_smoothing <= 1:  # torch raises above 1 and ignores <= 0 and NaN
        return F.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction,
                               label_smoothing)
    legacy = (size_average, ignore_index, reduce, reduction)
    # torch's composition (1 - e) * unsmoothed + (e / C) * smoothing term, the smoothing term without weights:
    # -sum_c log p_c per row is cross_entropy against an all-ones (unnormalised) probability target.
    unsmoothed = F.cross_entropy(input, target, weight, *legacy, 0.0)
    ones = torch.ones_like(input, requires_grad=False)
    scale = label_smoothing / n_classes(input)
    if not has_class_indices(input, target):  # probabilities: both means divide by N * d1 * ... * dK
        return (1 - label_smoothing) * unsmoothed + scale * F.cross_entropy(input, ones, None, *legacy, 0.0)
    rows = F.cross_entropy(input, ones, reduction="none")
    rows = torch.where(target == ignore_index, 0, rows)  # ignored rows contribute nothing, as in torch
    mode = effective_reduction(size_average, reduce, reduction)
    if mode == "sum":
        rows = rows.sum()
    elif mode == "mean":  # over torch's class-index denominator, the weighted count of the rows
        rows = rows.sum() / mean_denominator(target, weight, ignore_index, rows.dtype)
    return (1 - label_smoothing) * unsmoothed + scale * rows


def weights_applied_twice():
    return mutant("class weights applied twice, so every term and the 'mean' denominator weigh w_c squared",
                  nll_loss=_with_weight(F.nll_loss, _square),
                  cross_entropy=_with_weight(F.cross_entropy, _square))


def smoothing_term_unweighted():
    return mutant("cross_entropy's label-smoothing term ignores the class weights",
                  cross_entropy=_smoothing_term_unweighted)


def negative_weights_made_positive():
    return mutant("negative class weights are replaced by their absolute values",
                  nll_loss=_with_weight(F.nll_loss, torch.abs),
                  cross_entropy=_with_weight(F.cross_entropy, torch.abs))


CATALOG = {factory.__name__: factory for factory in (
    weights_applied_twice, smoothing_term_unweighted, negative_weights_made_positive)}
