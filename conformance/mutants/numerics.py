"""Numerical and formula bugs of softmax-based losses (the bugs named by the tolerance calibration issue).

Each factory returns a namespace for ``--backend conformance.mutants.numerics:<name>``.
"""
import torch
import torch.nn.functional as F

from oracle import implicit_dim

from ._base import mutant
from ._common import class_dim, n_classes


def _softmax_dim(x, dim=None):
    """dim, or torch's implicit rule for dim=None (as the oracle documents it)."""
    return implicit_dim(x.dim()) if dim is None else dim


def _sum_in_input_dtype(values, dim):
    """Recursive summation with every partial sum rounded to the input dtype (no float32 accumulator)."""
    if values.dim() == 0 or values.shape[dim] == 0:
        return values.sum(dim, keepdim=True) if values.dim() else values
    moved = values.movedim(dim, -1)
    total = torch.zeros_like(moved[..., 0])
    for k in range(moved.shape[-1]):
        total = total + moved[..., k]
    return total.unsqueeze(-1).movedim(-1, dim)


def _log_softmax_low_precision_sum(x, dim=None, **_):
    dim = _softmax_dim(x, dim)
    if x.numel() == 0:  # nothing to sum (amax rejects empty rows)
        return F.log_softmax(x, dim)
    shifted = x - x.amax(dim, keepdim=True)
    return shifted - torch.log(_sum_in_input_dtype(torch.exp(shifted), dim))


def _softmax_low_precision_sum(x, dim=None, **_):
    dim = _softmax_dim(x, dim)
    if x.numel() == 0:
        return F.softmax(x, dim)
    exps = torch.exp(x - x.amax(dim, keepdim=True))
    return exps / _sum_in_input_dtype(exps, dim)


def _softmax_without_max(x, dim=None, **_):
    exps = torch.exp(x)
    return exps / exps.sum(_softmax_dim(x, dim), keepdim=True)


def _log_softmax_without_max(x, dim=None, **_):
    return x - torch.log(torch.exp(x).sum(_softmax_dim(x, dim), keepdim=True))


def _log_of_softmax(x, dim=None, **_):
    return torch.log(F.softmax(x, _softmax_dim(x, dim)))


def _cross_entropy_with(log_softmax):
    """cross_entropy built on the mutant's log-probabilities: nll_loss of them for class indices without smoothing
    (as torch itself composes it); otherwise torch's cross_entropy of them, whose own log_softmax re-normalises
    (so the mutant shows there only through rounding). Every other rule stays torch's."""
    def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                      reduction="mean", label_smoothing=0.0):
        log_probs = log_softmax(input, class_dim(input))
        if not target.is_floating_point() and label_smoothing == 0.0:
            return F.nll_loss(log_probs, target, weight, size_average, ignore_index, reduce, reduction)
        return F.cross_entropy(log_probs, target, weight, size_average, ignore_index, reduce, reduction,
                               label_smoothing)
    return cross_entropy


def _label_smoothing_over_c_minus_1(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                                    reduction="mean", label_smoothing=0.0):
    # (1 - e) on the target and e / (C - 1) on the others equals torch's smoothing with e * C / (C - 1).
    classes = n_classes(input)
    if label_smoothing and not target.is_floating_point() and classes > 1:
        label_smoothing = label_smoothing * classes / (classes - 1)
    return F.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)


def _mean_over_count(loss_function):
    def loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
             **kwargs):
        if size_average is None and reduce is None and reduction == "mean" and not target.is_floating_point():
            total = loss_function(input, target, weight, None, ignore_index, None, "sum", **kwargs)
            return total / (target != ignore_index).sum()  # the count of rows, not the sum of their weights
        return loss_function(input, target, weight, size_average, ignore_index, reduce, reduction, **kwargs)
    return loss


def low_precision_accumulation():
    return mutant("sums of exp (softmax, log_softmax, cross_entropy) accumulated in the input dtype",
                  softmax=_softmax_low_precision_sum, log_softmax=_log_softmax_low_precision_sum,
                  cross_entropy=_cross_entropy_with(_log_softmax_low_precision_sum))


def softmax_without_max():
    return mutant("softmax and log_softmax without subtracting the row maximum",
                  softmax=_softmax_without_max, log_softmax=_log_softmax_without_max,
                  cross_entropy=_cross_entropy_with(_log_softmax_without_max))


def log_of_softmax():
    return mutant("log(softmax(x)) instead of log_softmax(x)",
                  log_softmax=_log_of_softmax, cross_entropy=_cross_entropy_with(_log_of_softmax))


def label_smoothing_over_c_minus_1():
    return mutant("label smoothing spread over the C - 1 other classes instead of all C",
                  cross_entropy=_label_smoothing_over_c_minus_1)


def mean_over_count():
    return mutant("weighted 'mean' divided by the number of counted rows instead of the sum of their weights",
                  nll_loss=_mean_over_count(F.nll_loss), cross_entropy=_mean_over_count(F.cross_entropy))


CATALOG = {factory.__name__: factory for factory in (
    low_precision_accumulation, softmax_without_max, log_of_softmax, label_smoothing_over_c_minus_1,
    mean_over_count)}
