"""The torch-compile backend compiles the function under test on every call, whatever ran before it.

torch.compile(F.<function>) runs a torch function behind a wrapper frame whose code object every such wrapper
shares (torch/_dynamo/external_utils.py, wrap_inline); once a compiled F.linear_cross_entropy raised on a wrong
bias shape, dynamo skipped that code and every function compiled later in the process ran eagerly, silently: a
torch-compile run's verdicts then depended on the cases a worker had run before (docs/backends.md). Dynamo's
own counter of captured calls says whether a call was compiled.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conformance.backends import Call, load_backend  # noqa: E402

RNG = np.random.default_rng(0)
WRONG_BIAS = Call("linear_cross_entropy", "float32", {
    "input": RNG.standard_normal((3, 5)), "linear_weight": RNG.standard_normal((7, 5)),
    "target": RNG.integers(0, 7, 3), "linear_bias": RNG.standard_normal(6)}, {})


def _captured(backend, call):
    """(calls dynamo captured during the call, the call's error)."""
    from torch._dynamo.utils import counters

    before = counters["stats"]["calls_captured"]
    outcome = backend.run(call)
    return counters["stats"]["calls_captured"] - before, outcome.error


@pytest.fixture
def compiled():
    if not hasattr(torch.nn.functional, "linear_cross_entropy"):
        pytest.skip("torch < 2.13 has no F.linear_cross_entropy")
    torch._dynamo.reset()  # no state from another test
    yield load_backend("torch-compile", "cpu")
    torch._dynamo.reset()


def test_a_compiled_call_that_raised_leaves_later_functions_compiled(compiled):
    assert compiled.run(WRONG_BIAS).error[1] == "expected linear_bias shape (7,), got (6,)"
    softmax = Call("softmax", "float32", {"input": RNG.standard_normal((3, 4))}, {"dim": 1})
    assert _captured(compiled, softmax) == (1, None)


def test_the_function_that_raised_is_compiled_again_on_its_next_call(compiled):
    compiled.run(WRONG_BIAS)
    right = Call("linear_cross_entropy", "float32", dict(WRONG_BIAS.arrays, linear_bias=RNG.standard_normal(7)), {})
    captured, error = _captured(compiled, right)
    assert error is None and captured >= 1


def test_each_function_is_compiled_behind_a_frame_of_its_own(compiled):
    compiled.run(Call("softmax", "float32", {"input": RNG.standard_normal((3, 4))}, {"dim": 1}))
    compiled.run(Call("log_softmax", "float32", {"input": RNG.standard_normal((3, 4))}, {"dim": 1}))
    codes = {name: function._torchdynamo_orig_callable.__code__ for name, function in compiled._compiled.items()}
    assert set(codes) == {"softmax", "log_softmax"} and codes["softmax"] is not codes["log_softmax"]
    assert codes["softmax"].co_name == "softmax"
