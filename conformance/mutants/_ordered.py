"""Correct kernels of the five functions that differ from each other only in the order of their floating-point
sums: sequential (one accumulator), k lanes (k accumulators, each summing every k-th term, then a tree), pairwise
(a balanced tree), and a GPU/Triton-like tile tree (a tree inside each tile of B terms, then a sequential loop over
the tiles). docs/tolerances.md, "The accumulation term", derives the budgets every one of them must meet.

The arithmetic is numpy's, in the accumulation dtype (float64 for float64, float32 for the rest): every sum in the
chosen order, every other operation correctly rounded (exp and log are evaluated in float64 and rounded once), the
result rounded once to the dtype; gradients reuse the forward's intermediates in the accumulation dtype. Argument
checking is torch's plus the documented rules torch does not enforce (docs/spec-notes.md): the designs are judged
on their arithmetic alone. cross_entropy also offers the fused kernels' choices (the gradient stored in the dtype,
in place, float32 losses), for designs.py.
"""
import math

import numpy as np
import torch

from ..spec.classes import class_dim
from ..verdict.tolerances import parse_order


def _padded(values, multiple):
    """values with zeros appended along the last axis up to a multiple (adding +0.0 is exact)."""
    extra = -values.shape[-1] % multiple
    if not extra:
        return values
    return np.concatenate([values, np.zeros(values.shape[:-1] + (extra,), values.dtype)], axis=-1)


def _tree(values):
    """Pairwise sum along the last axis: halves added until one term is left (depth ceil(log2 n))."""
    while values.shape[-1] > 1:
        values = _padded(values, 2)
        values = values[..., 0::2] + values[..., 1::2]
    return values[..., 0]


def ordered_sum(values, order, axis=-1):
    """The sum along ``axis`` in the arithmetic of ``values.dtype``, in the given order."""
    kind, size = parse_order(order)
    values = np.moveaxis(np.asarray(values), axis, -1)
    if values.shape[-1] == 0:
        return np.zeros(values.shape[:-1], values.dtype)
    if kind == "sequential":
        return np.add.accumulate(values, axis=-1)[..., -1]
    if kind == "pairwise":
        return _tree(values)
    blocks = values.shape[:-1] + (-(-values.shape[-1] // size), size)
    if kind == "lanes":  # lane j sums terms j, j + k, j + 2k, ... in turn; the k lane sums then meet in a tree
        return _tree(np.add.accumulate(_padded(values, size).reshape(blocks), axis=-2)[..., -1, :])
    tiles = _tree(_padded(values, size).reshape(blocks))  # a tree per tile
    return np.add.accumulate(tiles, axis=-1)[..., -1]  # then the tiles one after another


def _exp(values):  # in float64, rounded once: correctly rounded but for double rounding's rare ties
    return np.exp(values.astype(np.float64)).astype(values.dtype)


def _log(values):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(values.astype(np.float64)).astype(values.dtype)


def _weighted(coefficient, term):
    """coefficient * term, where an exactly-zero coefficient contributes 0 even against an infinite term
    (docs/spec-notes.md, "Zero coefficients"); NaN still propagates."""
    with np.errstate(invalid="ignore"):
        product = coefficient * term
    return np.where((coefficient == 0) & ~np.isnan(term), np.zeros_like(product), product)


class RowSoftmax:
    """softmax along the last axis of rows (M, L) in the accumulation dtype, with the quantities the gradients of
    every function reuse: probabilities, log-probabilities."""

    def __init__(self, rows, order):
        with np.errstate(invalid="ignore", over="ignore"):
            maximum = rows.max(axis=-1, keepdims=True) if rows.shape[-1] else np.zeros(rows.shape[:-1] + (1,))
            shift = np.where(np.isfinite(maximum), maximum, 0).astype(rows.dtype)
            shifted = rows - shift  # +inf - 0 and NaN stay: the row's softmax is undefined (NaN)
            exps = _exp(shifted)
            total = ordered_sum(exps, order)[..., None]
            undefined = np.isnan(rows).any(-1, keepdims=True) | np.isposinf(rows).any(-1, keepdims=True) \
                | np.isneginf(rows).all(-1, keepdims=True)
            self.probs = np.where(undefined, np.nan, exps / total).astype(rows.dtype)
            self.log_probs = np.where(undefined, np.nan, shifted - _log(total)).astype(rows.dtype)


def _rows(array, dim):
    """(rows (M, L) with ``dim`` last, restore): restore(rows) gives back the array's layout."""
    if array.ndim == 0:
        return array.reshape(1, 1), lambda rows: rows.reshape(())
    moved = np.moveaxis(array, dim, -1)
    shape = moved.shape
    return moved.reshape(math.prod(shape[:-1]), shape[-1]), lambda rows: np.moveaxis(rows.reshape(shape), -1, dim)


def _acc(tensor):
    """A tensor's values as a numpy array of its accumulation dtype (float64 for float64, float32 otherwise)."""
    dtype = np.float64 if tensor.dtype == torch.float64 else np.float32
    return tensor.detach().to(torch.float64).cpu().numpy().astype(dtype)


def _out(array, like):
    return torch.from_numpy(np.array(array, dtype=np.float64, order="C")).to(like.dtype)


class _Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, dim, order, log):
        rows, restore = _rows(_acc(input), dim)
        softmax = RowSoftmax(rows, order)
        ctx.state = (softmax.probs, restore, dim, order, log)
        return _out(restore(softmax.log_probs if log else softmax.probs), input)

    @staticmethod
    def backward(ctx, grad_output):
        probs, restore, dim, order, log = ctx.state
        g = _rows(_acc(grad_output), dim)[0].astype(probs.dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            if log:  # g - p * sum(g)
                grad = g - probs * ordered_sum(g, order)[..., None]
            else:  # y * (g - sum(g * y))
                grad = probs * (g - ordered_sum(g * probs, order)[..., None])
        return _out(restore(grad), grad_output), None, None, None


def _reduce(losses, reduction, denominator, order):
    """'none' (the losses), 'sum' or the mean over ``denominator`` (a number or an array), sums in order."""
    if reduction == "none":
        return losses
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        total = ordered_sum(losses.reshape(-1), order)
        if reduction == "sum":
            return total
        mean = total / denominator
        if np.isinf(total) and np.all(np.isfinite(losses)):  # the sum overflowed: divide each term first
            mean = ordered_sum(losses.reshape(-1) / denominator, order)
        return mean


def _upstream(upstream, reduction, denominator, shape, dtype):
    """The upstream gradient of each unreduced loss element (``upstream``: the loss's, a numpy array): itself
    ('none'), the scalar, or the scalar over the mean's divisor."""
    g = np.asarray(upstream).astype(dtype)
    if reduction == "none":
        return g.reshape(shape)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scalar = g.reshape(()) if reduction == "sum" else g.reshape(()) / dtype(denominator)
    return np.broadcast_to(scalar, shape)


class _IndexLoss:
    """nll_loss and cross_entropy with class-index targets, on rows (M, C) in the accumulation dtype."""

    def __init__(self, input, target, weight, ignore_index, order):
        values = _acc(input)
        self.dim = class_dim(values.ndim)
        self.rows, self.restore = _rows(values, self.dim)
        self.out_shape = tuple(target.shape)
        targets = target.detach().cpu().numpy().astype(np.int64).reshape(-1)
        self.counted = targets != ignore_index
        self.safe = np.where(self.counted, targets, 0)
        classes = self.rows.shape[1]
        self.weights = np.ones(classes, values.dtype) if weight is None else _acc(weight).astype(values.dtype)
        self.target_weight = np.where(self.counted, self.weights[self.safe], 0).astype(values.dtype)
        self.denominator = ordered_sum(self.target_weight, order)
        self.order = order

    def picked(self, rows):
        return rows[np.arange(rows.shape[0]), self.safe]


class _NllLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, weight, ignore_index, reduction, order, loss_dtype=None):
        problem = _IndexLoss(input, target, weight, ignore_index, order)
        problem.dtype = input.dtype
        losses = np.where(problem.counted, -_weighted(problem.target_weight, problem.picked(problem.rows)), 0)
        ctx.state = (problem, reduction)
        return _out(_reduce(losses.reshape(problem.out_shape).astype(problem.rows.dtype), reduction,
                            problem.denominator, order), torch.empty(0, dtype=loss_dtype or input.dtype))

    @staticmethod
    def backward(ctx, grad_output):
        problem, reduction = ctx.state
        dtype = problem.rows.dtype.type
        g = _upstream(_acc(grad_output), reduction, problem.denominator, problem.out_shape, dtype).reshape(-1)
        grad = np.zeros_like(problem.rows)
        with np.errstate(invalid="ignore", over="ignore"):
            picked = np.where(problem.counted, -problem.target_weight * g, 0)
        grad[np.arange(grad.shape[0]), problem.safe] = picked
        return _out(problem.restore(grad), torch.empty(0, dtype=problem.dtype)), None, None, None, None, None, None


class CrossEntropyRows:
    """Cross entropy on rows (M, C) in the accumulation dtype: l_n = -sum_c a_{n,c} log p_{n,c} with the
    coefficients of docs/spec-notes.md ("Cross entropy as one coefficient form"), and its gradients
    d l_n / d x_{n,c} = p_{n,c} A_n - a_{n,c} (A_n = sum_c a_{n,c}), d l_n / d y_{n,c} = -(1 - e) w_c log p_{n,c}."""

    def __init__(self, input, target, weight, ignore_index, reduction, smoothing, order, weight_total_in_dtype=False):
        values = _acc(input)
        rows, self.restore = _rows(values, class_dim(values.ndim))
        dtype, classes = rows.dtype.type, rows.shape[1]
        self.weights = np.ones(classes, rows.dtype) if weight is None else _acc(weight).astype(rows.dtype)
        self.softmax = RowSoftmax(rows, order)
        if target.shape == input.shape and target.is_floating_point():  # class probabilities
            probabilities = _rows(_acc(target).astype(rows.dtype), class_dim(values.ndim))[0]
            self.coefficients = self.weights * (dtype(1 - smoothing) * probabilities + dtype(smoothing / classes))
            self.counted = np.ones(rows.shape[0], dtype=bool)
            self.denominator = dtype(rows.shape[0])
            self.out_shape = tuple(s for i, s in enumerate(input.shape) if i != class_dim(input.dim()))
        else:
            problem = _IndexLoss(input, target, weight, ignore_index, order)
            self.counted, self.denominator, self.out_shape = problem.counted, problem.denominator, problem.out_shape
            if weight_total_in_dtype and weight is not None:  # the weighted mean's total held in the weights' dtype
                total = torch.tensor(float(self.denominator), dtype=torch.float64)
                self.denominator = dtype(total.to(weight.dtype).item())
            coefficients = np.zeros_like(rows) + (dtype(smoothing / classes) * self.weights if smoothing else 0)
            picked = (np.arange(rows.shape[0]), problem.safe)
            coefficients[picked] = coefficients[picked] + dtype(1 - smoothing) * problem.target_weight
            coefficients[~self.counted] = 0
            self.coefficients = coefficients
        self.reduction, self.smoothing, self.order = reduction, smoothing, order

    def loss(self):
        with np.errstate(invalid="ignore", over="ignore"):
            terms = _weighted(self.coefficients, self.softmax.log_probs)
            losses = np.where(self.counted, -ordered_sum(terms, self.order), 0).astype(self.coefficients.dtype)
        return _reduce(losses.reshape(self.out_shape), self.reduction, self.denominator, self.order)

    def gradients(self, upstream):
        """(d loss / d input, d loss / d target) in the input's layout, for the upstream gradient of the loss
        (a numpy array of the loss's shape, in the accumulation dtype)."""
        dtype = self.coefficients.dtype.type
        g = _upstream(upstream, self.reduction, self.denominator, self.out_shape, dtype).reshape(-1, 1)
        with np.errstate(invalid="ignore", over="ignore"):
            total = ordered_sum(self.coefficients, self.order)[:, None]
            grad = np.where(self.counted[:, None], g * (self.softmax.probs * total - self.coefficients), 0)
            factor = dtype(1 - self.smoothing) * np.broadcast_to(self.weights, self.coefficients.shape)
            grad_target = -g * _weighted(factor, self.softmax.log_probs)
        return self.restore(grad), self.restore(grad_target)


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, weight, ignore_index, reduction, smoothing, order, loss_dtype):
        ctx.rows, ctx.dtypes = CrossEntropyRows(input, target, weight, ignore_index, reduction, smoothing, order), \
            (input.dtype, target.dtype)
        return _out(ctx.rows.loss(), torch.empty(0, dtype=loss_dtype or input.dtype))

    @staticmethod
    def backward(ctx, grad_output):
        grad, grad_target = ctx.rows.gradients(_acc(grad_output))
        input_dtype, target_dtype = (torch.empty(0, dtype=dtype) for dtype in ctx.dtypes)
        return _out(grad, input_dtype), _out(grad_target, target_dtype), None, None, None, None, None, None


class _StoredGradientCrossEntropy(torch.autograd.Function):
    """The fused kernels' design: the forward computes the input gradient for a unit upstream gradient, rounds it to
    the dtype and keeps it (in the logits' own memory with ``in_place``); the backward multiplies it by the
    upstream gradient in the dtype: two roundings to the dtype instead of one (docs/tolerances.md). The target
    gradient of probability targets, which fused kernels do not store, is computed in the backward."""

    @staticmethod
    def forward(ctx, input, target, weight, ignore_index, reduction, smoothing, order, in_place, weight_total):
        rows = CrossEntropyRows(input, target, weight, ignore_index, reduction, smoothing, order, weight_total)
        stored = _out(rows.gradients(np.ones(rows.out_shape if reduction == "none" else ()))[0], input)
        if in_place:  # the memory of the logits now holds their gradient (declared: IN_PLACE_GRADIENT)
            input.data.copy_(stored)
            stored = input.data
        ctx.save_for_backward(stored)
        ctx.rows, ctx.target_dtype = rows, target.dtype
        ctx.unreduced, ctx.class_dim = reduction == "none", class_dim(input.dim())
        return _out(rows.loss(), input)

    @staticmethod
    def backward(ctx, grad_output):
        (stored,) = ctx.saved_tensors
        upstream = grad_output.unsqueeze(ctx.class_dim) if ctx.unreduced and stored.dim() > 1 else grad_output
        grad_target = None
        if ctx.target_dtype.is_floating_point:
            grad_target = _out(ctx.rows.gradients(_acc(grad_output))[1], torch.empty(0, dtype=ctx.target_dtype))
        return stored * upstream, grad_target, None, None, None, None, None, None, None


class _KlDiv(torch.autograd.Function):
    """Pointwise y (log y - x), or e^y (y - x) with log_target, with the conventions of docs/spec-notes.md."""

    @staticmethod
    def forward(ctx, input, target, reduction, log_target, order, loss_dtype=None):
        x, y = _acc(input), _acc(target)
        nan = np.isnan(x) | np.isnan(y)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            if log_target:
                p, difference = _exp(y), y - x
                pointwise = np.where(np.isinf(difference) & np.isfinite(y), difference, p * difference)
                zero = np.isneginf(y)  # p = 0: contributes 0 (and d/dy the limit 0)
            else:
                pointwise = y * (_log(y) - x)
                zero = y == 0
            pointwise = np.where(nan, np.nan, np.where(zero, 0, pointwise)).astype(x.dtype)
        denominator = x.shape[0] if reduction == "batchmean" and x.ndim else (1 if reduction == "batchmean"
                                                                               else x.size)
        ctx.state = (x, y, nan, reduction, log_target, denominator, input.dtype, target.dtype)
        averaged = "mean" if reduction == "batchmean" else reduction
        return _out(_reduce(pointwise, averaged, denominator, order), torch.empty(0, dtype=loss_dtype or input.dtype))

    @staticmethod
    def backward(ctx, grad_output):
        x, y, nan, reduction, log_target, denominator, input_dtype, target_dtype = ctx.state
        dtype = x.dtype.type
        g = _upstream(_acc(grad_output), "mean" if reduction == "batchmean" else reduction, denominator, x.shape,
                      dtype)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            if log_target:
                p = _exp(y)
                difference = y - x
                d_input = -p * g
                d_target = np.where(np.isinf(difference) & np.isfinite(y), difference, p * (difference + 1)) * g
                d_target = np.where(np.isneginf(y), 0, d_target)
            else:
                d_input, d_target = -y * g, ((_log(y) - x) + 1) * g
                d_target = np.where(y == 0, np.nan, d_target)
                d_input = np.where(y < 0, np.nan, d_input)
                d_target = np.where(y < 0, np.nan, d_target)
        d_input, d_target = (np.where(nan, np.nan, d) for d in (d_input, d_target))
        return (_out(d_input, torch.empty(0, dtype=input_dtype)), _out(d_target, torch.empty(0, dtype=target_dtype)),
                None, None, None, None)
