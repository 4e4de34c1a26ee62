"""kl_div bugs around the edges of its domain: zero and negative targets, and the log_target flag.

Each factory returns a namespace for ``--backend conformance.mutants.kl:<name>``. The mutants feed torch's own
kl_div with changed operands, so reductions, legacy arguments and gradients stay torch's. Calls whose target does
not have the input's shape (torch broadcasts them; the docs reject them) go straight to torch, as do calls the
bug does not concern.
"""
import torch
import torch.nn.functional as F

from ._base import mutant


def _pointwise_changes_apply(input, target, log_target):
    return not log_target and target.shape == input.shape


def _kl_div_zero_target_nan(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    if _pointwise_changes_apply(input, target, log_target):
        # y * (log y - x) taken literally is 0 * -inf = NaN at y = 0; torch's xlogy(y, y) - y * x is NaN there
        # exactly when x is. The input gradient there stays -y * g = 0, as the literal formula's.
        input = torch.where(target == 0, torch.nan, input)
    return F.kl_div(input, target, size_average, reduce, reduction, log_target)


def _kl_div_log_target_ignored(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    return F.kl_div(input, target, size_average, reduce, reduction, False)


def _kl_div_old_masked_formula(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    if _pointwise_changes_apply(input, target, log_target):
        # where(y > 0, y * (log y - x), 0). At y = 0 torch already gives 0 (finite x), so only the negative targets
        # are masked here: element and both gradients exactly 0 there. A NaN target is not masked and propagates.
        negative = target < 0
        input = torch.where(negative, 0.0, input)
        target = torch.where(negative, 0.0, target)
    return F.kl_div(input, target, size_average, reduce, reduction, log_target)


def kl_zero_target_nan():
    return mutant("kl_div computes y * (log y - x) literally, so a zero target gives NaN (0 * -inf) instead of 0",
                  kl_div=_kl_div_zero_target_nan)


def log_target_ignored():
    return mutant("kl_div drops log_target=True and treats log-probability targets as probabilities",
                  kl_div=_kl_div_log_target_ignored)


def kl_old_masked_formula():
    return mutant("kl_div uses the old masked formula that gives 0 for every target <= 0, so negative targets "
                  "give 0 instead of NaN",
                  kl_div=_kl_div_old_masked_formula)


CATALOG = {factory.__name__: factory for factory in (kl_zero_target_nan, log_target_ignored, kl_old_masked_formula)}
