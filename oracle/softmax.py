"""softmax and log_softmax along one dimension, with their vector-Jacobian products."""
import numpy as np

from ._dispatch import oracle_function
from ._engine import current_engine
from ._exact import RowStates, exact_array
from ._mp import Evaluation, Gradients
from ._rows import RowSoftmax, normalize_dim, to_rows


def implicit_dim(ndim):
    """torch's rule for dim=None (deprecated, with a warning): dim 0 for 0-, 1- and 3-dim inputs, else dim 1."""
    return 0 if ndim in (0, 1, 3) else 1


def _rowwise(x, dim, per_row):
    """Apply per_row(RowSoftmax, row_index) -> (values, scales) to every row along dim; restore the layout."""
    engine = current_engine()
    values = exact_array(x)
    dim = normalize_dim(implicit_dim(values.ndim) if dim is None else dim, values.ndim)
    rows, restore = to_rows(values, dim)
    states = RowStates(rows)
    out_values, out_scales = np.empty(rows.shape, dtype=object), np.empty(rows.shape, dtype=object)
    for i in range(rows.shape[0]):
        out_values[i], out_scales[i] = per_row(RowSoftmax(engine, rows[i], states, i), i)
    return Evaluation(restore(out_values), restore(out_scales))


@oracle_function
def softmax(x, dim=None):
    """Softmax(x_i) = exp(x_i) / sum_j exp(x_j), along ``dim``.

    dim=None follows torch's implicit rule (``implicit_dim``). Rows with a NaN, a +inf or only -inf entries are
    NaN (docs/spec-notes.md). Returns an object array of mpf with the shape of ``x``.
    """
    return _rowwise(x, dim, lambda r, _: (r.probs(), r.prob_scales()))


@oracle_function
def log_softmax(x, dim=None):
    """LogSoftmax(x_i) = log(exp(x_i) / sum_j exp(x_j)) = x_i - log(sum_j exp(x_j)), along ``dim``."""
    return _rowwise(x, dim, lambda r, _: (r.log_probs(), r.log_prob_scales()))


def _grad_rows(grad_output, x_shape, dim):
    grads = exact_array(grad_output, "grad_output")
    if grads.shape != tuple(x_shape):
        raise ValueError(f"grad_output has shape {grads.shape}, expected the input's shape {tuple(x_shape)}")
    return to_rows(grads, normalize_dim(implicit_dim(len(x_shape)) if dim is None else dim, len(x_shape)))[0]


@oracle_function
def softmax_vjp(x, grad_output, dim=None):
    """grad_x_i = y_i * (g_i - sum_j g_j y_j) with y = softmax(x), along ``dim``. Returns Gradients(input)."""
    engine = current_engine()
    g_rows = _grad_rows(grad_output, np.shape(x), dim)

    def per_row(r, i):
        g, probs = engine.numbers(g_rows[i]), r.probs()
        abs_g = [abs(gj) for gj in g]
        dot, dot_scale = engine.fdot(g, probs), engine.fdot(abs_g, probs)
        return ([y * (gi - dot) for gi, y in zip(g, probs)],
                [s * (a + dot_scale) for a, s in zip(abs_g, r.prob_scales())])

    return Gradients(_rowwise(x, dim, per_row))


@oracle_function
def log_softmax_vjp(x, grad_output, dim=None):
    """grad_x_i = g_i - softmax(x)_i * sum_j g_j, along ``dim``. Returns Gradients(input)."""
    engine = current_engine()
    g_rows = _grad_rows(grad_output, np.shape(x), dim)

    def per_row(r, i):
        g = engine.numbers(g_rows[i])
        abs_g = [abs(gj) for gj in g]
        total, total_scale = engine.fsum(g), engine.fsum(abs_g)
        return ([gi - p * total for gi, p in zip(g, r.probs())],
                [a + s * total_scale for a, s in zip(abs_g, r.prob_scales())])

    return Gradients(_rowwise(x, dim, per_row))
