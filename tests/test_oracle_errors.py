"""Every typed oracle error is raised for the invalid input it names (and only typed errors are raised)."""
import numpy as np
import pytest

import oracle
from test_oracle_engine_fixture import oracle_engine  # noqa: F401 (autouse: each test runs on every engine)

X = np.zeros((3, 4))
INDEX = np.array([0, 1, 3])
PROBABILITIES = np.full((3, 4), 0.25)

INVALID_CALLS = {
    "target above range": (oracle.TargetOutOfRangeError, oracle.cross_entropy, (X, np.array([0, 4, 1])), {}),
    "negative target other than ignore_index": (oracle.TargetOutOfRangeError, oracle.nll_loss,
                                                (X, np.array([0, -1, 1])), {}),
    "target equal to the default ignore_index when another is set": (
        oracle.TargetOutOfRangeError, oracle.nll_loss, (X, np.array([0, -100, 1])), {"ignore_index": 2}),
    "batch size mismatch": (oracle.ShapeMismatchError, oracle.cross_entropy, (X, np.array([0, 1])), {}),
    "unbatched input with a (1,) target": (oracle.ShapeMismatchError, oracle.nll_loss, (X[0], np.array([1])), {}),
    "0-dim input": (oracle.ShapeMismatchError, oracle.nll_loss, (np.float64(1.0), np.int64(0)), {}),
    "no classes": (oracle.ShapeMismatchError, oracle.cross_entropy, (np.zeros((2, 0)), np.array([0, 0])), {}),
    "kl_div shapes differ": (oracle.ShapeMismatchError, oracle.kl_div, (np.zeros(3), np.zeros(4)), {}),
    "kl_div shapes do not broadcast": (oracle.ShapeMismatchError, oracle.kl_div, (np.zeros(3), np.zeros(4)),
                                       {"allow_broadcast": True}),
    "weight too short": (oracle.WeightSizeError, oracle.cross_entropy, (X, INDEX), {"weight": np.ones(3)}),
    "weight of shape (1, C)": (oracle.WeightSizeError, oracle.nll_loss, (X, INDEX), {"weight": np.ones((1, 4))}),
    "label_smoothing above 1": (oracle.LabelSmoothingRangeError, oracle.cross_entropy, (X, INDEX),
                                {"label_smoothing": 1.5}),
    "label_smoothing below 0": (oracle.LabelSmoothingRangeError, oracle.cross_entropy, (X, INDEX),
                                {"label_smoothing": -0.1}),
    "label_smoothing NaN": (oracle.LabelSmoothingRangeError, oracle.cross_entropy, (X, INDEX),
                            {"label_smoothing": float("nan")}),
    "ignore_index naming a class with probabilities": (oracle.IgnoreIndexWithProbabilitiesError,
                                                       oracle.cross_entropy, (X, PROBABILITIES), {"ignore_index": 0}),
    "unknown reduction": (oracle.UnknownReductionError, oracle.cross_entropy, (X, INDEX), {"reduction": "avg"}),
    "batchmean outside kl_div": (oracle.UnknownReductionError, oracle.nll_loss, (X, INDEX),
                                 {"reduction": "batchmean"}),
    "size_average not a bool": (oracle.UnknownReductionError, oracle.kl_div, (X, PROBABILITIES),
                                {"size_average": "yes"}),
    "int32 class indices": (oracle.TargetDtypeError, oracle.nll_loss, (X, INDEX.astype(np.int32)), {}),
    "uint8 class indices": (oracle.TargetDtypeError, oracle.cross_entropy, (X, INDEX.astype(np.uint8)), {}),
    "float target of another shape": (oracle.TargetDtypeError, oracle.cross_entropy, (X, INDEX.astype(float)), {}),
    "integer target of the input's shape": (oracle.TargetDtypeError, oracle.cross_entropy,
                                            (X, np.zeros((3, 4), np.int64)), {}),
    "probabilities to nll_loss": (oracle.TargetDtypeError, oracle.nll_loss, (X, PROBABILITIES), {}),
    "integer input": (oracle.InputDtypeError, oracle.log_softmax, (np.zeros((2, 3), np.int64), 1), {}),
    "softmax dim out of range": (oracle.DimensionError, oracle.softmax, (X, 2), {}),
    "0-dim softmax with dim 1": (oracle.DimensionError, oracle.log_softmax, (np.float64(1.0), 1), {}),
}


@pytest.mark.parametrize("error, function, args, kwargs", INVALID_CALLS.values(), ids=list(INVALID_CALLS))
def test_invalid_input_raises_its_typed_error(error, function, args, kwargs):
    with pytest.raises(error):
        function(*args, **kwargs)


@pytest.mark.parametrize("error, function, args, kwargs", INVALID_CALLS.values(), ids=list(INVALID_CALLS))
def test_gradients_raise_the_same_typed_error(error, function, args, kwargs):
    vjp = getattr(oracle, function.__name__ + "_vjp")
    if function in (oracle.softmax, oracle.log_softmax):
        args = (args[0], np.zeros(np.shape(args[0]))) + args[1:]
    else:
        args = args[:2] + (np.float64(1.0),) + args[2:]
    with pytest.raises(error):
        vjp(*args, **kwargs)


def test_every_error_kind_is_an_oracle_error():
    for error, *_ in INVALID_CALLS.values():
        assert issubclass(error, oracle.OracleError) and issubclass(error, ValueError)


def test_negative_ignore_index_with_probabilities_is_accepted_and_has_no_effect():
    with_ignore = oracle.cross_entropy(X, PROBABILITIES, ignore_index=-5, return_scale=True)
    without = oracle.cross_entropy(X, PROBABILITIES, return_scale=True)
    assert with_ignore.value.shape == () and with_ignore.value[()] == without.value[()]
    assert with_ignore.scale[()] == without.scale[()]


def test_bad_precision_is_rejected_with_what_would_be_accepted():
    with pytest.raises(ValueError, match="at least 64 bits"):
        oracle.softmax(X, 1, prec=32)
