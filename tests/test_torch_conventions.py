"""What torch 2.13 does at every point decided in docs/spec-notes.md: agreement, or the declared deviation.

Each entry runs torch (float64, CPU) and the oracle on the same exact input. 'agree' entries require equal
values (NaN where NaN); 'deviate' entries require the specific difference the spec notes record, so a torch
release that changes behaviour fails here and the notes get revisited.
"""
import warnings

import mpmath
import numpy as np
import pytest

import oracle

torch = pytest.importorskip("torch")
F = torch.nn.functional
INF, NAN = float("inf"), float("nan")


def t(values, dtype=torch.float64, grad=False):
    return torch.tensor(values, dtype=dtype, requires_grad=grad)


def idx(values):
    return torch.tensor(values, dtype=torch.int64)


def _np(tensor):
    return tensor.detach().numpy()


def _grads(function, inputs, **kwargs):
    """torch's gradients of sum(function(*inputs)) with respect to the inputs that require grad."""
    out = function(*inputs, **kwargs)
    wanted = [x for x in inputs if x.requires_grad]
    return torch.autograd.grad(out.sum(), wanted)


FORWARD = {
    # spec-notes heading -> (torch thunk, oracle thunk, 'agree' | expected torch value)
    "kl_div zero target, input -inf": (lambda: F.kl_div(t([-INF]), t([0.0]), reduction="sum"),
                                       lambda: oracle.kl_div([-INF], [0.0], reduction="sum"), NAN),
    "kl_div zero target, input +inf": (lambda: F.kl_div(t([INF]), t([0.0]), reduction="sum"),
                                       lambda: oracle.kl_div([INF], [0.0], reduction="sum"), NAN),
    "kl_div zero target, finite input": (lambda: F.kl_div(t([-3.0]), t([0.0]), reduction="sum"),
                                         lambda: oracle.kl_div([-3.0], [0.0], reduction="sum"), "agree"),
    "kl_div log_target -inf": (lambda: F.kl_div(t([-1.0]), t([-INF]), reduction="sum", log_target=True),
                               lambda: oracle.kl_div([-1.0], [-INF], reduction="sum", log_target=True), NAN),
    "kl_div negative target": (lambda: F.kl_div(t([-1.0]), t([-0.5]), reduction="sum"),
                               lambda: oracle.kl_div([-1.0], [-0.5], reduction="sum"), "agree"),
    "kl_div batchmean 0-dim": (lambda: F.kl_div(t(-1.0), t(0.5), reduction="batchmean"),
                               lambda: oracle.kl_div(-1.0, 0.5, reduction="batchmean"), "agree"),
    "kl_div broadcast (extension)": (lambda: F.kl_div(t([0.0] * 4), t([[0.25] * 4] * 2), reduction="batchmean"),
                                     lambda: oracle.kl_div([0.0] * 4, [[0.25] * 4] * 2, reduction="batchmean",
                                                           allow_broadcast=True), "agree"),
    "probability 0 on log p = -inf": (lambda: F.cross_entropy(t([[0.0, -INF]]), t([[1.0, 0.0]]), reduction="sum"),
                                      lambda: oracle.cross_entropy([[0.0, -INF]], [[1.0, 0.0]], reduction="sum"), NAN),
    "label_smoothing 1 with target logit -inf": (
        lambda: F.cross_entropy(t([[0.0, -INF]]), idx([1]), reduction="sum", label_smoothing=1.0),
        lambda: oracle.cross_entropy([[0.0, -INF]], np.array([1]), reduction="sum", label_smoothing=1.0), NAN),
    "smoothed mean over zero total weight": (
        lambda: F.cross_entropy(t([[0.0, 0.0]]), idx([0]), weight=t([0.0, 1.0]), label_smoothing=0.5),
        lambda: oracle.cross_entropy([[0.0, 0.0]], np.array([0]), weight=np.array([0.0, 1.0]), label_smoothing=0.5),
        NAN),
    "kl_div batchmean with legacy reduce=False": (
        lambda: F.kl_div(t([0.0, 1.0]), t([0.0, 0.0]), reduction="batchmean", reduce=False, log_target=True),
        lambda: oracle.kl_div([0.0, 1.0], [0.0, 0.0], reduction="batchmean", reduce=False, log_target=True),
        [0.0, -0.5]),
    "all targets ignored": (lambda: F.nll_loss(t([[-1.0, -2.0]]), idx([-100])),
                            lambda: oracle.nll_loss([[-1.0, -2.0]], np.array([-100])), "agree"),
    "zero total weight": (lambda: F.cross_entropy(t([[1.0, 2.0]]), idx([0]), weight=t([0.0, 1.0])),
                          lambda: oracle.cross_entropy([[1.0, 2.0]], np.array([0]), weight=np.array([0.0, 1.0])),
                          "agree"),
    "empty batch mean": (lambda: F.cross_entropy(t(np.zeros((0, 3))), idx(np.zeros(0, int))),
                         lambda: oracle.cross_entropy(np.zeros((0, 3)), np.zeros(0, np.int64)), "agree"),
    "ignored row holding NaN": (lambda: F.cross_entropy(t([[NAN, 0.0], [1.0, 2.0]]), idx([-100, 0]),
                                                        reduction="none", label_smoothing=0.2),
                                lambda: oracle.cross_entropy([[NAN, 0.0], [1.0, 2.0]], np.array([-100, 0]),
                                                             reduction="none", label_smoothing=0.2), "agree"),
    "softmax row of -inf": (lambda: F.softmax(t([-INF, -INF]), 0), lambda: oracle.softmax([-INF, -INF], 0), "agree"),
    "softmax row with +inf": (lambda: F.softmax(t([INF, 1.0, -INF]), 0),
                              lambda: oracle.softmax([INF, 1.0, -INF], 0), "agree"),
    "log_softmax some -inf": (lambda: F.log_softmax(t([0.0, -INF]), 0),
                              lambda: oracle.log_softmax([0.0, -INF], 0), "agree"),
}


def _assert_same(got, wanted, label):
    got = np.asarray(got, dtype=float)
    wanted = np.array([float(v) for v in np.asarray(wanted, dtype=object).flat]).reshape(np.shape(wanted))
    assert got.shape == wanted.shape, f"{label}: torch shape {got.shape}, oracle {wanted.shape}"
    assert np.array_equal(np.isnan(got), np.isnan(wanted)), f"{label}: torch {got}, but oracle {wanted}"
    finite = ~np.isnan(wanted)
    assert np.allclose(got[finite], wanted[finite], rtol=1e-13, atol=0), f"{label}: torch {got}, oracle {wanted}"


@pytest.mark.parametrize("torch_call, oracle_call, expected", FORWARD.values(), ids=list(FORWARD))
def test_torch_forward_at_the_decided_points(torch_call, oracle_call, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = _np(torch_call())
    wanted = oracle_call()
    if expected == "agree":
        _assert_same(got, wanted, "agree")
    else:
        _assert_same(got, np.broadcast_to(expected, np.shape(got)), "torch's declared deviation")
        with pytest.raises(AssertionError):  # and the oracle decides otherwise
            _assert_same(got, wanted, "oracle")


REJECTED = {
    "label_smoothing > 1": (lambda: F.cross_entropy(t([[0.0, 1.0]]), idx([0]), label_smoothing=1.5), True),
    "label_smoothing < 0 (deviation: accepted)": (
        lambda: F.cross_entropy(t([[0.0, 1.0]]), idx([0]), label_smoothing=-0.1), False),
    "uint8 indices (deviation: accepted)": (lambda: F.nll_loss(t([[0.0, 1.0]]), idx([0]).to(torch.uint8)), False),
    "(1,) target for (C) input (deviation: accepted)": (lambda: F.nll_loss(t([0.0, 1.0]), idx([0])), False),
    "kl_div different shapes (deviation: broadcast)": (lambda: F.kl_div(t([0.0]), t([0.5, 0.5])), False),
    "int32 indices": (lambda: F.nll_loss(t([[0.0, 1.0]]), idx([0]).to(torch.int32)), True),
    "ignore_index >= 0 with probabilities": (lambda: F.cross_entropy(t([[0.0, 1.0]]), t([[0.5, 0.5]]), ignore_index=0),
                                             True),
    "target out of range": (lambda: F.nll_loss(t([[0.0, 1.0]]), idx([2])), True),
    "weight of the wrong size": (lambda: F.nll_loss(t([[0.0, 1.0]]), idx([0]), weight=t([1.0])), True),
    "unknown reduction": (lambda: F.kl_div(t([0.0]), t([0.5]), reduction="avg"), True),
    "reduction 'elementwise_mean' (deviation: accepted)": (
        lambda: F.nll_loss(t([[0.0, 1.0]]), idx([0]), reduction="elementwise_mean"), False),
    "size_average=2 (deviation: accepted)": (lambda: F.cross_entropy(t([[0.0, 1.0]]), idx([0]), size_average=2), False),
}


@pytest.mark.parametrize("torch_call, raises", REJECTED.values(), ids=list(REJECTED))
def test_torch_rejects_what_the_notes_say(torch_call, raises):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if raises:
            with pytest.raises((RuntimeError, ValueError, IndexError)):
                torch_call()
        else:
            torch_call()


def test_gradient_conventions():
    x, y = t([-1.0, -2.0], grad=True), t([0.0, 0.5], grad=True)
    gx, gy = _grads(F.kl_div, (x, y), reduction="none")
    ours = oracle.kl_div_vjp([-1.0, -2.0], [0.0, 0.5], [1.0, 1.0], reduction="none")
    _assert_same(_np(gy), ours.target, "kl_div d/dy at y = 0 (agree: NaN)")
    x, y = t([-1.0], grad=True), t([-INF], grad=True)
    gx, gy = _grads(F.kl_div, (x, y), reduction="none", log_target=True)
    assert np.isnan(_np(gy)).all() and oracle.kl_div_vjp([-1.0], [-INF], [1.0], reduction="none",
                                                         log_target=True).target[0] == 0  # declared deviation
    logits = t([[1.0, 2.0], [3.0, 4.0]], grad=True)
    (g,) = _grads(F.cross_entropy, (logits, idx([0, 1])), weight=t([0.0, 0.0]))
    _assert_same(_np(g), oracle.cross_entropy_vjp([[1.0, 2.0], [3.0, 4.0]], np.array([0, 1]), 1.0,
                                                  weight=np.array([0.0, 0.0])).input, "zero total weight")
    (g,) = _grads(F.nll_loss, (logits, idx([-100, -100])))
    _assert_same(_np(g), oracle.nll_loss_vjp([[1.0, 2.0], [3.0, 4.0]], np.array([-100, -100]), 1.0).input,
                 "all ignored")
    x, y = t([-1.0], grad=True), t([-0.5], grad=True)
    gx, _ = _grads(F.kl_div, (x, y), reduction="none")
    assert _np(gx)[0] == 0.5 and mpmath.isnan(oracle.kl_div_vjp([-1.0], [-0.5], [1.0], reduction="none").input[0])


def test_nan_input_gradient_of_kl_div_is_finite_in_torch():
    """Declared deviation (spec-notes "NaN inputs and gradients"): torch -y * g, the oracle NaN."""
    x, y = t([NAN, -1.0], grad=True), t([0.3, 0.7])
    (gx,) = _grads(F.kl_div, (x, y), reduction="sum")
    assert _np(gx).tolist() == [-0.3, -0.7]
    assert mpmath.isnan(oracle.kl_div_vjp([NAN, -1.0], [0.3, 0.7], 1.0, reduction="sum").input[0])


def test_kl_div_target_gradient_loses_bits_for_tiny_targets():
    """Declared torch accuracy defect (spec-notes "Known torch accuracy defects"): grad * y / y underflows."""
    y = t([2.0**-24], dtype=torch.float16, grad=True)
    F.kl_div(t([0.5], dtype=torch.float16), y, reduction="none").backward(t([2.1758], dtype=torch.float16))
    g = float(t([2.1758], dtype=torch.float16))
    exact = oracle.kl_div_vjp([0.5], np.array([2.0**-24]), [g], reduction="none").target[0]
    assert float(y.grad[0]) == -35.3125
    assert abs(float(exact) - (-35.107421875)) < 0.01  # correctly rounded to float16: -35.09375
