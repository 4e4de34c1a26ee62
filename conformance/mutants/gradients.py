"""Backward bugs: the forward value is torch's, bit for bit; only the input gradient is wrong.

Each factory returns a namespace for ``--backend conformance.mutants.gradients:<name>``. A mutated call runs
torch's function without a graph inside an autograd.Function; its backward recomputes torch's call with a graph
and takes torch's gradients (the target's too, where it has one), then breaks the input gradient. Calls the bug
does not concern, and calls without gradient, go straight to torch.
"""
import torch
import torch.nn.functional as F

from ._base import mutant
from ._common import class_dim, effective_reduction, has_class_indices


class _WrongBackward(torch.autograd.Function):
    """``call(input, target)`` forward; ``gradients(call, input, target, grad_output, needs)`` backward."""

    @staticmethod
    def forward(ctx, call, gradients, input, target):
        ctx.call, ctx.gradients = call, gradients
        ctx.save_for_backward(input, target)
        return call(input, target)

    @staticmethod
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        grads = ctx.gradients(ctx.call, input, target, grad_output, ctx.needs_input_grad[2:])
        return (None, None, *grads)


def _torch_gradients(call, input, target, grad_output, needs):
    """torch's own gradients of ``call`` with respect to input and target (None where not needed or unused)."""
    with torch.enable_grad():
        operands = [None if tensor is None else tensor.detach().requires_grad_(need)
                    for tensor, need in zip((input, target), needs)]
        wanted = [tensor for tensor, need in zip(operands, needs) if need]
        grads = iter(torch.autograd.grad(call(*operands), wanted, grad_output, allow_unused=True))
    return [next(grads) if need else None for need in needs]


def _mutated(call, gradients, input, target=None):
    if not (torch.is_grad_enabled() and (input.requires_grad or (target is not None and target.requires_grad))):
        return call(input, target)
    return _WrongBackward.apply(call, gradients, input, target)


def _cross_entropy_ignored_rows_get_gradient(input, target, weight=None, size_average=None, ignore_index=-100,
                                             reduce=None, reduction="mean", label_smoothing=0.0):
    def call(x, t):
        return F.cross_entropy(x, t, weight, size_average, ignore_index, reduce, reduction, label_smoothing)

    def gradients(call, x, t, grad_output, needs):
        grad_input, grad_target = _torch_gradients(call, x, t, grad_output, needs)
        indices = t.long()  # torch also accepts uint8 class indices
        counted = indices != ignore_index
        kind = effective_reduction(size_average, reduce, reduction)
        row_grad = grad_output.expand(t.shape) if kind != "none" else grad_output
        if kind == "mean":
            row_weight = counted.to(x.dtype) if weight is None else weight[torch.where(counted, indices, 0)] * counted
            row_grad = row_grad / row_weight.sum()
        dim = class_dim(x)
        ignored_gradient = F.softmax(x, dim) * row_grad.unsqueeze(dim)  # should be 0
        return torch.where(counted.unsqueeze(dim), grad_input, ignored_gradient), grad_target

    if not has_class_indices(input, target):
        return call(input, target)
    return _mutated(call, gradients, input, target)


def _mean_over_rows_in_backward(loss_function):
    def loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
             *more, **kwargs):  # cross_entropy's label_smoothing, passed on as given
        def call(x, t):
            return loss_function(x, t, weight, size_average, ignore_index, reduce, reduction, *more, **kwargs)

        def gradients(call, x, t, grad_output, needs):
            def summed(x, t):
                return loss_function(x, t, weight, None, ignore_index, None, "sum", *more, **kwargs)
            # the 'sum' gradient over the number of rows N * d1 * ..., not over the total weight
            return _torch_gradients(summed, x, t, grad_output / t.numel(), needs)

        if not has_class_indices(input, target) or effective_reduction(size_average, reduce, reduction) != "mean":
            return call(input, target)
        return _mutated(call, gradients, input, target)
    return loss


def _softmax_without_dot(input, dim=None, _stacklevel=3, dtype=None):
    def call(x, _):
        return F.softmax(x, dim, _stacklevel, dtype)

    def gradients(call, x, _, grad_output, needs):
        output = call(x, None)
        return (output * grad_output).to(x.dtype), None  # should be output * (g - sum(g * output, dim))

    return _mutated(call, gradients, input)


def ignored_rows_receive_gradient():
    return mutant("cross_entropy's backward gives ignored rows the gradient softmax(x) * g instead of 0",
                  cross_entropy=_cross_entropy_ignored_rows_get_gradient)


def mean_gradient_wrong_scale():
    return mutant("the backward of a 'mean' loss divides by the number of rows N * d1 * ... instead of the total "
                  "weight of the counted rows",
                  nll_loss=_mean_over_rows_in_backward(F.nll_loss),
                  cross_entropy=_mean_over_rows_in_backward(F.cross_entropy))


def softmax_gradient_without_dot():
    return mutant("softmax's backward returns y * g, dropping the - y * sum(g * y) term",
                  softmax=_softmax_without_dot)


CATALOG = {factory.__name__: factory for factory in (
    ignored_rows_receive_gradient, mean_gradient_wrong_scale, softmax_gradient_without_dot)}
