"""softmax and log_softmax along one dimension, with their vector-Jacobian products."""
import numpy as np

from ._mp import Gradients, fsum, to_mpf_array, working_precision, wrap
from ._rows import RowSoftmax, normalize_dim, to_rows


def implicit_dim(ndim):
    """torch's rule for dim=None (deprecated, with a warning): dim 0 for 0-, 1- and 3-dim inputs, else dim 1."""
    return 0 if ndim in (0, 1, 3) else 1


def _rowwise(x, dim, prec, per_row):
    """Apply per_row(RowSoftmax, row_index) -> (values, scales) to every row along dim; restore the layout."""
    with working_precision(prec):
        values = to_mpf_array(x)
        dim = normalize_dim(implicit_dim(values.ndim) if dim is None else dim, values.ndim)
        rows, restore = to_rows(values, dim)
        out_values, out_scales = np.empty(rows.shape, dtype=object), np.empty(rows.shape, dtype=object)
        for i, row in enumerate(rows):
            out_values[i], out_scales[i] = per_row(RowSoftmax(list(row)), i)
        return restore(out_values), restore(out_scales)


def softmax(x, dim=None, *, prec=None, return_scale=False):
    """Softmax(x_i) = exp(x_i) / sum_j exp(x_j), along ``dim``.

    dim=None follows torch's implicit rule (``implicit_dim``). Rows with a NaN, a +inf or only -inf entries are
    NaN (docs/spec-notes.md). Returns an object array of mpf with the shape of ``x``.
    """
    value, scale = _rowwise(x, dim, prec, lambda r, _: (r.probs, r.prob_scales()))
    return wrap(value, scale, return_scale)


def log_softmax(x, dim=None, *, prec=None, return_scale=False):
    """LogSoftmax(x_i) = log(exp(x_i) / sum_j exp(x_j)) = x_i - log(sum_j exp(x_j)), along ``dim``."""
    value, scale = _rowwise(x, dim, prec, lambda r, _: (r.log_probs, r.log_prob_scales()))
    return wrap(value, scale, return_scale)


def _grad_rows(grad_output, x_shape, dim):
    grads = to_mpf_array(grad_output, "grad_output")
    if grads.shape != tuple(x_shape):
        raise ValueError(f"grad_output has shape {grads.shape}, expected the input's shape {tuple(x_shape)}")
    return to_rows(grads, normalize_dim(implicit_dim(len(x_shape)) if dim is None else dim, len(x_shape)))[0]


def softmax_vjp(x, grad_output, dim=None, *, prec=None, return_scale=False):
    """grad_x_i = y_i * (g_i - sum_j g_j y_j) with y = softmax(x), along ``dim``. Returns Gradients(input)."""
    with working_precision(prec):
        g_rows = _grad_rows(grad_output, np.shape(x), dim)

        def per_row(r, i):
            g = list(g_rows[i])
            dot = fsum(gj * yj for gj, yj in zip(g, r.probs))
            dot_scale = fsum(abs(gj) * yj for gj, yj in zip(g, r.probs))
            return ([y * (gi - dot) for gi, y in zip(g, r.probs)],
                    [s * (abs(gi) + dot_scale) for gi, s in zip(g, r.prob_scales())])

        value, scale = _rowwise(x, dim, prec, per_row)
    return Gradients(wrap(value, scale, return_scale))


def log_softmax_vjp(x, grad_output, dim=None, *, prec=None, return_scale=False):
    """grad_x_i = g_i - softmax(x)_i * sum_j g_j, along ``dim``. Returns Gradients(input)."""
    with working_precision(prec):
        g_rows = _grad_rows(grad_output, np.shape(x), dim)

        def per_row(r, i):
            g = list(g_rows[i])
            total, total_scale = fsum(g), fsum(abs(gj) for gj in g)
            return ([gi - p * total for gi, p in zip(g, r.probs)],
                    [abs(gi) + s * total_scale for gi, s in zip(g, r.prob_scales())])

        value, scale = _rowwise(x, dim, prec, per_row)
    return Gradients(wrap(value, scale, return_scale))
