"""The Kullback-Leibler divergence loss, pointwise and reduced, with its vector-Jacobian product."""
import mpmath
import numpy as np
from mpmath import mp

from ._mp import NAN, ONE, ZERO, Gradients, object_array, to_mpf_array, working_precision, wrap
from ._reduction import KL_REDUCTIONS, reduce_losses, reduction_factor, resolve_reduction
from .errors import ShapeMismatchError


def _pointwise(x, y, log_target):
    """(loss, its scale, d/dx, d/dy, the scale of d/dy) of one element, with the conventions of
    docs/spec-notes.md ("kl_div"); the scale of d/dx is |d/dx|, a single term."""
    if mpmath.isnan(x) or mpmath.isnan(y):
        return NAN, NAN, NAN, NAN, NAN
    if log_target:
        if y == -mpmath.inf:  # p = exp(-inf) = 0: the 0 log 0 = 0 convention; d/dy is the limit e^y (y - x + 1) -> 0
            return ZERO, ZERO, ZERO, ZERO, ZERO
        p = mp.exp(y)
        return p * (y - x), p * (abs(y) + abs(x)), -p, p * (y - x + 1), p * (abs(y) + abs(x) + 1)
    if y == 0:  # 0 * log(0 / q) = 0 for every q; d/dy does not exist at the boundary of the domain
        return ZERO, ZERO, ZERO, NAN, NAN
    if y < 0:  # log of a negative target is undefined over the reals
        return NAN, NAN, NAN, NAN, NAN
    log_y = mp.log(y)
    return y * (log_y - x), y * (abs(log_y) + abs(x)), -y, log_y - x + 1, abs(log_y) + abs(x) + 1


def _operands(input, target, allow_broadcast):
    inputs, targets = to_mpf_array(input), to_mpf_array(target, "target")
    if inputs.shape != targets.shape:
        if not allow_broadcast:
            raise ShapeMismatchError(f"target has shape {targets.shape}; it must have the input's shape {inputs.shape}")
        try:
            shape = np.broadcast_shapes(inputs.shape, targets.shape)
        except ValueError as error:
            raise ShapeMismatchError(f"shapes {inputs.shape} and {targets.shape} do not broadcast") from error
        inputs, targets = np.broadcast_to(inputs, shape), np.broadcast_to(targets, shape)
    return inputs, targets


def _denominator(reduction, inputs, input_shape):
    if reduction == "batchmean":  # "loss_pointwise.sum() / input.size(0)"; a 0-dim input is one sample
        return ONE * (input_shape[0] if len(input_shape) else 1)
    return ONE * inputs.size


def _evaluate(input, target, size_average, reduce, reduction, log_target, allow_broadcast):
    reduction = resolve_reduction(reduction, size_average, reduce, KL_REDUCTIONS)
    inputs, targets = _operands(input, target, allow_broadcast)
    parts = [_pointwise(x, y, bool(log_target)) for x, y in zip(inputs.flat, targets.flat)]
    columns = [object_array([part[k] for part in parts], inputs.shape) for k in range(5)]
    return reduction, inputs, _denominator(reduction, inputs, np.shape(input)), columns


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False,
           *, allow_broadcast=False, prec=None, return_scale=False):
    """KL divergence loss, as documented for torch.nn.KLDivLoss (input and target log-space as flagged).

    l = y (log y - x), or with log_target=True, l = exp(y) (y - x); reduced by
    'mean': sum(L) / numel, 'batchmean': sum(L) / input.size(0), 'sum': sum(L), 'none': L.
    Target of the input's shape; allow_broadcast=True accepts broadcastable shapes as torch does (an extension).
    """
    with working_precision(prec):
        reduction, _, denominator, (losses, scales, _, _, _) = _evaluate(
            input, target, size_average, reduce, reduction, log_target, allow_broadcast)
        value, scale = reduce_losses(losses, scales, reduction, denominator)
    return wrap(value, scale, return_scale)


def kl_div_vjp(input, target, grad_output, size_average=None, reduce=None, reduction="mean", log_target=False,
               *, allow_broadcast=False, prec=None, return_scale=False):
    """Gradients of kl_div contracted with grad_output g (g divided by the mean's divisor where it applies):

    log_target=False:  d/dx = -y g,      d/dy = (log y - x + 1) g   (NaN at y = 0, see docs/spec-notes.md)
    log_target=True:   d/dx = -e^y g,    d/dy = e^y (y - x + 1) g   (0 at y = -inf)
    With broadcasting, each gradient is summed back to its operand's shape.
    """
    with working_precision(prec):
        reduction, inputs, denominator, (_, _, d_input, d_target, d_target_scale) = _evaluate(
            input, target, size_average, reduce, reduction, log_target, allow_broadcast)
        upstream = reduction_factor(to_mpf_array(grad_output, "grad_output"), reduction, inputs.shape, denominator)
        times = np.frompyfunc(lambda d, g: d * g, 2, 1)
        abs_times = np.frompyfunc(lambda d, g: abs(d * g), 2, 1)
        results = []
        for partial, partial_scale, operand in ((d_input, d_input, input), (d_target, d_target_scale, target)):
            value = _sum_to_shape(np.asarray(times(partial, upstream), dtype=object), np.shape(operand))
            scale = _sum_to_shape(np.asarray(abs_times(partial_scale, upstream), dtype=object), np.shape(operand))
            results.append(wrap(value, scale, return_scale))
    return Gradients(*results)


def _sum_to_shape(values, shape):
    """Undo broadcasting: sum over the axes that broadcasting added or stretched."""
    if values.shape == tuple(shape):
        return values
    leading = values.ndim - len(shape)
    summed = values.sum(axis=tuple(range(leading))) if leading else values
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and summed.shape[i] != 1)
    return summed.sum(axis=stretched, keepdims=True) if stretched else summed
