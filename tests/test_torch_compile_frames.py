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

from conformance.backends import Call, load_backend, torch_backend  # noqa: E402

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
    captured, error = _captured(compiled, RIGHT_BIAS)
    assert error is None and captured >= 1


RIGHT_BIAS = Call("linear_cross_entropy", "float32", dict(WRONG_BIAS.arrays, linear_bias=RNG.standard_normal(7)), {})


def _grad_fn_name(compiled, call):
    """The type name of what the compiled function's result was made by: CompiledFunctionBackward when it ran
    compiled, the eager operation's backward otherwise (a skipped frame and a cache hit both capture nothing)."""
    tensors = {name: torch.from_numpy(array) for name, array in call.arrays.items()}
    tensors["input"].requires_grad_()
    result = compiled._compiled[call.function](tensors["input"], tensors["linear_weight"], tensors["target"],
                                                linear_bias=tensors["linear_bias"])
    return type(result.grad_fn).__name__


def test_attempting_again_keeps_the_graphs_compiled_before_the_call_that_raised(compiled):
    assert _captured(compiled, RIGHT_BIAS)[0] >= 1
    compiled.run(WRONG_BIAS)
    assert _captured(compiled, RIGHT_BIAS) == (0, None)  # nothing traced again
    assert _grad_fn_name(compiled, RIGHT_BIAS) == "CompiledFunctionBackward"


def test_without_dynamo_s_setter_the_function_that_raised_gets_a_new_frame(compiled, monkeypatch):
    monkeypatch.setattr(torch_backend, "_skip_reset", lambda: None)  # a torch that offers none
    compiled.run(RIGHT_BIAS)
    compiled.run(WRONG_BIAS)
    assert "linear_cross_entropy" not in compiled._compiled
    assert _captured(compiled, RIGHT_BIAS)[0] >= 1


def test_each_function_is_compiled_behind_a_frame_of_its_own(compiled):
    compiled.run(Call("softmax", "float32", {"input": RNG.standard_normal((3, 4))}, {"dim": 1}))
    compiled.run(Call("log_softmax", "float32", {"input": RNG.standard_normal((3, 4))}, {"dim": 1}))
    codes = {name: function._torchdynamo_orig_callable.__code__ for name, function in compiled._compiled.items()}
    assert set(codes) == {"softmax", "log_softmax"} and codes["softmax"] is not codes["log_softmax"]
    assert codes["softmax"].co_name == "softmax"


def test_an_eager_call_that_raised_does_not_import_dynamo():
    """Only a compiled function has a frame to reset: importing torch._dynamo for an eager torch error case cost
    0.7 s of a worker's run."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import sys
        import numpy as np
        from conformance.backends import Call, load_backend
        r = np.random.default_rng(0)
        outcome = load_backend("torch", "cpu").run(Call("softmax", "float32", {"input": r.standard_normal((3, 4))},
                                                        {"dim": 5}))
        print(outcome.error[0], "torch._dynamo.eval_frame" in sys.modules)
    """)
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            check=True).stdout
    assert output.split() == ["IndexError", "False"]
