"""Memory layouts, determinism and batch invariance (issue #23).

A layout hands a backend the same values at other strides (conformance/inputs/layouts.py): the plans hold exactly
the values with poison around them, torch gets tensors with the planned strides, array backends find the layouts
not applicable, a layout a tensor cannot take is a case problem. The deterministic and batch_invariant checks
compare a backend with itself (conformance/verdict/stability.py): they fail the toy kernels that break them, pass
the ones that don't, and batch invariance is judged at one intra-op thread.
"""
import json
import math
import sys
import textwrap
import types

import numpy as np
import pytest

from conformance.backends import Call, Capabilities, Outcome
from conformance.cli import main
from conformance.inputs.layouts import SIZE1_STRIDE, LayoutError, numpy_view, strided
from conformance.spec.features import LAYOUTS
from conformance.verdict import checks
from conformance.verdict.stability import BATCH, batch_invariance_check, deterministic_check

VALUES = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5) / 7
# layout -> a tensor it applies to (the expanded layouts need constant values)
EXAMPLES = {name: VALUES for name in LAYOUTS} | {
    "expanded": np.full((3, 4), 0.5), "expanded_rows": np.repeat(np.arange(3.0)[:, None], 4, axis=1)}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_layout_plan_holds_exactly_the_values(layout):
    values = EXAMPLES[layout]
    view = numpy_view(values, layout)
    assert view.shape == values.shape and np.array_equal(view, values)


@pytest.mark.parametrize("layout, poisoned", [("sliced", 120), ("sliced_rows", 240), ("offset", 5),
                                              ("row_padded", 72), ("batch_padded", 60)])
def test_what_a_layout_skips_is_poison(layout, poisoned):
    buffer, _, _ = strided(VALUES, layout)
    assert int(np.isnan(buffer).sum()) == poisoned  # a kernel that reads a skipped element gets NaN


def test_integer_tensors_are_poisoned_with_their_largest_value():
    buffer, strides, offset = strided(np.arange(4, dtype=np.int64), "sliced")
    assert strides == (2,) and offset == 0
    assert list(buffer[1::2]) == [np.iinfo(np.int64).max] * 4  # an out-of-range class index if read


@pytest.mark.parametrize("layout, strides, offset", [
    ("contiguous", (60, 20, 5, 1), 0), ("transposed", (60, 20, 1, 4), 0), ("sliced", (120, 40, 10, 2), 0),
    ("sliced_rows", (180, 20, 5, 1), 0), ("offset", (60, 20, 5, 1), 3), ("row_padded", (96, 32, 8, 1), 0),
    ("batch_padded", (90, 30, 5, 1), 0), ("channels_last", (60, 1, 15, 3), 0)])
def test_the_strides_of_each_layout(layout, strides, offset):
    assert strided(VALUES, layout)[1:] == (strides, offset)


def test_size1_dims_get_an_arbitrary_stride_and_expanded_layouts_stride_zero():
    assert strided(np.zeros((5, 1, 3)), "size1_stride")[1] == (3, SIZE1_STRIDE, 1)
    assert strided(EXAMPLES["expanded"], "expanded")[1] == (0, 0)
    assert strided(EXAMPLES["expanded_rows"], "expanded_rows")[1] == (1, 0)


@pytest.mark.parametrize("values, layout, says", [
    (np.zeros((2, 3)), "channels_last", "needs 4 dims"), (np.arange(3.0), "transposed", "needs 2 dims"),
    (np.arange(3.0), "expanded", "one value"), (np.eye(2), "expanded_rows", "constant along the last dim"),
    (np.zeros(2), "diagonal", "unknown layout")])
def test_a_layout_the_values_cannot_take_is_refused(values, layout, says):
    with pytest.raises(LayoutError, match=says):
        strided(values, layout)


def test_array_backends_find_layouts_not_applicable_unless_they_declare_them():
    features = {"layout:transposed", "weight"}
    assert Capabilities(functions=("softmax",), dtypes=("float32",)).not_applicable(features) == ["layout:transposed"]
    assert Capabilities(functions=("softmax",), dtypes=("float32",), api="torch").not_applicable(features) == []
    declared = Capabilities(functions=("softmax",), dtypes=("float32",), supported=frozenset({"layout:transposed"}))
    assert declared.not_applicable(features) == []


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("layout", [name for name in LAYOUTS if name != "contiguous"])
def test_torch_gets_the_values_at_the_planned_strides(layout):
    from conformance.backends.torch_backend import TorchBackend

    values = EXAMPLES[layout]
    tensor = TorchBackend()._tensor(values, "float64", layout=layout)
    _, strides, offset = strided(values, layout)
    assert tensor.stride() == strides and tensor.storage_offset() == offset
    assert np.array_equal(tensor.numpy(), values)


def test_torch_calls_a_size1_stride_tensor_contiguous_and_channels_last_is_nhwc():
    from conformance.backends.torch_backend import TorchBackend

    backend = TorchBackend()
    assert backend._tensor(np.zeros((5, 1, 3)), "float32", layout="size1_stride").is_contiguous()
    nhwc = backend._tensor(VALUES, "float32", layout="channels_last")
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and not nhwc.is_contiguous()


def _recording_namespace(seen):
    def softmax(input, dim=None, _stacklevel=3, dtype=None):
        seen.append((tuple(input.shape), input.stride(), input.storage_offset()))
        return torch.nn.functional.softmax(input, dim, _stacklevel, dtype)
    return types.SimpleNamespace(softmax=softmax, SUPPORTED_DTYPES=("float64",))


def test_a_case_layout_reaches_the_kernel_and_torch_passes_it(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setitem(sys.modules, "recording_kernel", _recording_namespace(seen))
    path = tmp_path / "softmax.yaml"
    path.write_text(textwrap.dedent("""\
        function: softmax
        dtypes: [float64]
        cases:
          - id: offset-rows
            kwargs: {dim: 1}
            inputs: {input: {shape: [4, 5], layout: transposed}}
        """))
    assert main(["run", "--backend", "recording_kernel", "--cases", str(path), "--jobs", "0", "--xfails",
                 "--no-cache", "--quiet"]) == 0
    assert seen[0] == ((4, 5), (1, 4), 0)


def test_a_layout_a_case_tensor_cannot_take_is_a_case_problem_naming_it(tmp_path, capsys):
    path = tmp_path / "softmax.yaml"
    path.write_text(textwrap.dedent("""\
        function: softmax
        dtypes: [float64]
        cases:
          - id: flat
            kwargs: {dim: 0}
            inputs: {input: {shape: [5], layout: channels_last}}
        """))
    status = main(["run", "--cases", str(path), "--jobs", "0", "--xfails", "--no-cache"])
    output = capsys.readouterr()
    assert status == 2, output
    assert "softmax/flat" in output.out + output.err and "channels_last" in output.out + output.err


# --- determinism and batch invariance ----------------------------------------------------------------------------

def _softmax_call(rows=3, length=200):
    """Rows of one 1 and 6e-17s: added one by one to 1 each small term is lost (under half an ulp), added to each
    other first (in lanes) they are not, so the order of summation shows in the normaliser's bits."""
    x = np.full((rows, length), math.log(6e-17))
    x[:, 0] = 0.0
    return Call("softmax", "float64", {"input": x}, {"dim": 1})


def _running_sum(columns):
    total = np.zeros(columns.shape[0])
    for column in columns.T:
        total = total + column
    return total


def _softmax(x, lanes=1):
    """A row softmax whose normaliser is ``lanes`` interleaved running sums, then their running sum."""
    exps = np.exp(x - x.max(axis=1, keepdims=True))
    partial = np.stack([_running_sum(exps[:, k::lanes]) for k in range(lanes)], axis=1)
    return Outcome(value=exps / _running_sum(partial)[:, None], dtype="float64")


def test_identical_calls_that_differ_in_their_bits_fail_deterministic_and_name_the_element():
    call = _softmax_call()
    first = _softmax(call.arrays["input"], 4)
    again = _softmax(call.arrays["input"], 4)
    again.value[1, 7] = np.nextafter(again.value[1, 7], 1.0)  # one ulp: an atomic add landing in another order
    result = deterministic_check(call, first, lambda c: again)
    assert result.status == "failed"
    assert "two identical calls differ in their bits: value[1, 7]" in result.message and "(1 of 600" in result.message
    assert deterministic_check(call, first, lambda c: _softmax(c.arrays["input"], 4)).status == "passed"


def test_a_kernel_that_sums_in_as_many_lanes_as_the_batch_has_rows_fails_batch_invariance():
    call = _softmax_call()
    calls = []

    def run(c):
        calls.append(c.arrays["input"].shape)
        return _softmax(c.arrays["input"], lanes=c.arrays["input"].shape[0])

    result = batch_invariance_check(call, run)
    assert calls == [(1, 200), (BATCH, 200)]
    assert result.status == "failed" and "first row alone and in a batch of 64" in result.message
    assert batch_invariance_check(call, lambda c: _softmax(c.arrays["input"], lanes=4)).status == "passed"


@pytest.mark.parametrize("function, kwargs, checked", [
    ("softmax", {"dim": 1}, True), ("softmax", {"dim": 0}, False), ("cross_entropy", {"reduction": "none"}, True),
    ("cross_entropy", {"reduction": "mean"}, False), ("cross_entropy", {"reduction": "sum"}, False)])
def test_batch_invariance_is_checked_only_where_rows_are_independent(function, kwargs, checked):
    arrays = {"input": np.zeros((3, 4)), "target": np.zeros(3, dtype=np.int64)}
    arrays = arrays if function == "cross_entropy" else {"input": arrays["input"]}
    result = batch_invariance_check(Call(function, "float64", arrays, kwargs), lambda c: Outcome(
        value=np.zeros(c.arrays["input"].shape[:1] if function == "cross_entropy" else c.arrays["input"].shape)))
    assert (result is not None) is checked


class _ThreadedBackend:
    """A backend whose rows are batch-invariant at one thread only, like torch's CPU softmax."""
    capabilities = Capabilities(functions=("softmax",), dtypes=("float64",))

    def __init__(self):
        self.threads, self.entered = 4, 0

    def describe(self):
        return {"name": "threaded"}

    def one_thread(self):
        backend = self

        class _Pinned:
            def __enter__(self):
                backend.entered += 1
                backend.threads, self.before = 1, backend.threads

            def __exit__(self, *exc):
                backend.threads = self.before
        return _Pinned()

    def run(self, call):
        x = call.arrays["input"]
        return _softmax(x, lanes=1 if self.threads == 1 else x.shape[0])


def test_batch_invariance_is_judged_at_one_thread_and_the_setting_restored():
    backend, call = _ThreadedBackend(), _softmax_call()
    outcome = backend.run(call)
    results = {r.check: r.status for r in checks._stability_checks(backend, call, outcome, lambda state: None)}
    assert results == {"deterministic": "passed", "batch_invariant": "passed"}
    assert backend.entered == 1 and backend.threads == 4
    del _ThreadedBackend.one_thread  # without the hook the same backend is judged at its 4 threads: it fails
    try:
        results = {r.check: r.status for r in checks._stability_checks(backend, call, outcome, lambda s: None)}
    finally:
        _ThreadedBackend.one_thread = _one_thread
    assert results["batch_invariant"] == "failed"


_one_thread = _ThreadedBackend.one_thread


def test_the_torch_backend_pins_one_thread_and_restores_the_callers_setting():
    from conformance.backends.torch_backend import TorchBackend

    before = torch.get_num_threads()
    with TorchBackend().one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_nan_payloads_do_not_count_as_a_difference():
    call = _softmax_call()
    value = np.full((3, 40), math.nan)
    result = deterministic_check(call, Outcome(value=value), lambda c: Outcome(value=-value))
    assert result.status == "passed"


def test_a_one_element_mean_that_is_also_wrong_fails_both_shape_and_value(tmp_path, monkeypatch):
    """(1,) where () is expected, 1 % off: both failures are reported on a real corpus case."""
    def cross_entropy(input, target, *args, **kwargs):
        return torch.nn.functional.cross_entropy(input, target, *args, **kwargs).reshape(1) * 1.01
    monkeypatch.setitem(sys.modules, "one_element_mean", types.SimpleNamespace(
        cross_entropy=cross_entropy))
    path = tmp_path / "r.json"
    main(["run", "--backend", "one_element_mean", "--id", "cross_entropy/NC-mean-w=pos-ii=-100-ls=0.0", "--dtype",
          "float64", "--jobs", "0", "--xfails", "--no-cache", "--quiet", "--json", str(path)])
    statuses = {r["check"]: r["status"] for r in json.loads(path.read_text())["results"]}
    assert statuses["shape"] == "failed" and statuses["value"] == "failed"
