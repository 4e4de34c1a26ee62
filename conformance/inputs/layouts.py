"""Memory layouts: the same values handed to a backend as a different strided tensor (docs/case-format.md,
"Layouts"). The oracle sees the values only; a layout changes nothing but where they sit in memory.

``strided(values, layout)`` returns (buffer, strides, offset): a flat buffer and element strides such that
``as_strided(buffer, values.shape, strides, offset)`` holds exactly ``values``. The places a layout skips are
filled with poison (NaN, or a large integer), so a kernel that reads outside the tensor's elements shows it.
torch tensors are made from the plan (backends/torch_backend.py); ``numpy_view`` makes the numpy view for array
backends that take strided arrays.

Layouts: ``transposed`` (the last two dims reversed in memory: logits made as (C, N) and ``.t()``), ``sliced``
(every other element of a wider last dim: ``x[:, ::2]``), ``sliced_rows`` (every third of a longer first dim:
``x[::3]``), ``offset`` (a view into a larger buffer, at a storage offset), ``row_padded`` (each row of the last
dim padded: rows evenly spaced but not contiguous, a ``narrow`` of a wider buffer), ``batch_padded`` (the
second-to-last dim padded in a tensor of 3 or more dims: flattened rows are not evenly spaced),
``size1_stride`` (every dim of size 1 given an arbitrary stride: torch still calls such a tensor contiguous),
``channels_last`` (a 4-dim tensor in NHWC order), ``expanded`` (one value, every stride 0: ``loss.sum()``'s
upstream gradient) and ``expanded_rows`` (the last dim of stride 0: a per-row value broadcast along it).
"""
import numpy as np

from ..spec.features import LAYOUTS  # noqa: F401 -- the names, with the features they make

SIZE1_STRIDE = 12345  # any stride: a dim of size 1 never moves


class LayoutError(ValueError):
    """A layout the values cannot take (too few dims, values not constant where they would be expanded)."""


def _poison(dtype):
    return np.nan if np.dtype(dtype).kind == "f" else np.iinfo(np.dtype(dtype)).max if np.dtype(dtype).kind in "iu" \
        else True


def _plan_of_view(base, view):
    """(flat buffer of ``base``, element strides and offset of ``view``, a view into ``base``)."""
    itemsize = base.itemsize
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // itemsize
    return base.reshape(-1), tuple(s // itemsize for s in view.strides), int(offset)


def _padded_base(shape, dtype, axis, factor=1, extra=0):
    """A poison-filled buffer of ``shape`` widened along ``axis`` (times factor, plus extra)."""
    wide = list(shape)
    wide[axis] = wide[axis] * factor + extra
    return np.full(wide, _poison(dtype), dtype=dtype)


def strided(values, layout):
    """(buffer, strides, offset) of ``values`` in ``layout``; LayoutError when the values cannot take it."""
    values = np.asarray(values)
    shape, ndim = values.shape, values.ndim
    if layout == "contiguous":
        return values.reshape(-1).copy(), tuple(s // values.itemsize for s in np.ascontiguousarray(values).strides), 0
    if layout in ("expanded", "expanded_rows"):
        return _expanded(values, layout)
    if layout == "offset":
        buffer = np.concatenate([np.full(3, _poison(values.dtype), values.dtype), values.reshape(-1),
                                 np.full(2, _poison(values.dtype), values.dtype)])
        return buffer, strided(values, "contiguous")[1], 3
    if layout == "size1_stride":
        _, strides, _ = strided(values, "contiguous")
        return values.reshape(-1).copy(), tuple(SIZE1_STRIDE if n == 1 else s for n, s in zip(shape, strides)), 0
    needs = {"transposed": 2, "sliced": 1, "sliced_rows": 1, "row_padded": 1, "batch_padded": 3, "channels_last": 4}
    if layout not in needs:
        raise LayoutError(f"unknown layout {layout!r}; the layouts are {', '.join(LAYOUTS)}")
    if ndim < needs[layout] or (layout == "channels_last" and ndim != 4):
        raise LayoutError(f"layout {layout} needs {needs[layout]} dims, the tensor has {ndim}")
    if layout == "transposed":
        base = np.ascontiguousarray(np.swapaxes(values, -1, -2))
        return _plan_of_view(base, np.swapaxes(base, -1, -2))
    if layout == "channels_last":
        base = np.ascontiguousarray(np.transpose(values, (0, 2, 3, 1)))
        return _plan_of_view(base, np.transpose(base, (0, 3, 1, 2)))
    axis, factor, extra, index = {
        "sliced": (-1, 2, 0, (Ellipsis, slice(None, None, 2))),
        "sliced_rows": (0, 3, 0, slice(None, None, 3)),
        "row_padded": (-1, 1, 3, (Ellipsis, slice(0, shape[-1]))),
        "batch_padded": (-2, 1, 2, (Ellipsis, slice(0, shape[-2] if ndim >= 2 else 0), slice(None))),
    }[layout]
    base = _padded_base(shape, values.dtype, axis, factor, extra)
    base[index] = values
    return _plan_of_view(base, base[index])


def _expanded(values, layout):
    """One value for all (``expanded``) or one per row along the last dim (``expanded_rows``), strides 0."""
    if layout == "expanded":
        flat = values.reshape(-1)
        if flat.size and not np.all((flat == flat[0]) | (np.isnan(flat) & np.isnan(flat[0]))):
            raise LayoutError("layout expanded needs one value in every element")
        return flat[:1].copy() if flat.size else flat.copy(), (0,) * values.ndim, 0
    if values.ndim == 0 or (values.shape[-1] and not np.all(values == values[..., :1])):
        raise LayoutError("layout expanded_rows needs the values constant along the last dim")
    rows = np.ascontiguousarray(values[..., :1])
    _, strides, _ = strided(rows, "contiguous")
    return rows.reshape(-1), strides[:-1] + (0,), 0


def numpy_view(values, layout):
    """``values`` as a numpy array in ``layout`` (a read-only view of its own buffer), for array backends."""
    buffer, strides, offset = strided(values, layout)
    itemsize = buffer.itemsize
    view = np.lib.stride_tricks.as_strided(buffer[offset:], np.shape(values), tuple(s * itemsize for s in strides),
                                           writeable=False)
    return view
