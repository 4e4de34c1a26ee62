"""Label-smoothing bugs of cross_entropy: the smoothing applied twice, or its mass dropped.

Each factory returns a namespace for ``--backend conformance.mutants.smoothing:<name>``. Only calls that smooth
(``label_smoothing > 0``, as torch decides it) are changed; every other call goes straight to torch.
"""
import torch.nn.functional as F

from ._base import mutant
from ._common import n_classes


def _smooths(label_smoothing):
    """torch smooths only for 0 < e <= 1 (it ignores e <= 0 and NaN, and raises for e > 1: left to torch)."""
    return 0.0 < label_smoothing <= 1.0


def _holds_probabilities(input, target):
    """torch's dispatch rule: a target of exactly the input's shape holds class probabilities."""
    return input.dim() > 0 and target.shape == input.shape


def _cross_entropy_smoothed_twice(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                                  reduction="mean", label_smoothing=0.0):
    if _smooths(label_smoothing) and _holds_probabilities(input, target) and target.is_floating_point():
        target = (1.0 - label_smoothing) * target + label_smoothing / n_classes(input)  # torch smooths it once more
    return F.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)


def _cross_entropy_mass_on_target_only(input, target, weight=None, size_average=None, ignore_index=-100,
                                       reduce=None, reduction="mean", label_smoothing=0.0):
    if _smooths(label_smoothing) and not _holds_probabilities(input, target):
        # (1 - e) on the target class, and the e / C spread over all classes forgotten
        unsmoothed = F.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, 0.0)
        return (1.0 - label_smoothing) * unsmoothed
    return F.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)


def probability_targets_smoothed_twice():
    return mutant("cross_entropy smooths class-probability targets itself and then passes label_smoothing on, so "
                  "the target is smoothed twice",
                  cross_entropy=_cross_entropy_smoothed_twice)


def smoothing_mass_on_target_only():
    return mutant("cross_entropy with class indices keeps the (1 - e) coefficient on the target class but drops "
                  "the e / C smoothing term",
                  cross_entropy=_cross_entropy_mass_on_target_only)


CATALOG = {factory.__name__: factory for factory in (
    probability_targets_smoothed_twice, smoothing_mass_on_target_only)}
