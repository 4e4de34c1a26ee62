"""The Kullback-Leibler divergence loss, pointwise and reduced, with its vector-Jacobian product."""
import numpy as np

from ._dispatch import oracle_function
from ._engine import current_engine
from ._exact import exact_array, is_negative, is_zero, isnan, isneginf
from ._mp import Evaluation, Gradients
from ._reduction import KL_REDUCTIONS, reduce_losses, reduction_factor, resolve_reduction
from .errors import ShapeMismatchError

FORWARD = ("loss", "loss_scale")
BACKWARD = ("d_input", "d_target", "d_target_scale")  # the scale of d/dx is |d/dx|, a single term


def _regular_parts(engine, x, y, log_target, wanted):
    """The wanted parts for elements with finite-or-not x and a target that has a logarithm (y > 0, or any
    finite log-target). Names: loss, loss_scale, d_input, d_target, d_target_scale (docs/spec-notes.md, "kl_div")."""
    xs, ys = engine.numbers(x), engine.numbers(y)
    parts = {}
    if log_target:
        p = list(map(engine.exp, ys))
        formulas = {
            "loss": lambda: [q * (b - a) for q, a, b in zip(p, xs, ys)],
            "loss_scale": lambda: [q * (abs(b) + abs(a)) for q, a, b in zip(p, xs, ys)],
            "d_input": lambda: [-q for q in p],
            "d_target": lambda: [q * (b - a + 1) for q, a, b in zip(p, xs, ys)],
            "d_target_scale": lambda: [q * (abs(b) + abs(a) + 1) for q, a, b in zip(p, xs, ys)]}
    else:
        logs = engine.logs_of_positive(ys)  # y > 0: decided on the exact targets
        formulas = {
            "loss": lambda: [b * (lb - a) for a, b, lb in zip(xs, ys, logs)],
            "loss_scale": lambda: [b * (abs(lb) + abs(a)) for a, b, lb in zip(xs, ys, logs)],
            "d_input": lambda: [-b for b in ys],
            "d_target": lambda: [lb - a + 1 for a, lb in zip(xs, logs)],
            "d_target_scale": lambda: [abs(lb) + abs(a) + 1 for a, lb in zip(xs, logs)]}
    for name in wanted:
        parts[name] = formulas[name]()
    return parts


def _pointwise(engine, inputs, targets, log_target, wanted):
    """{part: object array over the (broadcast) shape}, with the conventions of docs/spec-notes.md ("kl_div"):
    a NaN operand gives NaN everywhere; a log-target of -inf (p = 0) gives 0 everywhere (0 log 0 = 0, d/dy the
    limit 0); a target of 0 gives loss 0 and d/dx 0 whatever the input, and d/dy NaN (the domain's boundary);
    a negative target has no real logarithm: NaN everywhere."""
    x, y = inputs.reshape(-1), targets.reshape(-1)
    nan = isnan(x) | isnan(y)
    if log_target:
        zero_all, nan_all, boundary = ~nan & isneginf(y), nan, np.zeros(x.shape, dtype=bool)
    else:
        zero_all, boundary = np.zeros(x.shape, dtype=bool), ~nan & is_zero(y)
        nan_all = nan | (~nan & is_negative(y))
    regular = ~(nan_all | zero_all | boundary)
    index = np.flatnonzero(regular)
    computed = _regular_parts(engine, x[index], y[index], log_target, wanted)
    result = {}
    for name in wanted:
        column = np.empty(x.shape, dtype=object)
        column[index] = _object_vector(computed[name])
        _fill(column, zero_all, engine, "zero")
        _fill(column, nan_all, engine, "nan")
        _fill(column, boundary, engine, "nan" if name in ("d_target", "d_target_scale") else "zero")
        result[name] = column.reshape(inputs.shape)
    return result


def _object_vector(values):
    vector = np.empty(len(values), dtype=object)
    vector[:] = values
    return vector


def _fill(column, mask, engine, kind):
    if mask.any():  # ask the engine for the constant only where it is used: the arb engine has no NaN
        column[mask] = getattr(engine, kind)


def _operands(input, target, allow_broadcast):
    inputs, targets = exact_array(input), exact_array(target, "target")
    if inputs.shape != targets.shape:
        if not allow_broadcast:
            raise ShapeMismatchError(f"target has shape {targets.shape}; it must have the input's shape {inputs.shape}")
        try:
            shape = np.broadcast_shapes(inputs.shape, targets.shape)
        except ValueError as error:
            raise ShapeMismatchError(f"shapes {inputs.shape} and {targets.shape} do not broadcast") from error
        inputs, targets = np.broadcast_to(inputs, shape), np.broadcast_to(targets, shape)
    return inputs, targets


def _denominator(engine, reduction, inputs, input_shape):
    if reduction == "batchmean":  # "loss_pointwise.sum() / input.size(0)"; a 0-dim input is one sample
        return engine.number(input_shape[0] if len(input_shape) else 1)
    return engine.number(inputs.size)


@oracle_function
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False, *,
           allow_broadcast=False):
    """KL divergence loss, as documented for torch.nn.KLDivLoss (input and target log-space as flagged).

    l = y (log y - x), or with log_target=True, l = exp(y) (y - x); reduced by
    'mean': sum(L) / numel, 'batchmean': sum(L) / input.size(0), 'sum': sum(L), 'none': L.
    Target of the input's shape; allow_broadcast=True accepts broadcastable shapes as torch does (an extension).
    """
    engine = current_engine()
    reduction = resolve_reduction(reduction, size_average, reduce, KL_REDUCTIONS)
    inputs, targets = _operands(input, target, allow_broadcast)
    parts = _pointwise(engine, inputs, targets, bool(log_target), FORWARD)
    denominator = _denominator(engine, reduction, inputs, np.shape(input))
    return Evaluation(*reduce_losses(engine, parts["loss"], parts["loss_scale"], reduction, denominator))


@oracle_function
def kl_div_vjp(input, target, grad_output, size_average=None, reduce=None, reduction="mean", log_target=False, *,
               allow_broadcast=False):
    """Gradients of kl_div contracted with grad_output g (g divided by the mean's divisor where it applies):

    log_target=False:  d/dx = -y g,      d/dy = (log y - x + 1) g   (NaN at y = 0, see docs/spec-notes.md)
    log_target=True:   d/dx = -e^y g,    d/dy = e^y (y - x + 1) g   (0 at y = -inf)
    With broadcasting, each gradient is summed back to its operand's shape.
    """
    engine = current_engine()
    reduction = resolve_reduction(reduction, size_average, reduce, KL_REDUCTIONS)
    inputs, targets = _operands(input, target, allow_broadcast)
    parts = _pointwise(engine, inputs, targets, bool(log_target), BACKWARD)
    denominator = _denominator(engine, reduction, inputs, np.shape(input))
    upstream = reduction_factor(engine, exact_array(grad_output, "grad_output"), reduction, inputs.shape,
                                denominator)
    results = []
    for partial, partial_scale, operand in ((parts["d_input"], parts["d_input"], input),
                                            (parts["d_target"], parts["d_target_scale"], target)):
        value = _object_vector([d * g for d, g in zip(partial.flat, upstream)]).reshape(inputs.shape)
        scale = _object_vector([abs(d * g) for d, g in zip(partial_scale.flat, upstream)]).reshape(inputs.shape)
        results.append(Evaluation(_sum_to_shape(value, np.shape(operand)), _sum_to_shape(scale, np.shape(operand))))
    return Gradients(*results)


def _sum_to_shape(values, shape):
    """Undo broadcasting: sum over the axes that broadcasting added or stretched."""
    if values.shape == tuple(shape):
        return values
    leading = values.ndim - len(shape)
    summed = values.sum(axis=tuple(range(leading))) if leading else values
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and summed.shape[i] != 1)
    return summed.sum(axis=stretched, keepdims=True) if stretched else summed
