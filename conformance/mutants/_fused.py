"""A fused cross-entropy kernel re-created on torch tensors, the way LLM training libraries write it in Triton:
the logits seen as rows of C classes, an online log-sum-exp over blocks of BLOCK columns, rows in chunks of
CHUNK, float32 accumulation (float64 for float64 inputs), and the gradient computed in the forward pass and
stored in the input dtype, so that the backward only scales it by the upstream gradient. ``bugs`` switches on
one of the mistakes such kernels have shipped (conformance/mutants/fused.py lists them with their sources);
without bugs it is a correct kernel of another design than torch's, and passes the default corpus.

It supports class-index targets in every layout, weights, ignore_index, label smoothing and the reductions;
class-probability targets raise Unsupported. It validates its arguments as the documentation asks.
"""
import math

import torch

from ..backends import Unsupported

BLOCK = 1024  # columns per block of the online log-sum-exp (Triton kernels use 1024 to 65536)
CHUNK = 64  # rows per chunk of the row loop
INF = float("inf")


def accumulation_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def rows_of(input, target):
    """(rows (M, C), targets (M,), restore): restore maps per-row values back to the target's shape."""
    if input.dim() == 1:
        return input.unsqueeze(0), target.reshape(1), lambda values: values.reshape(())
    n_classes, shape = input.shape[1], target.shape
    return input.movedim(1, -1).reshape(-1, n_classes), target.reshape(-1), lambda values: values.reshape(shape)


def gradient_layout(grad_rows, input):
    """(M, C) gradient rows back to the input's layout."""
    if input.dim() == 1:
        return grad_rows.reshape(input.shape)
    moved = (input.shape[0], *input.shape[2:], input.shape[1])
    return grad_rows.reshape(moved).movedim(-1, 1)


def online_logsumexp(x, bugs=frozenset(), block=BLOCK):
    """(row maximum, sum of exp(x - maximum)) over blocks of columns, rescaling the running sum whenever the
    running maximum grows; rows with only -inf keep maximum -inf and sum 0."""
    rows = x.shape[0]
    running_max = torch.full((rows,), -INF, dtype=x.dtype)
    running_sum = torch.zeros(rows, dtype=x.dtype)
    for start in range(0, x.shape[1], block):
        part = x[:, start:start + block]
        if part.shape[1] < block:  # the last, partial block: padded as a kernel pads its masked lanes
            padding = 0.0 if "pad_zero" in bugs else -INF
            part = torch.cat([part, part.new_full((rows, block - part.shape[1]), padding)], 1)
        new_max = torch.maximum(running_max, part.amax(1))
        if "ninf_nan" in bugs:  # exp(-inf - (-inf)) on rows whose blocks so far are all -inf
            rescale, exps = torch.exp(running_max - new_max), torch.exp(part - new_max[:, None])
        else:
            shift = torch.where(torch.isinf(new_max) & (new_max < 0), torch.zeros_like(new_max), new_max)
            rescale = torch.where(torch.isinf(running_max) & (running_max < 0), torch.zeros_like(running_max),
                                  torch.exp(running_max - shift))
            exps = torch.exp(part - shift[:, None])
        if "no_rescale" in bugs:
            rescale = torch.ones_like(rescale)
        running_sum = running_sum * rescale + exps.sum(1)
        running_max = new_max
    return running_max, running_sum


def check_arguments(input, target, weight, ignore_index, reduction, label_smoothing):
    """Raise for what the documentation rules out (as the kernel's host-side wrapper would)."""
    if input.dim() == 0 or input.shape[0 if input.dim() == 1 else 1] == 0:
        raise ValueError(f"input of shape {tuple(input.shape)} has no classes")
    if target.shape == input.shape:
        raise Unsupported("class-probability targets (the fused kernel takes class indices only)")
    if target.dtype != torch.int64:  # "the data type must be long"
        raise TypeError(f"class indices must be int64, got {target.dtype}")
    expected = () if input.dim() == 1 else (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"target of shape {tuple(target.shape)} for input of shape {tuple(input.shape)}")
    n_classes = input.shape[0 if input.dim() == 1 else 1]
    if weight is not None and tuple(weight.shape) != (n_classes,):
        raise ValueError(f"weight must have shape ({n_classes},), got {tuple(weight.shape)}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"unknown reduction {reduction!r}")
    if isinstance(label_smoothing, bool) or not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")


def resolve_reduction(size_average, reduce, reduction):
    """The documented legacy rule: either flag given overrides reduction (reduce=False gives 'none')."""
    for flag in (size_average, reduce):
        if flag is not None and not isinstance(flag, bool):
            raise TypeError(f"size_average and reduce must be True, False or None, got {flag!r}")
    if size_average is None and reduce is None:
        return reduction
    return "none" if reduce is False else "sum" if size_average is False else "mean"


def mean_denominators(counted_weight, bugs, chunk=CHUNK):
    """The 'mean' divisor of each row: the sum of the counted weights, or (with the bug) of its chunk's weights
    times the number of chunks; None when every row shares the one divisor."""
    rows = counted_weight.shape[0]
    if "chunk_mean_of_means" not in bugs:
        return None
    chunks = max(1, math.ceil(rows / chunk))
    per_row = torch.empty_like(counted_weight)
    for start in range(0, rows, chunk):
        per_row[start:start + chunk] = counted_weight[start:start + chunk].sum() * chunks
    return per_row


def weighted(coefficient, log_probability):
    """coefficient * log p, where a zero coefficient contributes 0 even against log 0 = -inf (spec-notes,
    "Zero coefficients"); NaN still propagates."""
    product = coefficient * log_probability
    return torch.where((coefficient == 0) & ~torch.isnan(log_probability), torch.zeros_like(product), product)


def _log_probabilities(x, bugs):
    maximum, total = online_logsumexp(x, bugs)
    shift = torch.where(torch.isinf(maximum) & (maximum < 0), torch.zeros_like(maximum), maximum)
    if "lse_lowp" in bugs:  # the log-sum-exp kept in the input dtype, then x - lse: shift-dependent rounding
        return lambda v: v - (shift + torch.log(total)).to(bugs.dtype).to(x.dtype)[:, None]
    return lambda v: (v - shift[:, None]) - torch.log(total)[:, None]


def _row_losses(log_p, targets, counted, weights, smoothing, bugs):
    target_weight = weights[targets]
    target_term = weighted((1 - smoothing) * target_weight, log_p.gather(1, targets[:, None])[:, 0])
    smooth_term = weighted(weights[None, :] * (smoothing / log_p.shape[1]), log_p).sum(1)
    losses = -(target_term + smooth_term)
    if "ls_ignored_included" in bugs:  # the smoothing term of ignored rows kept
        return torch.where(counted, losses, -smooth_term)
    return torch.where(counted, losses, torch.zeros_like(losses))


def _divisors(counted, target_weight, reduction, bugs):
    """(per-row divisors, the divisor of the summed loss or None when it is per row)."""
    rows, dtype = counted.shape[0], target_weight.dtype
    if reduction != "mean":
        return torch.ones(rows, dtype=dtype), torch.ones((), dtype=dtype)
    counted_weight = counted.to(dtype) if "mean_count_not_weight" in bugs else torch.where(counted, target_weight, 0)
    if "mean_count_all" in bugs:  # ignored rows counted in the mean
        counted_weight = torch.ones(rows, dtype=dtype)
    per_row = mean_denominators(counted_weight, bugs)
    if per_row is not None:
        return per_row, None
    total = counted_weight.sum()
    return total.expand(rows), total


def _row_gradients(log_p, targets, counted, weights, smoothing, divisors, bugs):
    """d loss / d x per row, divided by the mean's divisor, in the accumulation dtype (bugs: rounded)."""
    n_classes = log_p.shape[1]
    probabilities = torch.exp(log_p)
    target_weight = weights[targets]
    total = (1 - smoothing) * target_weight + (smoothing / n_classes) * weights.sum()
    soft = probabilities * total[:, None] - (smoothing / n_classes) * weights[None, :]
    one_hot = ((1 - smoothing) * target_weight)[:, None]
    scale = torch.where(counted, 1 / divisors, 0)[:, None]
    if "true_class_rounded" in bugs:  # p_y rounded to the dtype before the one-hot term is subtracted
        rounded = (soft * scale).to(bugs.dtype).to(log_p.dtype)
        at_target = rounded.gather(1, targets[:, None]) - one_hot * scale
        return rounded.scatter(1, targets[:, None], at_target)
    gradient = soft.scatter_add(1, targets[:, None], -one_hot) * scale
    return torch.where(counted[:, None], gradient, torch.zeros_like(gradient))


def loss_and_gradient(input, target, weight, ignore_index, reduction, smoothing, bugs):
    """(loss, gradient of the loss with respect to the input), both in the input's dtype: the forward pass
    of a fused kernel, which writes the gradient while it has the probabilities at hand."""
    acc = accumulation_dtype(input.dtype)
    rows, targets, restore = rows_of(input.detach(), target)
    x, n_classes = rows.to(acc), rows.shape[1]
    weights = torch.ones(n_classes, dtype=acc) if weight is None else weight.detach().to(acc)
    targets = targets.long()
    counted = targets != (-100 if "ignore_hardcoded" in bugs else ignore_index)
    outside = counted & ((targets < 0) | (targets >= n_classes))
    if outside.any() and "no_bounds_check" not in bugs:
        raise IndexError(f"target {int(targets[outside][0])} is out of bounds for {n_classes} classes")
    targets = torch.where(counted, targets, 0).clamp(0, n_classes - 1)
    log_p = _log_probabilities(x, bugs)(x)
    losses = _row_losses(log_p, targets, counted, weights, float(smoothing), bugs)
    divisors, total = _divisors(counted, weights[targets], reduction, bugs)
    if reduction == "none":
        loss = losses.sum() if "none_returns_sum" in bugs else restore(losses)
    elif total is None or total != 0:  # each row divided first: a sum near the top of the range stays finite
        loss = (losses / divisors).sum()
    else:  # the sum over 0: NaN for an empty batch or 0 / 0, an infinity for weights that sum to 0
        loss = losses.sum() / total
    gradient = _row_gradients(log_p, targets, counted, weights, float(smoothing), divisors, bugs)
    return loss.to(input.dtype), gradient_layout(gradient, input).to(input.dtype)


class Bugs(frozenset):
    """The bug switches of one mutant, with the input dtype that some of them round to."""

    dtype = torch.float32


class FusedCrossEntropy(torch.autograd.Function):
    """Forward: loss and gradient at once; backward: the stored gradient scaled by the upstream gradient."""

    @staticmethod
    def forward(ctx, input, target, weight, ignore_index, reduction, smoothing, bugs):
        loss, gradient = loss_and_gradient(input, target, weight, ignore_index, reduction, smoothing, bugs)
        if "inplace" in bugs:  # the gradient stored in the logits' memory (.data: autograd does not notice)
            input.data.copy_(gradient)
        ctx.save_for_backward(gradient)
        ctx.reduction, ctx.bugs, ctx.batched = reduction, bugs, input.dim() > 1
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        (gradient,) = ctx.saved_tensors
        bugs, upstream = ctx.bugs, grad_output
        if "grad_output_ignored" in bugs or ("fast_path_first" in bugs and float(upstream.reshape(-1)[0]) == 1.0):
            return gradient, None, None, None, None, None, None
        if ctx.reduction == "none" and "none_grad_first" in bugs:
            upstream = upstream.reshape(-1)[0]
        elif ctx.reduction == "none" and ctx.batched:
            upstream = upstream.unsqueeze(1)
        return gradient * upstream, None, None, None, None, None, None


def cross_entropy_with(bugs=()):
    """A cross_entropy with F.cross_entropy's signature over the fused kernel with these bugs."""
    def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                      reduction="mean", label_smoothing=0.0):
        reduction = resolve_reduction(size_average, reduce, reduction)
        check_arguments(input, target, weight, ignore_index, reduction, label_smoothing)
        switches = Bugs(bugs)
        switches.dtype = input.dtype
        return FusedCrossEntropy.apply(input, target, weight, ignore_index, reduction, label_smoothing, switches)
    return cross_entropy
