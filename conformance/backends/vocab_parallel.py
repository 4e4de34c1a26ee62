"""A reference vocab-parallel cross-entropy on torch.distributed (docs/vocab-parallel.md), correct by
construction, that the suite checks at any world size: ``--backend reference --world-size R``.

Each rank holds the classes [start, stop) of the logits (class-last) and of the weight. The row maximum, the sum
of exponentials, the target's logit and weight, and the smoothing sums are all-reduced over the group, in float32
for 16-bit logits (float64 for float64); the reduction over tokens is then the same on every rank, which returns the
same loss. The gradient of its own columns is computed from the saved log-sum-exp, with no collective.

``Reference`` takes torch's label smoothing (ε / V to every class); ``ReferenceMegatron`` Megatron-LM's
(α / (V - 1) to every class but the target), the two conventions of the contract. The mutants of
conformance/mutants/vocab_parallel.py override one hook each.
"""
import numbers

import torch
import torch.distributed as dist

from . import Capabilities

REDUCTIONS = ("none", "mean", "sum")


def _opmath(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def _validate(logits, target, weight, shard, ignore_index, reduction, epsilon):
    """torch's argument errors, raised on every rank alike, before any collective (a rank that raised alone would
    leave the others waiting in one). ``epsilon``: the label smoothing in torch's terms."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0 (as torch states it). Got: {epsilon}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an integer, got {type(ignore_index).__name__}")
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(f"expected integer class indices as the target, got {target.dtype}")
    if tuple(target.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"target shape {tuple(target.shape)} does not match the logits {tuple(logits.shape)}")
    if weight is not None and tuple(weight.shape) != (shard.width,):
        raise ValueError(f"weight of shape {tuple(weight.shape)} for a shard of {shard.width} columns")
    wrong = target[(target != ignore_index) & ((target < 0) | (target >= shard.vocab_size))]
    if wrong.numel():
        raise IndexError(f"Target {int(wrong.flatten()[0])} is out of bounds.")


class Reference:
    """Vocab-parallel cross-entropy with torch's semantics: class weights, ignore_index, label smoothing,
    the reductions none, mean and sum."""

    name = "vocab-parallel-reference"
    shardings = ("uneven", "padded")
    label_smoothing = "torch"
    capabilities = Capabilities(functions=("cross_entropy",), differentiable=("input",))

    def describe(self):
        return {"name": self.name, "framework": "torch", "version": torch.__version__,
                "framework_version": torch.__version__}

    def cross_entropy(self, logits, target, *, shard, group, weight=None, ignore_index=-100, reduction="mean",
                      label_smoothing=0.0):
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real):
            raise TypeError(f"label_smoothing must be a number, got {type(label_smoothing).__name__}")
        epsilon = self.torch_smoothing(float(label_smoothing), shard.vocab_size)
        _validate(logits, target, weight, shard, ignore_index, reduction, epsilon)
        return _VocabParallelCrossEntropy.apply(logits, target, weight, (self, shard, group, ignore_index,
                                                                         reduction, epsilon))

    # The hooks a mutant overrides, each one step of the computation.
    def torch_smoothing(self, label_smoothing, vocab_size):
        """ε of torch's formula from the argument as this convention states it."""
        return label_smoothing

    def all_reduce_max(self, values, group):
        dist.all_reduce(values, op=dist.ReduceOp.MAX, group=group)

    def all_reduce_sum(self, values, group, what):
        """``what``: "sumexp", "target", "smoothing" or "weights", the quantity being summed over the shards."""
        dist.all_reduce(values, op=dist.ReduceOp.SUM, group=group)

    def smoothing_classes(self, shard):
        return shard.vocab_size

    def gather_index(self, target, valid, shard):
        """The global class each row gathers: its target (ignored rows are masked by ``mask``)."""
        return target

    def mask(self, rows, valid):
        return torch.where(valid, rows, torch.zeros_like(rows))

    def gradient_scale(self, shard, denominator):
        return 1.0 / denominator


def _forward_parts(hooks, x, target, weight, shard, group, ignore_index, epsilon):
    """The rows' log-sum-exp, target logit and weight, smoothing sum and total weight, all-reduced."""
    real = x[..., :shard.classes]
    maximum = real.amax(-1) if shard.classes else x.new_full(target.shape, float("-inf"))
    hooks.all_reduce_max(maximum, group)
    # A row of -inf only: shift by 0 (its sum is 0, its lse -inf); a +inf logit makes the row's log-probabilities
    # NaN (+inf - +inf), as the oracle's log_softmax says
    shift = torch.where(maximum == float("-inf"), torch.zeros_like(maximum), maximum)
    sumexp = torch.exp(real - shift.unsqueeze(-1)).sum(-1)
    hooks.all_reduce_sum(sumexp, group, "sumexp")
    lse = torch.log(sumexp) + shift
    valid = target != ignore_index
    index = hooks.gather_index(target, valid, shard)
    here = (index >= shard.start) & (index < shard.start + shard.width)  # a padding column too, if asked for
    local = torch.where(here, index - shard.start, torch.zeros_like(index))
    picked = torch.where(here, x.gather(-1, local.unsqueeze(-1)).squeeze(-1), torch.zeros_like(lse))
    hooks.all_reduce_sum(picked, group, "target")
    w = torch.ones(shard.width, dtype=x.dtype, device=x.device) if weight is None else weight
    w = torch.cat([w[:shard.classes], w.new_zeros(shard.padding)])  # padding is no class: no weight
    target_weight = torch.where(here & valid, w[local], torch.zeros_like(lse))
    hooks.all_reduce_sum(target_weight, group, "weights")
    smooth = total = None
    if epsilon:
        smooth = _times(w[:shard.classes], lse.unsqueeze(-1) - real).sum(-1)
        hooks.all_reduce_sum(smooth, group, "smoothing")
        total = w[:shard.classes].sum().reshape(1)
        hooks.all_reduce_sum(total, group, "weights")
    return lse, picked, target_weight, valid, here, local, w, smooth, total


def _times(coefficient, terms):
    """coefficient * terms with a coefficient of exactly 0 dropping its term, infinite or not: 0 log 0 = 0
    (docs/spec-notes.md, "Zero coefficients")."""
    return torch.where(coefficient == 0, torch.zeros_like(terms), coefficient * terms)


def _mean(rows, denominator):
    """The sum over the denominator; where finite rows overflow their sum, the sum of the quotients (the mean of
    two rows near the largest float is representable: cases/found/cross_entropy-2bf8260e90.yaml)."""
    total = rows.sum()
    if torch.isinf(total) and bool(torch.isfinite(rows).all()):
        return (rows / denominator).sum()
    return total / denominator


class _VocabParallelCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target, weight, settings):
        hooks, shard, group, ignore_index, reduction, epsilon = settings
        x = logits.detach().to(_opmath(logits.dtype))
        weight = None if weight is None else weight.to(x.dtype)
        lse, picked, target_weight, valid, here, local, w, smooth, total = _forward_parts(
            hooks, x, target, weight, shard, group, ignore_index, epsilon)
        rows = _times(target_weight, lse - picked)
        if epsilon:
            one_hot_part = (1 - epsilon) * rows if epsilon < 1 else torch.zeros_like(rows)  # 0 * inf dropped
            rows = one_hot_part + epsilon / hooks.smoothing_classes(shard) * smooth
        rows = hooks.mask(rows, valid)
        denominator = target_weight.sum() if reduction == "mean" else None
        loss = rows if reduction == "none" else rows.sum() if reduction == "sum" else _mean(rows, denominator)
        ctx.save_for_backward(x, lse, target_weight, valid, here, local, w, total if epsilon else lse)
        ctx.settings, ctx.denominator, ctx.in_dtype = settings, denominator, logits.dtype
        return loss.to(logits.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        hooks, shard, group, ignore_index, reduction, epsilon = ctx.settings
        x, lse, target_weight, valid, here, local, w, total = ctx.saved_tensors
        upstream = grad_output.to(x.dtype)
        if reduction == "mean":
            upstream = upstream * hooks.gradient_scale(shard, ctx.denominator)
        upstream = upstream.expand(lse.shape) if reduction != "none" else upstream
        probabilities = torch.exp(x - lse.unsqueeze(-1))
        probabilities = torch.cat([probabilities[..., :shard.classes],
                                   torch.zeros_like(probabilities[..., shard.classes:])], -1)
        one_hot = torch.zeros_like(x).scatter_(-1, local.unsqueeze(-1), 1.0) * here.unsqueeze(-1)
        grad = target_weight.unsqueeze(-1) * (probabilities - one_hot)
        if epsilon:
            smoothing = total * probabilities - w
            grad = (1 - epsilon) * grad + epsilon / hooks.smoothing_classes(shard) * smoothing
        grad = torch.where(valid.unsqueeze(-1), upstream.unsqueeze(-1) * grad, torch.zeros_like(grad))
        grad[..., shard.classes:] = 0  # padding is no class: 0 even where an infinite upstream makes the row NaN
        return grad.to(ctx.in_dtype), None, None, None


class ReferenceMegatron(Reference):
    """The same, taking label smoothing as Megatron-LM states it: α / (V - 1) to each class but the target, which
    is torch's ε = α V / (V - 1)."""

    name = "vocab-parallel-reference-megatron"
    label_smoothing = "megatron"

    def torch_smoothing(self, label_smoothing, vocab_size):
        return label_smoothing * vocab_size / (vocab_size - 1) if vocab_size > 1 else label_smoothing


vocab_parallel = Reference  # the module's default implementation (distributed/contract.load_implementation)
