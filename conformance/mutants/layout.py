"""Layout, determinism and batch-invariance bugs: kernels that assume where a tensor's elements are, or whose
result depends on more than their arguments (the layout issue's list). Each is killed by the layout cases
(cases/*_layouts.yaml) or by the deterministic and batch_invariant checks (verdict/stability.py), which the
mutation score runs for every mutant.

Each factory returns a namespace for ``--backend conformance.mutants.layout:<name>``.
"""
import torch
import torch.nn.functional as F

from ._base import mutant


def _contiguous_strides(shape):
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _rows_by_stride(input, target, *args, **kwargs):
    """(N, C) logits read as rows at stride(-2) of C contiguous classes: a transposed or sliced tensor is misread."""
    if input.dim() == 2 and input.numel():
        input = torch.as_strided(input, input.shape, (input.stride(-2), 1))
    return F.cross_entropy(input, target, *args, **kwargs)


class _GradContiguous(torch.autograd.Function):
    """cross_entropy whose backward reads the upstream gradient as if it were contiguous."""

    @staticmethod
    def forward(ctx, input, target, kwargs):
        ctx.save_for_backward(input, target)
        ctx.kwargs = kwargs
        return F.cross_entropy(input, target, **kwargs)

    @staticmethod
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        upstream = torch.as_strided(grad_output, grad_output.shape, _contiguous_strides(grad_output.shape))
        with torch.enable_grad():
            leaf = input.detach().requires_grad_()
            (grad,) = torch.autograd.grad(F.cross_entropy(leaf, target, **ctx.kwargs), leaf, upstream)
        return grad, None, None


def _grad_output_contiguous(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                            reduction="mean", label_smoothing=0.0):
    kwargs = dict(weight=weight, size_average=size_average, ignore_index=ignore_index, reduce=reduce,
                  reduction=reduction, label_smoothing=label_smoothing)
    return _GradContiguous.apply(input, target, kwargs)


def _size1_guard(input, dim=None, _stacklevel=3, dtype=None):
    """After an is_contiguous() guard, rows of the last dim located at stride(-2), which torch leaves arbitrary
    for a size-1 dim of a contiguous tensor."""
    if input.dim() >= 2 and input.is_contiguous() and dim in (-1, input.dim() - 1) and input.shape[-2] == 1 \
            and input.numel():
        rows = torch.as_strided(input, (input.numel() // input.shape[-1], input.shape[-1]), (input.stride(-2), 1))
        return F.softmax(rows, -1, _stacklevel, dtype).reshape(input.shape)
    return F.softmax(input, dim, _stacklevel, dtype)


def _offset_ignored(input, dim=None, _stacklevel=3, dtype=None):
    """The input read from the start of its storage, as a kernel handed data_ptr() of the storage would."""
    if input.numel():
        input = torch.as_strided(input, input.shape, input.stride(), 0)
    return F.softmax(input, dim, _stacklevel, dtype)


SPLITS = 4


def _opmath(input, dtype):
    """The input in the type it is computed in, float32 for 16-bit types as torch does: the mutants below differ
    from a correct softmax in their order of summation only, not in its precision."""
    input = input if dtype is None else input.to(dtype)
    return input.float() if input.dtype in (torch.float16, torch.bfloat16) else input


def _split_sum(exps, dim, order):
    """The sum along dim as SPLITS chunk sums added in ``order`` (a split-K reduction)."""
    chunks = torch.tensor_split(exps, SPLITS, dim)
    total = torch.zeros_like(chunks[0].sum(dim, keepdim=True))
    for k in order:
        total = total + chunks[k].sum(dim, keepdim=True)
    return total


def _split_k_unseeded(input, dim=None, _stacklevel=3, dtype=None):
    """softmax whose normaliser adds its split-K partial sums in an order that changes from call to call."""
    if input.dim() == 0 or input.numel() == 0 or dim is None:
        return F.softmax(input, dim, _stacklevel, dtype)
    work = _opmath(input, dtype)
    exps = torch.exp(work - work.amax(dim, keepdim=True).detach())
    return (exps / _split_sum(exps, dim, torch.randperm(SPLITS).tolist())).to(dtype or input.dtype)


def _batch_dependent(input, dim=None, _stacklevel=3, dtype=None):
    """softmax whose normaliser sums in as many lanes as the batch has rows: a row's bits depend on its batch."""
    if input.dim() < 2 or input.numel() == 0 or dim is None or dim % input.dim() == 0:
        return F.softmax(input, dim, _stacklevel, dtype)
    work = _opmath(input, dtype)
    exps = torch.exp(work - work.amax(dim, keepdim=True).detach())
    lanes = min(input.shape[0], exps.shape[dim])
    moved = exps.movedim(dim, -1)
    padded = F.pad(moved, (0, -moved.shape[-1] % lanes))
    total = padded.reshape(*padded.shape[:-1], -1, lanes).sum(-2).sum(-1, keepdim=True).movedim(-1, dim)
    return (exps / total).to(dtype or input.dtype)


CATALOG = {
    "rows_by_stride": lambda: mutant("(N, C) logits read as rows at stride(-2) of contiguous classes",
                                     cross_entropy=_rows_by_stride),
    "grad_output_contiguous": lambda: mutant("the upstream gradient read as if contiguous (an expanded or "
                                             "strided grad_output is misread)",
                                             cross_entropy=_grad_output_contiguous),
    "size1_stride_guard": lambda: mutant("rows located at stride(-2) after an is_contiguous() guard, which a size-1 "
                                         "dim leaves arbitrary", softmax=_size1_guard),
    "storage_offset_ignored": lambda: mutant("softmax reading its input from the start of the storage (the "
                                             "storage offset ignored)", softmax=_offset_ignored),
    "split_k_unseeded": lambda: mutant("split-K normaliser whose partial sums are added in a random order (not "
                                       "deterministic)", softmax=_split_k_unseeded),
    "batch_dependent_order": lambda: mutant("normaliser summed in as many lanes as the batch has rows (not batch "
                                            "invariant)", softmax=_batch_dependent),
}


def __getattr__(name):  # --backend conformance.mutants.layout:<name> resolves the catalog's factories
    if name in CATALOG:
        return CATALOG[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
