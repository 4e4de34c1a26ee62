"""torch's own rules that several mutant families need, so that each mutant changes only its one thing.

Class dim, target kind, the reduction in effect (legacy size_average/reduce resolved as torch resolves them) and
the class-index 'mean' denominator, all as torch 2.13 computes them.
"""
import torch

from ..spec import classes


def class_dim(input):
    """0 for an unbatched (C) input, else 1: (N, C) and (N, C, d1, ..., dK) (conformance/spec/classes.py)."""
    return classes.class_dim(input.dim())


def n_classes(input):
    return input.shape[class_dim(input)] if input.dim() else 0


def has_class_indices(input, target):
    """torch's dispatch: a target of the input's shape holds probabilities, any other holds class indices."""
    return target.shape != input.shape and not target.is_floating_point() and target.dtype != torch.bool


def effective_reduction(size_average, reduce, reduction):
    """The reduction torch applies: the legacy arguments override ``reduction`` when either is given."""
    if size_average is not None or reduce is not None:
        return torch.nn._reduction.legacy_get_string(size_average, reduce, emit_warning=False)
    return "mean" if reduction == "elementwise_mean" else reduction  # torch's deprecated alias


def accumulation_dtype(dtype):
    """float64 for float64, float32 for the rest (as torch's kernels accumulate)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def counted_weights(target, weight, ignore_index, dtype):
    """``w_{y} 1{y != ignore_index}`` per target element (1 for a counted row without weights), in ``dtype``.

    The targets must already be valid (call torch first: it raises for out-of-range targets).
    """
    counted = target != ignore_index
    if weight is None:
        return counted.to(dtype)
    safe = torch.where(counted, target, torch.zeros_like(target)).long()  # uint8 would index as a mask
    return torch.where(counted, weight.to(dtype)[safe], 0)


def mean_denominator(target, weight, ignore_index, dtype):
    """The class-index 'mean' denominator: ``sum_n w_{y_n} 1{y_n != ignore_index}``."""
    return counted_weights(target, weight, ignore_index, dtype).sum()
