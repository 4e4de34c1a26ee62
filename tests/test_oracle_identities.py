"""Identities between the oracle's functions, at high precision (independent routes to the same number)."""
import itertools

import mpmath
import numpy as np
import pytest

import oracle
from conftest import as_mpf, assert_close, certified
from test_oracle_engine_fixture import oracle_engine  # noqa: F401 (autouse: each test runs on every engine)

SHAPES = {"C": (5,), "NC": (3, 5), "NCd1": (2, 5, 3), "NCd1d2": (2, 5, 2, 2)}


def _index_target(rng, shape, ignore_index=-100):
    target_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    target = rng.integers(0, shape[1 if len(shape) > 1 else 0], size=target_shape)
    if target.ndim:
        target.flat[0] = ignore_index  # at least one ignored entry
    return np.asarray(target, dtype=np.int64)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=list(SHAPES))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted, ignore_index", list(itertools.product([False, True], [-100, 2])))
def test_cross_entropy_is_nll_of_log_softmax(rng, shape, reduction, weighted, ignore_index):
    logits, target = rng.normal(size=shape) * 3, _index_target(rng, shape, ignore_index)
    kwargs = {"reduction": reduction, "ignore_index": ignore_index,
              "weight": rng.uniform(0.1, 2, shape[1 if len(shape) > 1 else 0]) if weighted else None}
    class_dim = 0 if len(shape) == 1 else 1
    log_probs = oracle.log_softmax(logits, class_dim, prec=256)
    assert_close(certified(oracle.cross_entropy, logits, target, **kwargs),
                 certified(oracle.nll_loss, log_probs, target, **kwargs))


@pytest.mark.parametrize("shape", SHAPES.values(), ids=list(SHAPES))
@pytest.mark.parametrize("smoothing", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothing_is_the_probability_numerator_of_the_smoothed_target(rng, shape, smoothing, weighted):
    """Index target with smoothing e == probability target q = (1 - e) onehot + e/C, unreduced and summed."""
    n_classes = shape[1 if len(shape) > 1 else 0]
    logits, target = rng.normal(size=shape), _index_target(rng, shape, ignore_index=0)  # no row ignored at -100
    weight = rng.uniform(0.1, 2, n_classes) if weighted else None
    one_hot = np.moveaxis(np.eye(n_classes)[target], -1, 0 if len(shape) == 1 else 1)
    with mpmath.workprec(512):  # q is not a float64: build it exactly enough to leave the comparison untouched
        smoothed = as_mpf(np.vectorize(lambda h: (1 - mpmath.mpf(smoothing)) * h + mpmath.mpf(smoothing) / n_classes,
                                       otypes=[object])(one_hot))
    for reduction in ("none", "sum"):
        assert_close(certified(oracle.cross_entropy, logits, target, weight=weight, reduction=reduction,
                               label_smoothing=smoothing, ignore_index=-100),
                     certified(oracle.cross_entropy, logits, smoothed, weight=weight, reduction=reduction))


@pytest.mark.parametrize("reduction", ["none", "mean", "batchmean", "sum"])
def test_kl_div_log_target_equals_plain_target_on_exp(rng, reduction):
    x, log_target = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    log_target[0, 0] = -np.inf  # exp(-inf) = 0 exercises the 0 log 0 convention on both routes
    with mpmath.workprec(512):
        probabilities = as_mpf(np.vectorize(mpmath.exp, otypes=[object])(log_target))
    assert_close(certified(oracle.kl_div, x, log_target, reduction=reduction, log_target=True),
                 certified(oracle.kl_div, x, probabilities, reduction=reduction))


@pytest.mark.parametrize("shape, dim", [((7,), 0), ((3, 4), 0), ((3, 4), 1), ((2, 3, 4), -1), ((2, 3, 2, 2), 2)])
def test_softmax_rows_sum_to_one_and_match_exp_log_softmax(rng, shape, dim):
    x = rng.normal(size=shape) * 10
    probabilities = certified(oracle.softmax, x, dim)
    assert_close(np.sum(probabilities, axis=dim), np.ones(np.delete(shape, dim)), bits=110)
    with mpmath.workprec(256):
        via_log = np.vectorize(mpmath.exp, otypes=[object])(certified(oracle.log_softmax, x, dim))
    assert_close(probabilities, via_log, bits=110)


@pytest.mark.parametrize("shift", [1024.0, -2.0**40, 3.0e4])
def test_shift_invariance(rng, shift):
    # Dyadic logits with few bits, so that x + shift is exact in float64 and only the math is compared.
    x = np.round(rng.normal(size=(3, 5)) * 8) / 8
    shifted, target = x + shift, np.array([0, 4, 2])
    assert np.array_equal(shifted - shift, x)
    for function in (oracle.softmax, oracle.log_softmax):
        assert_close(certified(function, shifted, 1), certified(function, x, 1))
    assert_close(certified(oracle.cross_entropy, shifted, target, label_smoothing=0.2),
                 certified(oracle.cross_entropy, x, target, label_smoothing=0.2))
