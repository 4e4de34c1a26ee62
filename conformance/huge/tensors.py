"""The huge tier's torch tensors: built in the dtype under test from the kinds (no float64 copy of 2**31 values),
and read back a chunk of rows at a time."""
import numpy as np

from ..backends.torch_backend import exact_tensor


def _fill(torch, rows_view, values, pattern, dtype):
    """rows_view[r] = values[pattern[r]] for every row, one kind at a time (values are dtype values: exact)."""
    table = exact_tensor(values, dtype).to(rows_view.device)
    for kind in range(len(values)):
        rows_view[torch.from_numpy(np.flatnonzero(pattern == kind))] = table[kind]


def _in_layout(torch, case, geometry, dtype, device, values, pattern):
    """A tensor of the case's logits shape whose rows follow the pattern: (N, C) contiguous, or (B, T, C)
    contiguous handed over as its view (B, C, T), as `logits.transpose(1, 2)` hands an LM's logits to
    cross_entropy."""
    rows, classes = geometry.rows, geometry.classes
    shape = (rows, classes) if case.layout == "rows" else (2, rows // 2, classes)
    storage = torch.empty(shape, dtype=getattr(torch, dtype), device=device)
    _fill(torch, storage.view(rows, classes), values, pattern, dtype)
    return storage if case.layout == "rows" else storage.transpose(1, 2)


def per_position(case, geometry, values):
    """A per-row array (the targets, a 'none' loss's upstream) in the shape of the loss: (N,) or (B, T)."""
    return values if case.layout == "rows" else values.reshape(2, geometry.rows // 2)


def build(torch, case, geometry, kinds, dtype, device):
    """{"input": a leaf that takes a gradient, "target": class indices or None, "upstream": the gradient
    handed to the backward} on the device."""
    logits = _in_layout(torch, case, geometry, dtype, device, kinds.logits, kinds.pattern)
    logits = logits.detach().requires_grad_(True)
    target = None
    if kinds.targets is not None:
        target = torch.from_numpy(per_position(case, geometry, kinds.targets[kinds.pattern])).to(device)
    if kinds.upstream is None:
        upstream = torch.ones((), dtype=getattr(torch, dtype), device=device)
    elif kinds.upstream.ndim == 1:
        upstream = exact_tensor(per_position(case, geometry, kinds.upstream[kinds.pattern]), dtype).to(device)
    else:
        upstream = _in_layout(torch, case, geometry, dtype, device, kinds.upstream, kinds.pattern)
    return {"input": logits, "target": target, "upstream": upstream}


def row_chunks(tensor, class_dim, chunk_rows):
    """(first row, a (rows, C) view) of a tensor of the logits' shape, its rows in (position, class) order, at
    most chunk_rows rows at a time: no copy of the whole tensor, whatever its strides."""
    view = tensor.movedim(class_dim, -1)
    lead = tuple(view.shape[:-1])
    start = 0
    for index in np.ndindex(*lead[:-1]):
        block = view[index]
        for first in range(0, lead[-1], chunk_rows):
            yield start + first, block[first:first + chunk_rows]
        start += lead[-1]
