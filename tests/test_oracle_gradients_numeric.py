"""Every oracle VJP against numerical differentiation of the oracle's own forward, at 256 bits.

For a VJP of f with upstream gradient g, the gradient with respect to an operand element u_i is the derivative
of  t -> sum(g * f(u + t e_i))  at t = 0. That derivative is taken here by a fourth-order central difference
with step h = 2**-60 at 256 bits (truncation ~h**4 = 2**-240, rounding ~2**-256 / h = 2**-196), so it is
independent of the analytic formulas and good to far better than the 1e-25 relative agreement required.
Perturbed operands are passed to the forward as object arrays of mpf, so the perturbation is not rounded away.
"""
import math

import mpmath
import numpy as np
import pytest

from oracle import (cross_entropy, cross_entropy_vjp, kl_div, kl_div_vjp, log_softmax, log_softmax_vjp, nll_loss,
                    nll_loss_vjp, softmax, softmax_vjp)
from test_oracle_engine_fixture import oracle_engine  # noqa: F401 (autouse: each test runs on every engine)

PREC = 256
STEP = mpmath.ldexp(1, -60)
CENTRAL_WEIGHTS = {-2: 1, -1: -8, 1: 8, 2: -1}  # (f(-2h) - 8 f(-h) + 8 f(h) - f(2h)) / (12 h)
RELATIVE_TOLERANCE = mpmath.mpf("1e-25")

LOSS_REDUCTIONS = ("none", "mean", "sum")
KL_REDUCTIONS = ("none", "mean", "batchmean", "sum")
LOSS_SHAPES = ((4,), (3, 4), (2, 3, 2))  # (C), (N, C), (N, C, d1)
KL_SHAPES = ((), (3, 4), (2, 3, 2))
WEIGHT_KINDS = ("none", "positive", "with_zero")
ZERO_WEIGHT_CLASS = 2
IGNORE_INDICES = (-100, 1)
LABEL_SMOOTHINGS = (0.0, 0.2, 1.0)


def shape_id(shape):
    return "x".join(map(str, shape)) or "scalar"


def make_rng(tag, shape):
    """A generator seeded by a non-negative tag and the shape, so inputs are reproducible and case-specific."""
    return np.random.default_rng([tag, len(shape), *shape])


def rounded_normal(rng, shape, scale=2.0):
    return np.round(rng.normal(0.0, scale, shape), 2)


def exact_mpf(array):
    """An object array of mpf holding the float64 values exactly."""
    array = np.asarray(array, dtype=np.float64)
    return np.array([mpmath.mpf(float(v)) for v in array.flat], dtype=object).reshape(array.shape)


def class_weight(kind, n_classes, rng):
    if kind == "none":
        return None
    weight = np.round(rng.uniform(0.5, 2.0, n_classes), 2)
    if kind == "with_zero":
        weight[ZERO_WEIGHT_CLASS] = 0.0
    return weight


def index_target(shape, ignore_index):
    """Deterministic class indices cycling over the non-ignored classes; a batched target ignores its first entry.

    An unbatched (C) input has one row, which is never ignored (a fully ignored 'mean' is 0/0).
    """
    n_classes = shape[0] if len(shape) == 1 else shape[1]
    classes = [c for c in range(n_classes) if c != ignore_index]
    out_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    flat = [classes[k % len(classes)] for k in range(math.prod(out_shape))]
    if out_shape:
        flat[0] = ignore_index
    return np.array(flat, dtype=np.int64).reshape(out_shape)


def contracted(values, grad_output):
    """sum(grad_output * values) at the working precision."""
    return mpmath.fsum(g * v for g, v in zip(grad_output.flat, values.flat))


def numeric_gradient(objective, point):
    """d objective / d point[i] for every element i, by the fourth-order central difference."""
    gradient = np.empty(point.shape, dtype=object)
    with mpmath.workprec(PREC):
        for index in np.ndindex(point.shape):
            terms = []
            for multiple, coefficient in CENTRAL_WEIGHTS.items():
                moved = point.copy()
                moved[index] = point[index] + multiple * STEP
                terms.append(coefficient * objective(moved))
            gradient[index] = mpmath.fsum(terms) / (12 * STEP)  # one rounding: exactly 0 for a constant objective
    return gradient


def assert_close(numeric, analytic, label):
    """|numeric - analytic| <= 1e-25 * max(|analytic|, scale) elementwise (exact agreement where both are 0)."""
    assert numeric.shape == analytic.value.shape, f"{label}: shape {analytic.value.shape}, expected {numeric.shape}"
    for index in np.ndindex(numeric.shape):
        value, scale = analytic.value[index], analytic.scale[index]
        assert mpmath.isfinite(value), f"{label}{index}: VJP gives {value}"
        bound = RELATIVE_TOLERANCE * max(abs(value), scale)
        assert abs(numeric[index] - value) <= bound, (
            f"{label}{index}: VJP {mpmath.nstr(value, 30)} vs numeric {mpmath.nstr(numeric[index], 30)} "
            f"(scale {mpmath.nstr(scale, 5)})")


def check_vjp(forward, vjp, operands, differentiable, rng, **kwargs):
    """Compare vjp(*operands, grad_output, **kwargs) with numerical derivatives of forward(*operands, **kwargs).

    differentiable lists the operand positions (0 input, 1 target) whose gradient the VJP must return; the
    Gradients mapping has no other name.
    """
    output = forward(*operands, prec=PREC, **kwargs)
    grad_output = rounded_normal(rng, output.shape, scale=1.0)
    analytic = vjp(*operands, grad_output, prec=PREC, return_scale=True, **kwargs)
    upstream = exact_mpf(grad_output)
    for position, label in enumerate(("input", "target")):
        if position not in differentiable:
            assert label not in analytic and analytic.get(label) is None, f"{label} gradient should be absent"
            continue

        def objective(moved, position=position):
            perturbed = list(operands)
            perturbed[position] = moved
            return contracted(forward(*perturbed, prec=PREC, **kwargs), upstream)

        numeric = numeric_gradient(objective, exact_mpf(operands[position]))
        assert_close(numeric, analytic[label], f"grad {label}")


@pytest.mark.parametrize("function, vjp", [(softmax, softmax_vjp), (log_softmax, log_softmax_vjp)],
                         ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, dim", [pytest.param(shape, dim, id=f"{shape_id(shape)}-dim{dim}")
                                        for shape in ((4,), (3, 4), (2, 3, 4))
                                        for dim in (*range(-len(shape), len(shape)), None)])
def test_softmax_vjp(function, vjp, shape, dim):
    rng = make_rng(len(shape) if dim is None else dim + 10, shape)
    check_vjp(function, vjp, [rounded_normal(rng, shape)], {0}, rng, dim=dim)


@pytest.mark.parametrize("shape", LOSS_SHAPES, ids=shape_id)
@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
@pytest.mark.parametrize("weight_kind", WEIGHT_KINDS)
@pytest.mark.parametrize("reduction", LOSS_REDUCTIONS)
def test_nll_loss_vjp(reduction, weight_kind, ignore_index, shape):
    rng = make_rng(1, shape)
    log_probs = rounded_normal(rng, shape) - 2.0
    weight = class_weight(weight_kind, shape[0] if len(shape) == 1 else shape[1], rng)
    check_vjp(nll_loss, nll_loss_vjp, [log_probs, index_target(shape, ignore_index)], {0}, rng,
              weight=weight, ignore_index=ignore_index, reduction=reduction)


@pytest.mark.parametrize("shape", LOSS_SHAPES, ids=shape_id)
@pytest.mark.parametrize("label_smoothing", LABEL_SMOOTHINGS)
@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
@pytest.mark.parametrize("weight_kind", WEIGHT_KINDS)
@pytest.mark.parametrize("reduction", LOSS_REDUCTIONS)
def test_cross_entropy_index_target_vjp(reduction, weight_kind, ignore_index, label_smoothing, shape):
    rng = make_rng(2, shape)
    weight = class_weight(weight_kind, shape[0] if len(shape) == 1 else shape[1], rng)
    check_vjp(cross_entropy, cross_entropy_vjp, [rounded_normal(rng, shape), index_target(shape, ignore_index)],
              {0}, rng, weight=weight, ignore_index=ignore_index, reduction=reduction,
              label_smoothing=label_smoothing)


@pytest.mark.parametrize("shape", LOSS_SHAPES, ids=shape_id)
@pytest.mark.parametrize("label_smoothing", LABEL_SMOOTHINGS)
@pytest.mark.parametrize("weight_kind", WEIGHT_KINDS)
@pytest.mark.parametrize("reduction", LOSS_REDUCTIONS)
def test_cross_entropy_probability_target_vjp(reduction, weight_kind, label_smoothing, shape):
    rng = make_rng(3, shape)
    weight = class_weight(weight_kind, shape[0] if len(shape) == 1 else shape[1], rng)
    probabilities = np.round(rng.uniform(0.05, 1.0, shape), 3)
    check_vjp(cross_entropy, cross_entropy_vjp, [rounded_normal(rng, shape), probabilities], {0, 1}, rng,
              weight=weight, reduction=reduction, label_smoothing=label_smoothing)


@pytest.mark.parametrize("shape", KL_SHAPES, ids=shape_id)
@pytest.mark.parametrize("log_target", (False, True))
@pytest.mark.parametrize("reduction", KL_REDUCTIONS)
def test_kl_div_vjp(reduction, log_target, shape):
    rng = make_rng(4, shape)
    log_probs = rounded_normal(rng, shape, scale=1.0) - 1.0
    target = rounded_normal(rng, shape, scale=1.0) - 1.0 if log_target else np.round(rng.uniform(0.05, 1.0, shape), 3)
    check_vjp(kl_div, kl_div_vjp, [log_probs, target], {0, 1}, rng, reduction=reduction, log_target=log_target)


@pytest.mark.parametrize("reduction", KL_REDUCTIONS)
def test_kl_div_target_gradient_at_zero_probability(reduction):
    """d/dy is NaN at y = 0 (log_target=False: the domain's boundary) and exactly 0 at y = -inf (log_target=True)."""
    log_probs = np.array([-1.25, -0.5])
    grad_output = np.ones(2) if reduction == "none" else np.array(1.0)
    linear = kl_div_vjp(log_probs, np.array([0.0, 0.5]), grad_output, reduction=reduction, prec=PREC)
    assert mpmath.isnan(linear.target[0])
    assert linear.input[0] == 0  # d/dx = -y g vanishes with the target
    assert mpmath.isfinite(linear.target[1])
    logarithmic = kl_div_vjp(log_probs, np.array([-np.inf, -0.75]), grad_output, reduction=reduction,
                             log_target=True, prec=PREC)
    assert logarithmic.target[0] == 0
    assert mpmath.isfinite(logarithmic.target[1]) and logarithmic.target[1] != 0
