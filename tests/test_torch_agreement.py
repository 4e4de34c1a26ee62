"""Agreement of the mpmath oracle with torch (float64, CPU): forward values and vector-Jacobian products.

Every generated case is a valid input outside the oracle's declared deviations from torch: finite values, no
negative kl_div targets, label_smoothing >= 0, int64 class indices. Agreement means the same shape and NaN
pattern, then |oracle - torch| <= RTOL * max(|oracle|, scale) elementwise, with the oracle's return_scale.
"""
import warnings
from contextlib import contextmanager

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from hypothesis import assume, event, given, settings  # noqa: E402
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp  # noqa: E402

import oracle  # noqa: E402
from conformance.fuzz.strategies import keywords  # noqa: E402
from conformance.spec.classes import class_layout  # noqa: E402
from oracle._reduction import LOSS_REDUCTIONS, resolve_reduction  # noqa: E402

RTOL = 1e-12
FORWARD = settings(max_examples=200, deadline=None, derandomize=True)
GRADIENT = settings(max_examples=125, deadline=None, derandomize=True)
TORCH_WARNINGS = (  # deprecation notices for arguments these tests pass on purpose
    "Implicit dimension choice",  # softmax/log_softmax with dim=None
    "reduction: 'mean' divides the total loss",  # kl_div 'mean'
    "size_average and reduce args will be deprecated",  # legacy reduction arguments
)

# ---- strategies: elements and arrays


def moderate(high, signed=True):
    """0.0 or a float64 of magnitude in [2**-20, high]: values and results stay far above float64's underflow."""
    magnitude = st.floats(2**-20, high)
    if signed:
        magnitude |= magnitude.map(lambda v: -v)
    return st.just(0.0) | magnitude


values = moderate(20)
grad_values = moderate(2)
non_negative = moderate(20, signed=False)
positive_weights = st.floats(0.125, 4)


def float_arrays(shape, elements=values):
    return hnp.arrays(np.float64, shape, elements=elements)


# ---- strategies: shapes and keyword arguments


@st.composite
def class_shapes(draw):
    """(C), (N, C), (N, C, d1) or (N, C, d1, d2) with C in [1, 6], N in [0, 4], d_i in [1, 3]."""
    n_classes, rank = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    if rank == 1:
        return (n_classes,)
    spatial = draw(st.lists(st.integers(1, 3), min_size=rank - 2, max_size=rank - 2))
    return (draw(st.integers(0, 4)), n_classes, *spatial)


def class_weights(n_classes):
    """None, positive weights, or weights with exact zeros mixed in."""
    return st.none() | float_arrays((n_classes,), positive_weights) | float_arrays(
        (n_classes,), positive_weights | st.just(0.0))


def reduction_keywords(reductions):
    """reduction drawn or left out; in half the cases also the legacy size_average / reduce, which override it."""
    reduction, legacy_flag = st.sampled_from(reductions), st.none() | st.booleans()
    return keywords(reduction=reduction) | keywords(reduction=reduction, size_average=legacy_flag, reduce=legacy_flag)


@st.composite
def loss_kwargs(draw, n_classes):
    return {**draw(keywords(weight=class_weights(n_classes))), **draw(reduction_keywords(["none", "mean", "sum"]))}


@st.composite
def index_targets(draw, n_classes, out_shape):
    """int64 class indices with ignore_index entries mixed in; ignore_index is default, negative, or a class."""
    kwargs = draw(keywords(ignore_index=st.just(-100) | st.integers(-3, n_classes - 1)))
    ignored = kwargs.get("ignore_index", -100)
    target = draw(hnp.arrays(np.int64, out_shape, elements=st.integers(0, n_classes - 1) | st.just(ignored)))
    return target, kwargs


@st.composite
def probability_targets(draw, shape):
    """Class probabilities of the input's shape: normalised, unnormalised (non-negative) or one-hot."""
    class_dim, n_classes, out_shape = class_layout(shape)
    kind = draw(st.sampled_from(["normalised", "unnormalised", "one-hot"]))
    event(f"probability target: {kind}")
    if kind == "one-hot":
        indices = draw(hnp.arrays(np.int64, out_shape, elements=st.integers(0, n_classes - 1)))
        return np.ascontiguousarray(np.moveaxis(np.eye(n_classes)[indices], -1, class_dim))
    raw = draw(float_arrays(shape, moderate(5, signed=False)))
    if kind == "unnormalised":
        return raw
    total = raw.sum(axis=class_dim, keepdims=True)
    return np.divide(raw, total, out=raw.copy(), where=total > 0)


# ---- strategies: one case per function family, as (function name, positional arrays, kwargs)


@st.composite
def softmax_cases(draw):
    name = draw(st.sampled_from(["softmax", "log_softmax"]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3))
    span = max(len(shape), 1)
    kwargs = draw(keywords(dim=st.sampled_from([None, *range(-span, span)])))
    event(f"rank {len(shape)}, dim {kwargs.get('dim', 'omitted')}")
    return name, (draw(float_arrays(shape)),), kwargs


@st.composite
def nll_loss_cases(draw):
    shape = draw(class_shapes())
    _, n_classes, out_shape = class_layout(shape)
    target, kwargs = draw(index_targets(n_classes, out_shape))
    kwargs.update(draw(loss_kwargs(n_classes)))
    event(f"input rank {len(shape)}")
    return "nll_loss", (draw(float_arrays(shape)), target), kwargs


@st.composite
def cross_entropy_cases(draw):
    shape = draw(class_shapes())
    _, n_classes, out_shape = class_layout(shape)
    if draw(st.booleans()):
        target, kwargs = draw(index_targets(n_classes, out_shape))
    else:
        target, kwargs = draw(probability_targets(shape)), {}
    smoothing = st.sampled_from([0.0, 1.0]) | st.floats(2**-20, 1, exclude_max=True)
    kwargs.update(draw(loss_kwargs(n_classes)))
    kwargs.update(draw(keywords(label_smoothing=smoothing)))
    event(f"input rank {len(shape)}, {target.dtype} target")
    return "cross_entropy", (draw(float_arrays(shape)), target), kwargs


@st.composite
def kl_div_cases(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    reductions = reduction_keywords(["none", "mean", "batchmean", "sum"])
    kwargs = {**draw(keywords(log_target=st.booleans())), **draw(reductions)}
    if kwargs.get("reduction") == "batchmean":  # with legacy arguments torch still divides by input.size(0):
        kwargs.pop("size_average", None), kwargs.pop("reduce", None)  # a declared deviation (spec-notes)
    target = draw(float_arrays(shape, values if kwargs.get("log_target") else non_negative))
    event(f"rank {len(shape)}, log_target={kwargs.get('log_target', False)}")
    return "kl_div", (draw(float_arrays(shape)), target), kwargs


# ---- comparison


@contextmanager
def quiet_torch():
    """Silence torch's deprecation warnings for the arguments under test, for this call only."""
    with warnings.catch_warnings():
        for message in TORCH_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


def to_torch(value):
    return torch.tensor(value) if isinstance(value, np.ndarray) else value


def describe(name, args, kwargs):
    shown = [f"{a.dtype}{a.shape}" for a in args]
    shown += [f"{k}={v.dtype}{v.shape}" if isinstance(v, np.ndarray) else f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(shown)})"


def assert_agrees(what, got, wanted):
    """Same shape and NaN pattern, then |wanted - got| <= RTOL * max(|wanted|, scale) at every element."""
    got = got.detach().numpy()
    value, scale = wanted.value.astype(np.float64), wanted.scale.astype(np.float64)
    assert got.shape == value.shape, f"{what}: torch shape {got.shape} != oracle shape {value.shape}"
    nan_got, nan_wanted = np.isnan(got), np.isnan(value)
    mismatched = np.argwhere(nan_got != nan_wanted)
    assert not mismatched.size, f"{what}: NaN patterns differ at {mismatched.tolist()}: got {got}, wanted {value}"
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.where((got == value) | nan_wanted, 0.0, np.abs(got - value) / np.maximum(np.abs(value), scale))
    if error.size and not error.max() <= RTOL:
        worst = np.unravel_index(np.argmax(error), error.shape)
        pytest.fail(f"{what}: max scaled error {error.max():.3g} > {RTOL:g}; worst index {tuple(map(int, worst))}: "
                    f"got {got[worst]!r} != wanted {value[worst]!r} (scale {scale[worst]!r})")


def smoothed_mean_over_zero_weight(case):
    """Index targets, label smoothing, 'mean', total target weight 0 over non-ignored rows: the oracle's
    nonzero/0 is an infinity, torch's NaN (a declared deviation, docs/spec-notes.md); checked elsewhere."""
    name, args, kwargs = case
    if name != "cross_entropy" or args[1].dtype != np.int64 or not kwargs.get("label_smoothing"):
        return False
    target = args[1]
    in_force = resolve_reduction(kwargs.get("reduction", "mean"), kwargs.get("size_average"), kwargs.get("reduce"),
                                 LOSS_REDUCTIONS)
    weight = kwargs.get("weight")
    kept = target[target != kwargs.get("ignore_index", -100)]
    return in_force == "mean" and weight is not None and kept.size > 0 and weight[kept].sum() == 0


def check_forward(case):
    assume(not smoothed_mean_over_zero_weight(case))
    name, args, kwargs = case
    wanted = getattr(oracle, name)(*args, **kwargs, return_scale=True)
    with quiet_torch():
        got = getattr(F, name)(*map(to_torch, args), **{k: to_torch(v) for k, v in kwargs.items()})
    assert_agrees(describe(name, args, kwargs), got, wanted)


def check_vjp(case, data):
    """oracle.<name>_vjp against torch.autograd.grad for every floating argument (input; target if floating)."""
    assume(not smoothed_mean_over_zero_weight(case))
    name, args, kwargs = case
    tensors = [to_torch(a) for a in args]
    differentiable = [t.requires_grad_() for t in tensors if t.is_floating_point()]
    with quiet_torch():
        out = getattr(F, name)(*tensors, **{k: to_torch(v) for k, v in kwargs.items()})
    grad_output = data.draw(float_arrays(tuple(out.shape), grad_values), label="grad_output")
    got = torch.autograd.grad(out, differentiable, torch.tensor(grad_output))
    wanted = list(getattr(oracle, f"{name}_vjp")(*args, grad_output, **kwargs, return_scale=True).values())
    what = f"{name}_vjp: {describe(name, args, kwargs)}, grad_output {grad_output.shape}"
    assert len(wanted) == len(got), f"{what}: oracle gives {len(wanted)} gradients, torch {len(got)}"
    for argument, got_grad, wanted_grad in zip(("input", "target"), got, wanted):
        assert_agrees(f"{what}, d/d{argument}", got_grad, wanted_grad)


# ---- tests: forward values


@settings(FORWARD, max_examples=300)  # cheap, and many (rank, dim) pairs to reach
@given(softmax_cases())
def test_softmax_forward(case):
    check_forward(case)


@FORWARD
@given(nll_loss_cases())
def test_nll_loss_forward(case):
    check_forward(case)


@FORWARD
@given(cross_entropy_cases())
def test_cross_entropy_forward(case):
    check_forward(case)


@FORWARD
@given(kl_div_cases())
def test_kl_div_forward(case):
    check_forward(case)


# ---- tests: vector-Jacobian products


@GRADIENT
@given(softmax_cases(), st.data())
def test_softmax_vjp(case, data):
    check_vjp(case, data)


@GRADIENT
@given(nll_loss_cases(), st.data())
def test_nll_loss_vjp(case, data):
    check_vjp(case, data)


@GRADIENT
@given(cross_entropy_cases(), st.data())
def test_cross_entropy_vjp(case, data):
    check_vjp(case, data)


@GRADIENT
@given(kl_div_cases(), st.data())
def test_kl_div_vjp(case, data):
    check_vjp(case, data)
