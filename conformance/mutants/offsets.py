"""32-bit offsets: kernels that compute an element's offset, row * C + class, in int32, so that past element 2**31
it wraps (the bug class of CUDA kernels indexed by int32, the NLLLoss2d backward reached through
``cross_entropy(logits.transpose(1, 2))`` among them). Killed by the huge tier (conformance/huge), whose tensors
hold 2**31 + 2**20 elements; on the default corpus they compute what torch does.

An offset is counted in the logits' (position, class) order. A wrapped offset is negative; here it reads or
writes from the buffer's end, as Python indexing does (a GPU reads or writes whatever lies before the buffer, or
faults). ``bits`` is the width of the offsets: tests use a narrower one, on the tier's smaller geometry.

Each factory returns a namespace for ``--backend conformance.mutants.offsets:<name>``.
"""
import math

import torch
import torch.nn.functional as F

from ._base import mutant

OFFSET_BITS = 32


def _positions(shape, offsets):
    """The index tuple of (position, class) offsets into a tensor whose last dim is the class dim."""
    return torch.unravel_index(offsets, shape)


def _past_limit(shape, bits):
    """(first row reaching element 2**(bits - 1), the offsets from that row on, the same offsets wrapped to
    signed ``bits`` bits and then into the buffer from its end); None where no element reaches the limit."""
    limit, classes, total = 1 << (bits - 1), shape[-1], math.prod(shape)
    if total <= limit or not classes:
        return None
    first = limit // classes
    offsets = torch.arange(first * classes, total, dtype=torch.int64)
    wrapped = ((offsets + limit) % (2 * limit) - limit) % total
    return first, offsets, wrapped


def _class_dim(input, dim):
    return dim % input.dim()


def _read_wrapped(input, class_dim, bits):
    """(first row, those rows' values as read at wrapped offsets, (rows, C)) or None."""
    rows = input.detach().movedim(class_dim, -1)
    past = _past_limit(tuple(rows.shape), bits)
    if past is None:
        return None
    first, _, wrapped = past
    values = rows[_positions(tuple(rows.shape), wrapped.to(rows.device))]
    return first, values.view(-1, rows.shape[-1])


class _WrappedLogSoftmax(torch.autograd.Function):
    """log_softmax whose rows past the limit are computed from the values at their wrapped offsets; its backward
    reads the output it wrote, as a kernel's does."""

    @staticmethod
    def forward(ctx, input, dim, bits):
        output = torch.log_softmax(input, dim)
        read = _read_wrapped(input, dim, bits)
        if read is not None:
            first, values = read
            rows = output.movedim(dim, -1)
            offsets = _past_limit(tuple(rows.shape), bits)[1].to(rows.device)
            rows[_positions(tuple(rows.shape), offsets)] = torch.log_softmax(values, -1).reshape(-1)
        ctx.save_for_backward(output)
        ctx.dim, ctx.dtype = dim, input.dtype
        return output

    @staticmethod
    def backward(ctx, grad_output):
        output, = ctx.saved_tensors
        return torch.ops.aten._log_softmax_backward_data(grad_output, output, ctx.dim, ctx.dtype), None, None


def _cross_entropy_read_wrapped(bits):
    def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                      reduction="mean", label_smoothing=0.0):
        keywords = dict(weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing)
        read = _read_wrapped(input, 1, bits) if input.dim() >= 2 and target.dtype == torch.int64 else None
        if read is None or size_average is not None or reduce is not None:
            return F.cross_entropy(input, target, size_average=size_average, reduce=reduce, reduction=reduction,
                                   **keywords)
        first, values = read
        losses = F.cross_entropy(input, target, reduction="none", **keywords)
        flat = losses.reshape(-1)
        wrong = F.cross_entropy(values, target.reshape(-1)[first:], reduction="none", **keywords)
        shift = torch.zeros_like(flat)
        shift[first:] = (wrong - flat[first:]).detach()
        losses = (flat + shift).reshape(losses.shape)
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        counted = target != ignore_index
        weights = counted.to(input.dtype) if weight is None else torch.where(
            counted, weight[target.clamp(min=0)], 0).to(input.dtype)
        return losses.sum() / weights.sum()
    return cross_entropy


def _write_wrapped(grad, class_dim, bits):
    """The gradient as a kernel writing rows at wrapped offsets leaves it: the rows past the limit written over
    the rows their offsets wrap to, and never written themselves (zero)."""
    rows = grad.movedim(class_dim, -1)
    past = _past_limit(tuple(rows.shape), bits)
    if past is not None:
        offsets, wrapped, shape = past[1].to(grad.device), past[2].to(grad.device), tuple(rows.shape)
        values = rows[_positions(shape, offsets)].clone()
        rows[_positions(shape, offsets)] = 0
        rows[_positions(shape, wrapped)] = values
    return grad


def _with_backward_wrapped(function, bits):
    """The function, its input gradient passed through _write_wrapped (a hook on a view: no copy of the input)."""
    def wrapped(input, *args, **kwargs):
        dim = kwargs.get("dim", args[0] if args and function is F.log_softmax else 1)
        if not input.requires_grad or dim is None or input.numel() <= 1 << (bits - 1):
            return function(input, *args, **kwargs)
        view = input.view(input.shape)
        view.register_hook(lambda grad: _write_wrapped(grad, _class_dim(input, dim), bits))
        return function(view, *args, **kwargs)
    return wrapped


def read_wrapped(bits=OFFSET_BITS):
    def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
        if dtype is not None or dim is None or input.numel() <= 1 << (bits - 1):
            return F.log_softmax(input, dim, dtype=dtype)
        return _WrappedLogSoftmax.apply(input, _class_dim(input, dim), bits)
    return mutant(f"reads the logits past element 2**{bits - 1} at offsets wrapped to int{bits}",
                  log_softmax=log_softmax, cross_entropy=_cross_entropy_read_wrapped(bits))


def write_wrapped(bits=OFFSET_BITS):
    return mutant(f"writes the input gradient past element 2**{bits - 1} at offsets wrapped to int{bits}",
                  log_softmax=_with_backward_wrapped(F.log_softmax, bits),
                  cross_entropy=_with_backward_wrapped(F.cross_entropy, bits))
