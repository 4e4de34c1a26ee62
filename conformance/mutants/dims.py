"""Wrong-dimension bugs: softmax taken along the last dim where another one is meant.

Each factory returns a namespace for ``--backend conformance.mutants.dims:<name>``. Only the calls whose dim the
bug concerns are changed; invalid dims (out of range, not an int) still go to torch, which raises.
"""
import torch.nn.functional as F

from ._base import mutant


def _valid_dim(input, dim):
    rank = max(input.dim(), 1)  # a 0-dim tensor accepts -1 and 0
    return isinstance(dim, int) and not isinstance(dim, bool) and -rank <= dim < rank


def _with_dim_rule(softmax_function, rule):
    """softmax_function with the dim replaced by ``rule(input, dim)`` (None: keep the caller's dim)."""
    def function(input, dim=None, _stacklevel=3, dtype=None):
        chosen = rule(input, dim)
        return softmax_function(input, dim if chosen is None else chosen, _stacklevel, dtype)
    function.__name__ = softmax_function.__name__
    return function


def _implicit_last(input, dim):
    return -1 if dim is None else None  # torch: 0 for 0-, 1- and 3-dim inputs, else 1


def _explicit_ignored_for_rank3(input, dim):
    return -1 if input.dim() >= 3 and _valid_dim(input, dim) else None


def _cross_entropy_classes_last(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                                reduction="mean", label_smoothing=0.0):
    if input.dim() <= 2:
        return F.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)
    log_probs = F.log_softmax(input, -1)  # should be dim 1, the class dim
    if target.shape != input.shape and not label_smoothing > 0.0:
        return F.nll_loss(log_probs, target, weight, size_average, ignore_index, reduce, reduction)
    # probabilities or smoothing: torch's cross_entropy of the wrong log-probabilities (it re-normalises over dim 1,
    # which does not undo a normalisation over the last dim)
    return F.cross_entropy(log_probs, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)


def implicit_dim_last():
    return mutant("softmax and log_softmax with dim=None use the last dim instead of the documented implicit rule "
                  "(dim 0 for 0-, 1- and 3-dim inputs, else 1)",
                  softmax=_with_dim_rule(F.softmax, _implicit_last),
                  log_softmax=_with_dim_rule(F.log_softmax, _implicit_last))


def kdim_classes_last():
    return mutant("cross_entropy on K-dim inputs (N, C, d1, ...) takes the log_softmax over the last dim instead of "
                  "the class dim 1",
                  cross_entropy=_cross_entropy_classes_last)


def softmax_dim_ignored_for_rank3():
    return mutant("softmax and log_softmax on inputs of rank 3 or more ignore an explicit dim and use the last one",
                  softmax=_with_dim_rule(F.softmax, _explicit_ignored_for_rank3),
                  log_softmax=_with_dim_rule(F.log_softmax, _explicit_ignored_for_rank3))


CATALOG = {factory.__name__: factory for factory in (implicit_dim_last, kdim_classes_last,
                                                     softmax_dim_ignored_for_rank3)}
