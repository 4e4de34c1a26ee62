"""Views of a tensor as rows along one dimension, and the per-row log-softmax every loss here builds on."""
import numpy as np

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
    """log-softmax and softmax of one row, computed on first use and shared by the forward and the gradient.

    log_softmax(x)_c = (x_c - m) - log(sum_j exp(x_j - m)) with m = max_j x_j: the shift keeps exact zeros exact
    (a one-element row gives 0, not rounding noise). A row with a NaN, a +inf, or only -inf entries has no
    defined softmax (inf/inf or 0/0) and gives NaN throughout (docs/spec-notes.md, "softmax rows"). A -inf entry
    of a defined row has probability exactly 0, with scale 0 (a term that is exactly 0), and log-probability -inf
    with scale +inf; only the entries a result reads are formed, so an arb row with a masked (-inf) vocabulary
    stays on the arb engine unless a -inf log-probability enters arithmetic (oracle/_engine_arb.py, Special).
    """

    __slots__ = ("engine", "is_nan", "size", "log_sum_exp", "_values", "_shifted", "_exps", "_total",
                 "_log_total", "_offset", "_probs", "_masked", "_value_scales", "_shift")

    def __init__(self, engine, row, states, index):
        self.engine, self.size, self._probs, self._masked, self._value_scales = engine, len(row), None, False, None
        self.is_nan = bool(states.undefined[index])
        if self.is_nan:
            return
        masked = states.neg_inf[index] if states.has_neg_inf[index] else None
        kept = row if masked is None else row[~masked]
        values, shifted, row_max = engine.differences(kept, states.maxima[index])
        self._finish(values, shifted, row_max)
        if masked is not None:  # full-length lists, None where the logit is -inf
            self._masked = True
            self._values, self._shifted, self._exps = (_spread(part, masked)
                                                       for part in (self._values, self._shifted, self._exps))

    @classmethod
    def undefined(cls, engine, size):
        """The softmax of a row that has none (a NaN in it, or no entries): NaN throughout."""
        row = cls.__new__(cls)
        row.engine, row.size, row._probs, row._masked, row.is_nan, row._value_scales = engine, size, None, False, \
            True, None
        return row

    @classmethod
    def of_numbers(cls, engine, values, shift, value_scales):
        """The softmax of a finite row of engine numbers that carry errors of their own (softcapped or computed
        logits): ``shift`` is any number near their maximum, ``value_scales`` the scale of each value (the
        terms that formed it). The logsumexp then also carries sum_c p_c S_c, the logits' errors it averages."""
        row = cls.__new__(cls)
        row.engine, row.size, row._probs, row._masked, row.is_nan = engine, len(values), None, False, False
        row._value_scales = value_scales
        row._finish(values, [v - shift for v in values], shift)
        row._offset = row._offset + engine.fdot(row.probs(), value_scales)
        return row

    def _finish(self, values, shifted, shift):
        engine = self.engine
        exps = list(map(engine.exp, shifted))
        self._total = engine.fsum(exps)
        self._log_total = engine.log(self._total)
        self.log_sum_exp = shift + self._log_total
        self._shift = shift
        self._offset = abs(self.log_sum_exp) + 1  # |logsumexp(x)| + 1 of every log-probability's scale
        self._values, self._shifted, self._exps = values, shifted, exps

    def _scale_of(self, c):
        return abs(self._values[c]) if self._value_scales is None else self._value_scales[c]

    def lse_scale(self):
        """The scale of logsumexp(x) = m + log(sum_c exp(x_c - m)): |m| + |log sum| + 1 (the sum, >= 1, is
        rounded relative to itself), and sum_c p_c S_c for logits with errors of their own."""
        if self.is_nan:
            return self.engine.nan
        return abs(self._shift) + abs(self._log_total) + (self._offset - abs(self.log_sum_exp))

    def _nans(self):
        return [self.engine.nan] * self.size

    def probs(self):
        """softmax(x)."""
        if self.is_nan:
            return self._nans()
        if self._probs is None:
            total, zero = self._total, self.engine.zero
            if self._masked:
                self._probs = [zero if e is None else e / total for e in self._exps]
            else:
                self._probs = [e / total for e in self._exps]
        return self._probs

    def log_probs(self):
        if self.is_nan:
            return self._nans()
        log_total = self._log_total
        if not self._masked:
            return [z - log_total for z in self._shifted]
        neg_inf = self.engine.neg_inf
        return [neg_inf if z is None else z - log_total for z in self._shifted]

    def log_prob(self, c):
        z = self._shifted[c]
        return self.engine.neg_inf if z is None else z - self._log_total

    def log_prob_scale(self, c):
        """|x_c| + |logsumexp(x)| + 1: the terms of x_c - logsumexp(x), and the rounding of the sum of exps
        (>= 1 after the shift), whose logarithm carries an absolute error of one roundoff (spec-notes, "Scale")."""
        x = self._values[c]
        return self.engine.inf if x is None else self._scale_of(c) + self._offset

    def log_prob_scales(self):
        if self.is_nan:
            return self._nans()
        if self._masked:
            return [self.log_prob_scale(c) for c in range(self.size)]
        offset = self._offset
        if self._value_scales is not None:
            return [s + offset for s in self._value_scales]
        return [abs(x) + offset for x in self._values]

    def prob_scales(self):
        """p_c * (|x_c| + |logsumexp(x)| + 1): exp() turns the exponent's absolute error into a relative one."""
        if self.is_nan:
            return self._nans()
        offset, zero = self._offset, self.engine.zero
        if self._value_scales is not None:
            return [p * (s + offset) for p, s in zip(self.probs(), self._value_scales)]
        if not self._masked:
            return [p * (abs(x) + offset) for p, x in zip(self.probs(), self._values)]
        return [zero if x is None else p * (abs(x) + offset) for p, x in zip(self.probs(), self._values)]


def _spread(kept_values, masked):
    """A full-length list: the kept values in order, None at the masked positions."""
    full = [None] * len(masked)
    for position, value in zip(np.flatnonzero(~masked).tolist(), kept_values):
        full[position] = value
    return full
