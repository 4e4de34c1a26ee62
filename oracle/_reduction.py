"""The reduction argument, its deprecated size_average/reduce spelling, and the reductions themselves."""
import numpy as np

from ._mp import object_array
from .errors import UnknownReductionError

LOSS_REDUCTIONS = ("none", "mean", "sum")
KL_REDUCTIONS = ("none", "mean", "batchmean", "sum")


def resolve_reduction(reduction, size_average, reduce, allowed):
    """The reduction in force, as the docs define it.

    "size_average and reduce are in the process of being deprecated, and in the meantime, specifying either of
    those two args will override reduction." An unspecified one of the two defaults to True; reduce=False gives
    'none' whatever size_average says; otherwise size_average chooses 'mean' (True) or 'sum' (False).
    """
    for name, flag in (("size_average", size_average), ("reduce", reduce)):
        if flag is not None and not isinstance(flag, (bool, np.bool_)):
            raise UnknownReductionError(f"{name} must be True, False or None, got {flag!r}")
    if size_average is not None or reduce is not None:
        if reduce is False:
            return "none"
        return "sum" if size_average is False else "mean"
    if not isinstance(reduction, str) or reduction not in allowed:
        accepted = ", ".join(repr(r) for r in allowed)
        raise UnknownReductionError(f"reduction={reduction!r} is not one of {accepted}")
    return reduction


def reduce_losses(engine, losses, scales, reduction, denominator=None):
    """Apply 'none', 'sum' or a mean with the given denominator; return (values, scales) as object arrays."""
    if reduction == "none":
        return losses, scales
    total, total_scale = engine.fsum(list(losses.flat)), engine.fsum(list(scales.flat))
    if reduction != "sum":
        total = engine.divide(total, denominator)
        total_scale = engine.divide(total_scale, abs(denominator))
    return object_array([total], ()), object_array([total_scale], ())


def reduction_factor(engine, grad_output, reduction, out_shape, denominator=None):
    """The upstream gradient per unreduced loss element (numbers in C order): grad_output itself, broadcast, or
    divided by the mean's denominator. grad_output is an exact array (oracle/_exact.py)."""
    if reduction == "none":
        if grad_output.shape != tuple(out_shape):
            raise ValueError(f"grad_output has shape {grad_output.shape}, expected {tuple(out_shape)}")
        return engine.numbers(grad_output)
    if grad_output.shape not in ((), (1,)):
        raise ValueError(f"grad_output must be a scalar for reduction={reduction!r}, got shape {grad_output.shape}")
    scalar = engine.numbers(grad_output)[0]
    if reduction != "sum":
        scalar = engine.divide(scalar, denominator)
    return [scalar] * int(np.prod(out_shape, dtype=np.int64))
