"""The oracle raises nothing but its typed errors: on the fuzzer's valid calls (no error at all), on its invalid
calls (exactly the error the defect must raise), and on calls whose keyword arguments are arbitrary values."""
import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
from conformance import spec
from conformance.fuzz.calls import calls
from conformance.fuzz.strategies import valid_calls
from conformance.inputs.generate import make_grad_output
from conformance.spec.names import FUNCTIONS
from test_oracle_engine_fixture import oracle_engine  # noqa: F401 (autouse: each test runs on every engine)

CI = settings(max_examples=80, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))


def positional(call):
    arrays = call.arrays
    return [arrays["input"]] + ([arrays["target"]] if "target" in arrays else [])


def keyword(call):
    return {**call.kwargs, **({"weight": call.arrays["weight"]} if "weight" in call.arrays else {})}


def evaluate(call):
    """The oracle's forward value and vector-Jacobian product of a call (the vjp only when the forward returns)."""
    function = getattr(oracle, call.function)
    value = function(*positional(call), **keyword(call))
    grad_output = make_grad_output(call.seed, value.shape, call.dtype)
    getattr(oracle, call.function + "_vjp")(*positional(call), grad_output, **keyword(call))
    return value


@CI
@given(call=calls(FUNCTIONS, invalid=True))
def test_valid_calls_return_and_invalid_calls_raise_their_typed_error(call):
    if call.expect_error is None:
        value = evaluate(call)
        assert isinstance(value, np.ndarray)
        return
    with pytest.raises(oracle.OracleError) as raised:
        evaluate(call)
    assert type(raised.value).__name__ == call.expect_error, f"{call.defect}: {raised.value!r}"


ARBITRARY = (st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=6)
             | st.lists(st.integers(-3, 3), max_size=3) | st.just(np.int64(2)) | st.just(np.float32(0.5)))


@st.composite
def calls_with_an_arbitrary_keyword(draw):
    """A valid call with one keyword argument replaced by a value of any type (ignore_index: any integer, see
    test_a_non_integer_ignore_index_raises_a_typed_error)."""
    function = draw(st.sampled_from(FUNCTIONS))
    call = draw(valid_calls(function, draw(st.sampled_from(("float64", "float32")))))
    name = draw(st.sampled_from(tuple(spec.get(function).keywords)))
    value = draw(st.integers(-10**20, 10**20) | st.just(np.int64(3)) if name == "ignore_index" else ARBITRARY)
    call.kwargs = {**call.kwargs, name: value}
    return call


@settings(CI, max_examples=120)
@given(call=calls_with_an_arbitrary_keyword())
def test_any_keyword_value_gives_a_value_or_a_typed_error(call):
    """The property: an mpf array, or a typed OracleError subclass with a message; anything else (TypeError,
    AttributeError, ...) escapes and fails the test."""
    try:
        result = evaluate(call)
    except oracle.OracleError as error:
        assert type(error) is not oracle.OracleError and str(error)
        return
    values = [result] if not isinstance(result, tuple) else [part for part in result if part is not None]
    for value in values:
        array = np.asarray(getattr(value, "value", value), dtype=object)
        assert all(isinstance(element, mpmath.mpf) for element in array.flat)


@pytest.mark.parametrize("function, target", [
    ("nll_loss", np.array([0, 1])), ("cross_entropy", np.array([0, 1])), ("cross_entropy", np.full((2, 3), 1 / 3))],
    ids=["nll_loss-indices", "cross_entropy-indices", "cross_entropy-probabilities"])
@pytest.mark.parametrize("ignore_index", [None, "1", [1]], ids=["None", "str", "list"])
def test_a_non_integer_ignore_index_raises_a_typed_error(function, target, ignore_index):
    with pytest.raises(oracle.ArgumentTypeError, match="ignore_index must be an int"):
        getattr(oracle, function)(np.zeros((2, 3)), target, ignore_index=ignore_index)
