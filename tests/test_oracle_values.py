"""Hand-checked values from closed forms, and the conventions decided in docs/spec-notes.md."""
import mpmath
import numpy as np
import pytest

import oracle
from conftest import assert_close, certified
from test_oracle_engine_fixture import oracle_engine  # noqa: F401 (autouse: each test runs on every engine)

LOG = mpmath.log
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("n_classes", [1, 2, 7, 1000])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_uniform_logits_give_log_c(n_classes, reduction):
    logits = np.full((3, n_classes), 2.5)
    target = np.array([0, n_classes - 1, n_classes // 2])
    per_row = LOG(n_classes)
    wanted = {"none": [per_row] * 3, "mean": per_row, "sum": 3 * per_row}[reduction]
    assert_close(certified(oracle.cross_entropy, logits, target, reduction=reduction), wanted)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3, 1.0])
def test_uniform_logits_are_unchanged_by_label_smoothing(label_smoothing):
    value = certified(oracle.cross_entropy, np.zeros((2, 4)), np.array([1, 3]), label_smoothing=label_smoothing)
    assert_close(value, LOG(4))


def test_one_class_loss_is_exactly_zero():
    assert certified(oracle.cross_entropy, np.array([[123.0], [-7.0]]), np.array([0, 0]))[()] == 0


def test_nll_loss_weighted_mean_by_hand():
    # l = -w_y x_y = -(4 * -3) = 12 and -(2 * -2) = 4; mean divides by w_2 + w_1 = 6, once (not by N = 2).
    log_probs = np.array([[-1.0, -2.0, -3.0], [-1.0, -2.0, -3.0]])
    kwargs = {"weight": np.array([1.0, 2.0, 4.0])}
    assert_close(certified(oracle.nll_loss, log_probs, np.array([2, 1]), reduction="none", **kwargs), [12, 4])
    assert_close(certified(oracle.nll_loss, log_probs, np.array([2, 1]), **kwargs), mpmath.mpf(16) / 6)


def test_one_hot_probabilities_equal_class_indices_without_weights(rng):
    logits, classes = rng.normal(size=(5, 4)), np.array([0, 3, 1, 1, 2])
    one_hot = np.eye(4)[classes]
    for reduction in ("none", "mean", "sum"):
        assert_close(certified(oracle.cross_entropy, logits, one_hot, reduction=reduction),
                     certified(oracle.cross_entropy, logits, classes, reduction=reduction))


def test_probability_mean_divides_by_n_even_with_weights(rng):
    logits, classes, weight = rng.normal(size=(5, 4)), np.array([0, 3, 1, 1, 2]), rng.uniform(0.5, 2, 4)
    total = certified(oracle.cross_entropy, logits, np.eye(4)[classes], weight=weight, reduction="sum")
    assert_close(certified(oracle.cross_entropy, logits, np.eye(4)[classes], weight=weight), total[()] / 5)
    assert_close(certified(oracle.cross_entropy, logits, classes, weight=weight, reduction="sum"), total)
    with mpmath.workprec(256):  # the weight sum needs more than float64's 53 bits to stay exact
        index_mean = total[()] / mpmath.fsum(weight[classes])
    assert_close(certified(oracle.cross_entropy, logits, classes, weight=weight), index_mean)


def test_kl_div_by_hand():
    # 0.5 * (log 0.5 - (-1)) + 0.25 * (log 0.25 - (-2)); the zero target contributes 0.
    value = certified(oracle.kl_div, np.array([-1.0, -2.0, -3.0]), np.array([0.5, 0.25, 0.0]), reduction="sum")
    assert_close(value, 0.5 * (LOG(0.5) + 1) + 0.25 * (LOG(0.25) + 2))


def test_softmax_of_equal_entries_is_exactly_uniform():
    assert_close(certified(oracle.softmax, [3.0, 3.0, 3.0, 3.0], 0), [0.25] * 4, bits=120)
    assert_close(certified(oracle.log_softmax, [-1.5, -1.5], 0), [-LOG(2)] * 2)


@pytest.mark.parametrize("ndim, dim", [(0, 0), (1, 0), (2, 1), (3, 0), (4, 1), (5, 1)])
def test_implicit_dim_is_torchs_rule(ndim, dim):
    assert oracle.implicit_dim(ndim) == dim


def test_softmax_with_dim_none_uses_the_implicit_dim(rng):
    x = rng.normal(size=(2, 3, 4))
    assert_close(certified(oracle.softmax, x), certified(oracle.softmax, x, 0))


@pytest.mark.parametrize("row", [[-INF, -INF], [INF, 1.0, -INF], [INF, INF], [NAN, 1.0]])
def test_softmax_rows_without_a_defined_value_are_nan(row):
    for function in (oracle.softmax, oracle.log_softmax):
        assert all(mpmath.isnan(v) for v in certified(function, row, 0))


def test_softmax_with_some_minus_inf_entries():
    assert_close(certified(oracle.softmax, [0.0, -INF, 0.0], 0), [0.5, 0, 0.5])
    assert_close(certified(oracle.log_softmax, [0.0, -INF, 0.0], 0), [-LOG(2), -INF, -LOG(2)])


def test_zero_dim_softmax_is_one_and_log_softmax_zero():
    assert certified(oracle.softmax, 3.0, -1)[()] == 1
    assert certified(oracle.log_softmax, 3.0, 0)[()] == 0


class TestZeroCoefficientConvention:
    """0 * log 0 = 0: a term whose probability, weight or smoothing coefficient is exactly 0 contributes 0."""

    def test_kl_div_zero_target_with_infinite_input(self):
        value = certified(oracle.kl_div, [-INF, INF, 0.0], [0.0, 0.0, 0.0], reduction="none")
        assert list(value) == [0, 0, 0]

    def test_kl_div_log_target_minus_inf(self):
        assert certified(oracle.kl_div, [-1.0, -INF], [-INF, -INF], reduction="sum", log_target=True)[()] == 0

    def test_probability_target_zero_where_logit_is_minus_inf(self):
        assert certified(oracle.cross_entropy, [[0.0, -INF]], [[1.0, 0.0]], reduction="sum")[()] == 0

    def test_nan_still_propagates(self):
        assert mpmath.isnan(certified(oracle.kl_div, [NAN], [0.0], reduction="sum")[()])
        assert mpmath.isnan(certified(oracle.cross_entropy, [[NAN, 0.0]], [[0.0, 1.0]], reduction="sum")[()])


def test_kl_div_negative_target_is_nan():
    assert mpmath.isnan(certified(oracle.kl_div, [-1.0], [-0.5], reduction="sum")[()])


def test_ignored_rows_are_not_read():
    value = certified(oracle.nll_loss, [[NAN, NAN], [-1.0, -2.0]], np.array([-100, 0]), reduction="none")
    assert list(value) == [0, 1]


@pytest.mark.parametrize("function", [oracle.nll_loss, oracle.cross_entropy])
def test_all_ignored_or_zero_weight_mean_is_nan_and_sum_is_zero(function):
    x = np.array([[-1.0, -2.0], [-3.0, -4.0]])
    all_ignored, zero_weight = np.array([-100, -100]), {"weight": np.array([0.0, 0.0])}
    assert mpmath.isnan(certified(function, x, all_ignored)[()])
    assert mpmath.isnan(certified(function, x, np.array([0, 1]), **zero_weight)[()])
    assert certified(function, x, all_ignored, reduction="sum")[()] == 0


def test_negative_weights_follow_the_formula():
    # Weights summing to zero over the batch: a nonzero numerator over 0 is an infinity, as in IEEE arithmetic.
    value = certified(oracle.nll_loss, [[-1.0, -2.0], [-1.0, -2.0]], np.array([0, 1]), weight=np.array([1.0, -1.0]))
    assert value[()] == -INF


@pytest.mark.parametrize("reduction, wanted", [("none", (0,)), ("sum", 0), ("mean", NAN)])
def test_empty_batch(reduction, wanted):
    for function, target in ((oracle.nll_loss, np.zeros(0, np.int64)), (oracle.cross_entropy, np.zeros((0, 3)))):
        value = certified(function, np.zeros((0, 3)), target, reduction=reduction)
        if reduction == "none":
            assert value.shape == wanted
        else:
            assert mpmath.isnan(value[()]) if wanted != wanted else value[()] == wanted


def test_kl_div_batchmean_on_a_zero_dim_input_is_the_sum():
    x, y = np.float64(-1.0), np.float64(0.5)
    assert_close(certified(oracle.kl_div, x, y, reduction="batchmean"), certified(oracle.kl_div, x, y, reduction="sum"))


def test_kl_div_batchmean_divides_by_input_size_0(rng):
    x, y = rng.normal(size=(3, 4, 2)), rng.uniform(size=(3, 4, 2))
    total = certified(oracle.kl_div, x, y, reduction="sum")[()]
    assert_close(certified(oracle.kl_div, x, y, reduction="batchmean"), total / 3)
    assert_close(certified(oracle.kl_div, x, y, reduction="mean"), total / 24)


def test_kl_div_broadcasting_is_an_opt_in_extension():
    x, y = np.zeros(4), np.full((2, 4), 0.25)
    with pytest.raises(oracle.ShapeMismatchError):
        oracle.kl_div(x, y)
    # torch's observed result: sum over the broadcast shape, divided by input.size(0) = 4.
    assert_close(certified(oracle.kl_div, x, y, reduction="batchmean", allow_broadcast=True), 2 * LOG(0.25) / 4)


def test_ignore_index_inside_the_class_range_drops_those_rows():
    x = np.array([[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]])
    assert_close(certified(oracle.nll_loss, x, np.array([1, 2]), ignore_index=1, reduction="none"), [0, 6])
    assert_close(certified(oracle.nll_loss, x, np.array([1, 2]), ignore_index=1), 6)


@pytest.mark.parametrize("size_average, reduce, wanted", [
    (None, None, "mean"), (True, None, "mean"), (False, None, "sum"), (None, True, "mean"), (True, True, "mean"),
    (False, True, "sum"), (None, False, "none"), (True, False, "none"), (False, False, "none")])
def test_legacy_size_average_and_reduce_override_reduction(size_average, reduce, wanted, rng):
    x, target = rng.normal(size=(3, 4)), np.array([0, 1, 3])
    # reduction='sum' is overridden whenever either legacy flag is given; with neither, it stands.
    legacy = certified(oracle.cross_entropy, x, target, size_average=size_average, reduce=reduce, reduction="sum")
    in_force = "sum" if size_average is None and reduce is None else wanted
    assert_close(legacy, certified(oracle.cross_entropy, x, target, reduction=in_force))
