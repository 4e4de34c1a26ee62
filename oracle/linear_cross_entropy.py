"""Fused linear cross entropy: the cross entropy of logits = input @ linear_weight^T + linear_bias that a kernel
never materialises (docs/extensions.md), with its vector-Jacobian product.

The logits are the exact dot products (oracle/_dot.py: no rounding at all), each with its scale, the sum of the
absolute values of its terms, sum_h |x_{n,h} W_{v,h}| + |b_v| (exact, then rounded once to float64): a kernel's
logit carries an error relative to that, which every later scale carries on. The cross entropy of the exact
logits is then the cross entropy oracle's, with every keyword of the extended contract. The gradients contract
G = d loss / d logits (certified) with the exact weights and inputs: d/dx = G W, d/dW = G^T x, d/db = sum_n G.
"""
import numpy as np

from ._dispatch import oracle_function
from ._dot import exact_matmul, to_float64
from ._engine import current_engine
from ._exact import exact_array
from ._mp import Evaluation, Gradients, object_array
from ._rows import class_rows
from .cross_entropy import Setup, backward, forward
from .errors import ExtensionArgumentError, ShapeMismatchError


def _exact_mpf(mantissas, exponents):
    """An object array of exact mpf from integer mantissas and exponents (no rounding at any precision)."""
    import mpmath
    from mpmath.libmp import from_man_exp

    make = mpmath.mp.make_mpf
    flat = [make(from_man_exp(int(m), int(e))) for m, e in zip(mantissas.flat, exponents.flat)]
    return object_array(flat, mantissas.shape)


def _checked(input, linear_weight, linear_bias):
    """The three tensors as exact arrays, after the documented shape rules: input (H) or (N, H), linear_weight
    (C, H) or, for a batched input, (C, d1, ..., dK, H); linear_bias of linear_weight's shape without H."""
    x, w = exact_array(input, "input"), exact_array(linear_weight, "linear_weight")
    b = None if linear_bias is None else exact_array(linear_bias, "linear_bias")
    if x.ndim not in (1, 2) or w.ndim < 2 or x.shape[-1] != w.shape[-1]:
        raise ShapeMismatchError(f"input (H) or (N, H) and linear_weight (C, ..., H) must share H; got {x.shape} "
                                 f"and {w.shape}")
    if x.ndim == 1 and w.ndim > 2:
        raise ShapeMismatchError("a K-dimensional linear_weight needs a batched (N, H) input")
    if w.shape[0] == 0:
        raise ShapeMismatchError("linear_weight has C = 0 rows; at least one class is required")
    if b is not None and b.shape != w.shape[:-1]:
        raise ShapeMismatchError(f"linear_bias must have shape {w.shape[:-1]}, got {b.shape}")
    for name, array in (("input", x), ("linear_weight", w), ("linear_bias", b)):
        if array is not None and not np.all(np.isfinite(np.asarray(array, dtype=np.float64))):
            raise ExtensionArgumentError(f"{name} must be finite: the logits of linear_cross_entropy are computed "
                                         "from finite values only (docs/extensions.md)")
    return x, w, b


class Linear:
    """The exact logits of one call, in their documented shape ((C,) or (N, C, d1, ..., dK)), and the scale of
    each as rows of numbers in the class-row order of the cross entropy (oracle/_rows.class_rows); ``x2`` (N, H)
    and ``w2`` (C d1 ... dK, H) are the flat views the gradients contract with."""

    def __init__(self, engine, input, linear_weight, linear_bias):
        self.x, self.w, self.b = _checked(input, linear_weight, linear_bias)
        as_float = (lambda a: None if a is None else np.asarray(a, dtype=np.float64))
        self.x2 = as_float(self.x).reshape(-1, self.x.shape[-1])
        self.w2 = as_float(self.w).reshape(-1, self.w.shape[-1])
        bias = None if self.b is None else as_float(self.b).reshape(-1)
        shape = tuple(self.w.shape[:-1]) if self.x.ndim == 1 else (self.x.shape[0],) + tuple(self.w.shape[:-1])
        mantissas, exponents = exact_matmul(self.x2, self.w2, bias)
        self.logits = _exact_mpf(mantissas, exponents).reshape(shape)
        magnitude = to_float64(*exact_matmul(np.abs(self.x2), np.abs(self.w2), None if bias is None
                                             else np.abs(bias))).reshape(shape)
        rows, _ = class_rows(magnitude)
        self.scales = [engine.numbers(row) for row in rows]


def _setup(input, linear_weight, target, linear_bias, weight, ignore_index, reduction, label_smoothing, extensions):
    engine = current_engine()
    linear = Linear(engine, input, linear_weight, linear_bias)
    ignore_index = -100 if ignore_index is None else ignore_index  # the documented default for class indices
    setup = Setup(linear.logits, target, weight, None, ignore_index, None, reduction, label_smoothing, extensions,
                  value_scales=linear.scales)
    return linear, setup


@oracle_function
def linear_cross_entropy(input, linear_weight, target, linear_bias=None, weight=None, ignore_index=-100,
                         reduction="mean", label_smoothing=0.0, softcap=None, z_loss_scale=0.0,
                         z_loss_weighting="count", return_outputs=()):
    """cross_entropy(input @ linear_weight^T + linear_bias, target, weight, ...) with exact logits.

    input (N, H), linear_weight (V, H), linear_bias (V,) or None, target (N,) int64 class indices; weight (V,)
    class weights. Every other keyword as cross_entropy's (docs/extensions.md).
    """
    _, setup = _setup(input, linear_weight, target, linear_bias, weight, ignore_index, reduction, label_smoothing,
                      dict(softcap=softcap, z_loss_scale=z_loss_scale, z_loss_weighting=z_loss_weighting,
                           return_outputs=return_outputs))
    return forward(setup)


@oracle_function
def linear_cross_entropy_vjp(input, linear_weight, target, grad_output, linear_bias=None, weight=None,
                             ignore_index=-100, reduction="mean", label_smoothing=0.0, softcap=None, z_loss_scale=0.0,
                             z_loss_weighting="count", return_outputs=()):
    """Gradients of linear_cross_entropy with respect to input, linear_weight and linear_bias."""
    linear, setup = _setup(input, linear_weight, target, linear_bias, weight, ignore_index, reduction,
                           label_smoothing, dict(softcap=softcap, z_loss_scale=z_loss_scale,
                                                 z_loss_weighting=z_loss_weighting, return_outputs=return_outputs))
    engine = setup.engine
    logits = backward(setup, grad_output)["input"]  # G, in the logits' shape, with scales
    n, k = linear.x2.shape[0], linear.w2.shape[0]
    g_rows = [list(row) for row in logits.value.reshape(n, k)]
    s_rows = [list(row) for row in logits.scale.reshape(n, k)]
    x_cols = [engine.numbers(col) for col in linear.x2.T]  # (H lists of N)
    w_cols = [engine.numbers(col) for col in linear.w2.T]  # (H lists of C d1 ... dK)
    abs_x_cols, abs_w_cols = [[abs(a) for a in col] for col in x_cols], [[abs(a) for a in col] for col in w_cols]
    g_cols, s_cols = [list(col) for col in zip(*g_rows)], [list(col) for col in zip(*s_rows)]
    grad_x = _evaluation([[engine.fdot(g, w) for w in w_cols] for g in g_rows],
                         [[engine.fdot(s, w) for w in abs_w_cols] for s in s_rows], linear.x.shape)
    grad_w = _evaluation([[engine.fdot(g, x) for x in x_cols] for g in g_cols],
                         [[engine.fdot(s, x) for x in abs_x_cols] for s in s_cols], linear.w.shape)
    gradients = Gradients(input=grad_x, linear_weight=grad_w)
    if linear.b is not None:
        gradients["linear_bias"] = Evaluation(object_array([engine.fsum(col) for col in g_cols], linear.b.shape),
                                              object_array([engine.fsum(col) for col in s_cols], linear.b.shape))
    return gradients


def _evaluation(values, scales, shape):
    return Evaluation(object_array([a for row in values for a in row], shape),
                      object_array([a for row in scales for a in row], shape))
