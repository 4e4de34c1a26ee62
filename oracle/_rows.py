"""Views of a tensor as rows along one dimension, and the per-row log-softmax every loss here builds on."""
import mpmath
import numpy as np
from mpmath import mp

from ._mp import NAN, fsum
from .errors import DimensionError, ShapeMismatchError


def normalize_dim(dim, ndim):
    """A dim in [-ndim, ndim) made non-negative; a 0-dim tensor accepts -1 and 0, as torch does."""
    span = max(ndim, 1)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not -span <= dim < span:
        raise DimensionError(f"dim={dim!r} is out of range for a {ndim}-dim input (expected an int in [{-span}, {span - 1}])")
    return int(dim) % span


def to_rows(array, dim):
    """(rows, restore): rows is a 2-D object array with ``dim`` last; restore(rows) inverts the view."""
    if array.ndim == 0:
        return array.reshape(1, 1), lambda rows: rows.reshape(())
    moved = np.moveaxis(array, dim, -1)
    moved_shape = moved.shape
    rows = moved.reshape(-1, moved_shape[-1]) if moved.size else np.empty((0, moved_shape[-1]), dtype=object)

    def restore(new_rows):
        return np.moveaxis(new_rows.reshape(moved_shape), -1, dim)

    return rows, restore


def class_rows(array, name="input"):
    """Rows over the class dimension of a loss input (C), (N, C) or (N, C, d1, ..., dK).

    Returns (rows, out_shape): rows has shape (M, C) with M = N * d1 * ... * dK in C order, and out_shape is the
    shape of the unreduced loss: () for an unbatched input, (N, d1, ..., dK) otherwise.
    """
    if array.ndim == 0:
        raise ShapeMismatchError(f"{name} must have 1 or more dimensions ((C), (N, C) or (N, C, d1, ..., dK)), got 0")
    class_dim = 0 if array.ndim == 1 else 1
    n_classes = array.shape[class_dim]
    if n_classes == 0:
        raise ShapeMismatchError(f"{name} has C = 0 classes along dim {class_dim}; at least one class is required")
    out_shape = () if array.ndim == 1 else (array.shape[0],) + array.shape[2:]
    rows, _ = to_rows(array, class_dim)
    return rows, out_shape


def rows_to_class_layout(rows, input_shape):
    """Inverse of class_rows for per-class results (gradients): (M, C) rows back to the input's shape."""
    if len(input_shape) == 1:
        return rows.reshape(input_shape)
    moved_shape = (input_shape[0],) + tuple(input_shape[2:]) + (input_shape[1],)
    return np.moveaxis(rows.reshape(moved_shape), -1, 1)


class RowSoftmax:
    """log-softmax and softmax of one row, computed once and shared by the forward and the gradient.

    log_softmax(x)_c = (x_c - m) - log(sum_j exp(x_j - m)) with m = max_j x_j: the shift keeps exact zeros exact
    (a one-element row gives 0, not rounding noise). A row with a NaN, a +inf, or only -inf entries has no
    defined softmax (inf/inf or 0/0) and gives NaN throughout (docs/spec-notes.md, "softmax rows").
    """

    __slots__ = ("row", "log_probs", "log_sum_exp", "_exps", "_total", "_probs")

    def __init__(self, row):
        self.row, self._probs = row, None
        if len(row) == 0 or any(mpmath.isnan(x) for x in row) or max(row) in (mpmath.inf, -mpmath.inf):
            self.log_probs = [NAN] * len(row)
            self._probs = [NAN] * len(row)
            self.log_sum_exp = NAN
            return
        row_max = max(row)
        shifted = [x - row_max for x in row]
        self._exps = [mp.exp(z) for z in shifted]
        self._total = fsum(self._exps)
        log_total = mp.log(self._total)
        self.log_sum_exp = row_max + log_total
        self.log_probs = [z - log_total for z in shifted]

    @property
    def is_nan(self):
        return mpmath.isnan(self.log_sum_exp)

    @property
    def probs(self):
        """softmax(x), computed on first use (a loss's forward does not need it)."""
        if self._probs is None:
            self._probs = [e / self._total for e in self._exps]
        return self._probs

    def log_prob_scales(self):
        """|x_c| + |logsumexp(x)| + 1: the terms of x_c - logsumexp(x), and the rounding of the sum of exps
        (>= 1 after the shift), whose logarithm carries an absolute error of one roundoff (spec-notes, "Scale")."""
        return [abs(x) + abs(self.log_sum_exp) + 1 for x in self.row]

    def prob_scales(self):
        """p_c * (|x_c| + |logsumexp(x)| + 1): exp() turns the exponent's absolute error into a relative one."""
        return [p * s for p, s in zip(self.probs, self.log_prob_scales())]
