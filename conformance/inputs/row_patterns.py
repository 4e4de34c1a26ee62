"""Patterns along the class dimension that block-looping kernels get wrong, applied to generated inputs, and the
placement of class-index targets (docs/case-format.md, "Rows and targets for blocked kernels").

Input patterns (keys of an input's spec): ``increasing`` (each row sorted ascending, so that every block holds
a new running maximum), ``peak: first|last`` (the row's maximum, ``peak_height`` above the rest, at that end),
``neg_inf_leading: n`` (the first n classes of each row -inf, at most C - 1 of them), ``confident: p`` (after
the targets exist: the target logit set so that its probability is p). Target options: ``positions`` (class
per row, cycled; negative counts from the end, wrapped modulo C), ``sorted`` (classes ascending, so that class
weights cluster by chunk of rows), ``ignore_pattern: leading`` (the ignored rows first instead of scattered).

Only exact operations are used, except ``confident``, evaluated in mpmath and rounded once to float64, so the
inputs stay bit-identical on every machine.
"""
import mpmath
import numpy as np

from ..spec.classes import class_dim

TRANSFORM_PREC = 96


def _moved(values, dim=None):
    """The values with ``dim`` (default: the class dimension) last, a view for in-place edits; None for 0-dim."""
    if values.ndim == 0:
        return None
    return np.moveaxis(values, class_dim(values.ndim) if dim is None else dim, -1)


def apply_row_patterns(values, spec):
    """The input with its row patterns applied along the spec's ``dim`` (default: the class dim), as a new array."""
    values = np.array(values, dtype=np.float64)
    rows = _moved(values, spec.get("dim"))
    if rows is None or rows.shape[-1] == 0:
        return values
    if spec.get("increasing"):
        rows[...] = np.sort(rows, axis=-1)
    if "peak" in spec:
        position = 0 if spec["peak"] == "first" else -1
        rows[..., position] = rows.max(axis=-1) + float(spec.get("peak_height", 4.0))
    leading = min(int(spec.get("neg_inf_leading", 0)), rows.shape[-1] - 1)
    if leading > 0:
        rows[..., :leading] = -np.inf
    return values


def place_targets(target, spec, n_classes, ignore_index):
    """Class-index targets with the placement options of ``spec`` applied (before ignored rows are chosen)."""
    flat = target.reshape(-1)
    if "positions" in spec and flat.size and n_classes:
        positions = [int(p) % n_classes for p in spec["positions"]]
        flat[:] = [positions[k % len(positions)] for k in range(flat.size)]
    if spec.get("sorted"):
        flat[:] = np.sort(flat)
    return flat.reshape(target.shape)


def ignored_positions(count, size, spec, rng):
    """Which flat positions of the target are ignored: the first ``count`` (leading), else a random choice."""
    if spec.get("ignore_pattern") == "leading":
        return np.arange(count)
    return rng.permutation(size)[:count]


def _confident_row(row, target, probability):
    """The row with row[target] set so that softmax(row)[target] == probability (to float64 rounding)."""
    with mpmath.workprec(TRANSFORM_PREC):
        others = [mpmath.mpf(x) for k, x in enumerate(row) if k != target and np.isfinite(x)]
        if not others:
            return row
        top = max(others)
        log_rest = top + mpmath.log(mpmath.fsum(mpmath.exp(x - top) for x in others))
        odds = mpmath.mpf(probability) / (1 - mpmath.mpf(probability))
        row[target] = float(log_rest + mpmath.log(odds))
    return row


def make_confident(values, target, probability):
    """Logits whose target classes have softmax probability ``probability`` (ignored targets left alone)."""
    values = np.array(values, dtype=np.float64)
    rows = _moved(values)
    if rows is None:
        return values
    flat_rows, flat_targets = rows.reshape(-1, rows.shape[-1]), np.asarray(target).reshape(-1)
    for index, (row, label) in enumerate(zip(flat_rows, flat_targets)):
        if 0 <= label < row.size:
            flat_rows[index] = _confident_row(row.copy(), int(label), probability)
    rows[...] = flat_rows.reshape(rows.shape)
    return values
