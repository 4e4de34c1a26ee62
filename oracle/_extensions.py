"""The extended cross-entropy contract of fused kernels (docs/extensions.md): logit softcapping, the z-loss and
the per-row outputs, as the cross-entropy formulas use them.

- softcap c: every logit x becomes y = c tanh(x / c) before anything else (+-inf become +-c); dy/dx = 1 - t^2.
  A softcapped row is finite, so only a NaN leaves its softmax undefined. The scale of y is |y| + (1 - t^2) S_x,
  S_x the scale of x (|x|, or the terms of a computed logit).
- z-loss: z_n = s lse_n^2 for each row that counts (not ignored), reduced as the loss ('mean': over the number of
  counted rows, or with z_loss_weighting="class" weighted by w_{y_n} over the loss's own 'mean' divisor).
- outputs: lse (every row), target_logprob (class indices; 0 on ignored rows), entropy (every row), z_loss.
"""
import numpy as np

from ._exact import isnan, isneginf, isposinf
from ._rows import RowSoftmax
from .errors import ExtensionArgumentError

OUTPUTS = ("z_loss", "lse", "target_logprob", "entropy")
Z_LOSS_WEIGHTINGS = ("count", "class")


def _finite_number(value):
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating)) \
        and np.isfinite(float(value))


class Extensions:
    """The extended arguments of one call, checked; ``active`` when any differs from plain cross entropy."""

    def __init__(self, engine, softcap=None, z_loss_scale=0.0, z_loss_weighting="count", return_outputs=()):
        if softcap is not None and not (_finite_number(softcap) and float(softcap) > 0):
            raise ExtensionArgumentError(f"softcap must be None or a finite number > 0, got {softcap!r}")
        if not (_finite_number(z_loss_scale) and float(z_loss_scale) >= 0):
            raise ExtensionArgumentError(f"z_loss_scale must be a finite number >= 0, got {z_loss_scale!r}")
        if z_loss_weighting not in Z_LOSS_WEIGHTINGS:
            raise ExtensionArgumentError(f"z_loss_weighting must be one of {Z_LOSS_WEIGHTINGS}, got "
                                         f"{z_loss_weighting!r}")
        outputs = tuple(return_outputs) if isinstance(return_outputs, (list, tuple)) else None
        if outputs is None or any(name not in OUTPUTS for name in outputs) or len(set(outputs)) != len(outputs):
            raise ExtensionArgumentError(f"return_outputs must list distinct names among {OUTPUTS}, got "
                                         f"{return_outputs!r}")
        self.engine, self.outputs, self.weighting = engine, outputs, z_loss_weighting
        self.softcap_value = None if softcap is None else float(softcap)
        self.softcap = None if softcap is None else engine.number(float(softcap))
        self.z_value = float(z_loss_scale)
        self.z_scale = engine.number(self.z_value)
        self.active = softcap is not None or self.z_value != 0 or bool(outputs)

    def softmax(self, row, value_scales=None):
        """(RowSoftmax of the softcapped row, the derivative dy/dx of each entry) of an exact row; value_scales
        the scales of computed logits (None: the row's own |x|)."""
        engine, c = self.engine, self.softcap
        if row.size == 0 or isnan(row).any():
            return RowSoftmax.undefined(engine, row.size), None
        tanhs = _tanhs(engine, row, c)
        values = [c * t for t in tanhs]
        derivatives = [engine.one - t * t for t in tanhs]
        magnitudes = value_scales if value_scales is not None else [abs(x) for x in engine_numbers(engine, row)]
        scales = [abs(y) + d * s for y, d, s in zip(values, derivatives, magnitudes)]
        shift = values[int(_argmax(row))]
        return RowSoftmax.of_numbers(engine, values, shift, scales), derivatives


def engine_numbers(engine, row):
    """The entries of a finite-or-infinite exact row as numbers, an infinity as the largest finite magnitude it
    saturates to (its softcap is +-c; only its scale uses this, times dy/dx = 0)."""
    finite = np.where(np.isfinite(row.astype(np.float64)), row, 0) if row.dtype != object else \
        np.array([0 if (isposinf(row[i:i + 1])[0] or isneginf(row[i:i + 1])[0]) else v
                  for i, v in enumerate(row)], dtype=object)
    return engine.numbers(finite)


def _tanhs(engine, row, c):
    """tanh(x / c) per entry: exactly +-1 at +-inf (decided on the exact input)."""
    pos, neg = isposinf(row), isneginf(row)
    numbers = engine_numbers(engine, row)
    one = engine.one
    return [one if p else -one if n else engine.tanh(x / c) for x, p, n in zip(numbers, pos, neg)]


def _argmax(row):
    """The position of a row's largest exact entry (softcap is increasing, so it gives the largest y)."""
    if row.dtype != object:
        return np.argmax(row)
    best = 0
    for i, v in enumerate(row):
        if v > row[best]:
            best = i
    return best


def z_terms(engine, extensions, softmax, weight=None):
    """(z_n, its scale) of a counted row: s lse^2 (times w_{y_n} when weighted by class)."""
    lse, s = softmax.log_sum_exp, extensions.z_scale
    value = s * lse * lse
    scale = 2 * s * abs(lse) * softmax.lse_scale()
    if weight is not None:
        value, scale = weight * value, abs(weight) * scale
    return value, scale


def z_gradient(engine, extensions, softmax, upstream):
    """(values, scales) of d z_n / d y_c times the row's upstream gradient: 2 s lse p_c g."""
    lse, s = softmax.log_sum_exp, extensions.z_scale
    factor = 2 * s * upstream
    lse_scale, abs_lse, abs_factor = softmax.lse_scale(), abs(lse), abs(factor)
    values = [factor * lse * p for p in softmax.probs()]
    scales = [abs_factor * (p * lse_scale + abs_lse * q) for p, q in zip(softmax.probs(), softmax.prob_scales())]
    return values, scales


def entropy(engine, softmax):
    """(-sum_c p_c log p_c, its scale sum_c p_c S_c (|log p_c| + 1)) of a row; masked entries add 0."""
    if softmax.is_nan:
        return engine.nan, engine.nan
    probs, logs, scales = softmax.probs(), softmax.log_probs(), softmax.log_prob_scales()
    pairs = [(p, lp, s) for p, lp, s in zip(probs, logs, scales) if not engine.is_exact_zero(p)]
    value = -engine.fdot([p for p, _, _ in pairs], [lp for _, lp, _ in pairs])
    scale = engine.fsum([p * s * (abs(lp) + 1) for p, lp, s in pairs])
    return value, scale
