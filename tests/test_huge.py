"""The huge tier (conformance/huge): its placement, its oracle derivation, its streamed comparison, and its power,
on a geometry small enough for CI (a boundary of 2**19 elements instead of 2**31; the real tier runs nightly,
.ci/nightly). The offset mutants wrap at the boundary's width, as int32 offsets wrap at 2**31."""
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import oracle  # noqa: E402
from conformance.backends import load_backend  # noqa: E402
from conformance.cli import main  # noqa: E402
from conformance.expected.calls import Wanted  # noqa: E402
from conformance.huge import cases as tier  # noqa: E402
from conformance.huge.compare import compare_rows  # noqa: E402
from conformance.huge.expected import budget, certify  # noqa: E402
from conformance.corpus.casefile import CASES_DIR  # noqa: E402
from conformance.huge.run import NotTorchAPI, run_case, torch_api  # noqa: E402
from conformance.mutants import offsets  # noqa: E402
from conformance.verdict.compare import compare_array  # noqa: E402
from conformance.verdict.deviations import DeviationSet, default_deviation_paths  # noqa: E402

SMALL = tier.Geometry(classes=1024, boundary_bits=19)
TORCH_DEVIATIONS = DeviationSet.from_paths(default_deviation_paths("torch"))


def _case(full_id):
    return next(case for case in tier.CASES if case.full_id == full_id)


def _unexpected(case, dtype, result):
    """The failed checks that torch's declared deviations do not cover."""
    return [check.check for check in result.checks if check.status == "failed"
            and TORCH_DEVIATIONS.deviation(case.full_id, dtype, check.check) is None]


def _backend(namespace=None):
    backend = load_backend("torch")
    if namespace is not None:
        backend.namespace, backend.is_torch_functional = namespace, False
    return backend


def test_the_real_geometry_is_past_2_31_elements_and_its_mean_divides_by_a_power_of_two():
    geometry = tier.Geometry()
    assert geometry.elements >= 2**31 + 2**20
    kinds = tier.make_kinds(_case("cross_entropy/huge-rows-mean"), geometry, "float16")
    counted = int(kinds.counts()[kinds.targets != tier.IGNORE_INDEX].sum())
    assert counted == 2**14 and counted & (counted - 1) == 0


@pytest.mark.parametrize("case", tier.CASES, ids=lambda case: case.full_id)
def test_a_wrapped_offset_of_a_tail_row_lands_on_another_kind(case):
    """Every element past the boundary, read at its offset wrapped to the boundary's width, is in a row of
    another kind: a kernel that wraps reads or writes a row the check reads, with other values."""
    kinds = tier.make_kinds(case, SMALL, "bfloat16")
    offsets_past = np.arange(SMALL.boundary, SMALL.elements)
    signed = (offsets_past - 2 * SMALL.boundary) % SMALL.elements  # int of boundary_bits + 1 bits, read from the end
    unsigned = offsets_past - SMALL.boundary  # uint of boundary_bits bits (the 2**32 geometry's case)
    tail_kind = kinds.pattern[-1]
    assert set(kinds.pattern[offsets_past // SMALL.classes]) == {tail_kind}
    for wrapped in (signed, unsigned):
        assert tail_kind not in set(kinds.pattern[wrapped // SMALL.classes])
    assert np.count_nonzero(kinds.pattern == tail_kind) == tier.TAIL_ROWS


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_the_kinds_derivation_equals_the_oracle_on_the_whole_tensor(reduction):
    """The expected values built from the kinds (placed, or a mean formed from them) against the oracle certified
    on every row of a tiny tier tensor: the same numbers to far below any dtype's roundoff."""
    geometry = tier.Geometry(classes=16, boundary_bits=7)
    case = next(c for c in tier.CASES if c.layout == "rows" and c.kwargs.get("reduction") == reduction)
    kinds = tier.make_kinds(case, geometry, "float16")
    wanted = certify(case, kinds)
    logits, targets = kinds.logits[kinds.pattern], kinds.targets[kinds.pattern]
    keywords = {"reduction": reduction, "ignore_index": tier.IGNORE_INDEX}
    whole = oracle.certify_float64(oracle.cross_entropy, logits, targets, **keywords)
    upstream = np.float64(1.0) if reduction == "mean" else kinds.upstream[kinds.pattern]
    grad = oracle.certify_float64(oracle.cross_entropy_vjp, logits, targets, upstream, **keywords)["input"]
    value = wanted["value"] if reduction == "mean" else Wanted(*(p[kinds.pattern] for p in wanted["value"]))
    rows = Wanted(*(p[kinds.pattern] for p in wanted["grad_input"]))
    for ours, theirs in ((value, whole), (rows, grad)):
        np.testing.assert_allclose(ours.hi + ours.lo, theirs.hi + theirs.lo, rtol=2**-80, atol=0)
        np.testing.assert_allclose(ours.scale, theirs.scale, rtol=2**-50)


def test_the_streamed_comparison_counts_as_the_whole_comparison():
    """compare_rows (first rows in full, the rest by their bits) gives compare_array's counts, largest error and
    its place, on an output with a few rows changed."""
    case = _case("log_softmax/huge-rows")
    kinds = tier.make_kinds(case, SMALL, "bfloat16")
    wanted = certify(case, kinds)["value"]
    output = torch.log_softmax(torch.tensor(kinds.logits[kinds.pattern]).to(torch.bfloat16), -1)
    output[7, 3] += 0.25
    output[SMALL.rows - 1, 100] = float("nan")
    output[200:203] = output[201]  # rows of other kinds with the same bits, one of them its kind's row
    value_budget = budget(case, SMALL, "value", "bfloat16")
    streamed = {c.check: c for c in compare_rows(torch, output, output.shape, 1, wanted, kinds, "bfloat16",
                                                 value_budget)}
    whole = {c.check: c for c in compare_array(output.double().numpy(), "bfloat16",
                                               Wanted(*(p[kinds.pattern] for p in wanted)), "bfloat16", value_budget)}
    assert set(streamed) == set(whole)
    for check, result in whole.items():
        assert (streamed[check].status, streamed[check].n, streamed[check].bad) == (result.status, result.n, result.bad)
        assert streamed[check].error_u == result.error_u
        assert streamed[check].worst.get("index") == result.worst.get("index")


@pytest.mark.parametrize("dtype", tier.DTYPES)
@pytest.mark.parametrize("case", tier.CASES, ids=lambda case: case.full_id)
def test_torch_passes_the_tier(case, dtype):
    assert _unexpected(case, dtype, run_case(_backend(), case, dtype, SMALL)) == []


@pytest.mark.parametrize("design", ["fused", "pairwise", "tiles_1024", "float32_loss", "stored_gradient", "in_place"])
def test_correct_designs_pass_the_tier_with_no_declared_deviation(design):
    """Kernels of other designs (conformance/mutants/designs.py: blocked and fused, other summation orders, float32
    losses, the gradient stored in the dtype or in the logits) pass every check, none declared."""
    backend = load_backend(f"conformance.mutants.designs:{design}")
    failed = [(case.full_id, dtype, check.check) for case in tier.CASES for dtype in tier.DTYPES
              for check in run_case(backend, case, dtype, SMALL).checks if check.status == "failed"]
    assert failed == []


@pytest.mark.parametrize("name", ["read_wrapped", "write_wrapped"])
def test_the_offset_mutants_are_killed(name):
    """Each mutant fails checks torch's deviations do not cover in every dtype: reading at wrapped offsets shows
    in the log-probabilities and the 'none' losses, writing at wrapped offsets in every input gradient."""
    mutant = _backend(getattr(offsets, name)(bits=SMALL.boundary_bits + 1))
    for dtype in tier.DTYPES:
        failed = {case.id: _unexpected(case, dtype, run_case(mutant, case, dtype, SMALL)) for case in tier.CASES}
        killing = [case_id for case_id, checks in failed.items() if checks]
        if name == "read_wrapped":
            assert {"huge-rows", "huge-tokens", "huge-rows-none", "huge-tokens-none"} <= set(killing)
        else:
            assert set(killing) == {case.id for case in tier.CASES}


@pytest.mark.parametrize("name", ["read_wrapped", "write_wrapped"])
def test_the_offset_mutants_compute_what_torch_does_below_the_limit(name):
    mutant = getattr(offsets, name)()
    x = torch.randn(6, 10, 5, dtype=torch.float16, requires_grad=True)
    target = torch.randint(0, 10, (6, 5))
    for call in (lambda f: f.cross_entropy(x, target), lambda f: f.log_softmax(x, dim=1)):
        got, want = call(mutant), call(torch.nn.functional)
        assert torch.equal(got, want)
        assert torch.equal(torch.autograd.grad(got.sum(), x)[0], torch.autograd.grad(want.sum(), x)[0])


def test_a_backend_that_raises_fails_its_own_case():
    class Raising:
        def cross_entropy(self, *args, **kwargs):
            raise RuntimeError("index out of bounds")

        def log_softmax(self, *args, **kwargs):
            return torch.nn.functional.log_softmax(*args, **kwargs)

    backend = _backend(Raising())
    failed = run_case(backend, _case("cross_entropy/huge-rows-none"), "float16", SMALL)
    assert [(c.check, c.status) for c in failed.checks] == [("value", "failed")]
    assert "index out of bounds" in failed.checks[0].message
    after = _case("log_softmax/huge-rows")
    assert _unexpected(after, "float16", run_case(backend, after, "float16", SMALL)) == []


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="the memory guard reads Linux's /proc/meminfo")
def test_a_case_the_machine_cannot_hold_is_skipped_with_the_numbers():
    result = run_case(_backend(), _case("log_softmax/huge-rows"), "float16", tier.Geometry(boundary_bits=40))
    assert [(c.check, c.status) for c in result.checks] == [("value", "skipped")]
    assert "needs about 8192.5 GiB" in result.checks[0].message and "available" in result.checks[0].message


def test_the_command_writes_its_results_and_refuses_a_backend_it_cannot_feed(tmp_path, capsys):
    path = tmp_path / "huge.json"
    status = main(["huge", "--boundary-bits", "19", "--classes", "1024", "--json", str(path), "--junit",
                   str(tmp_path / "huge.xml")])  # every case: torch's declared deviations hold on this geometry too
    document = json.loads(path.read_text())
    assert '<testsuite name="cross_entropy" tests="8"' in (tmp_path / "huge.xml").read_text()
    assert status == 0 and document["tier"] == "huge" and document["geometry"]["elements"] == SMALL.elements
    assert {record["dtype"] for record in document["results"]} == set(tier.DTYPES)
    assert all(record["status"] in ("passed", "xfailed") for record in document["results"])
    status = main(["huge", "--backend", "conformance.mutants.offsets:write_wrapped", "--boundary-bits", "19",
                   "--classes", "1024", "--id", "log_softmax/huge-rows", "--dtype", "float16", "--xfails",
                   str(CASES_DIR / "xfails" / "torch.yaml")])
    assert status == 0  # 32-bit offsets do not wrap below 2**31: the mutant is torch on this geometry
    capsys.readouterr()
    assert main(["huge", "--backend", "no_such_module_here"]) == 2
    assert main(["huge", "--classes", "1000"]) == 2
    assert "power of two" in capsys.readouterr().err
    assert main(["huge", "--id", "cross_entropy/huge"]) == 2
    assert "no case 'cross_entropy/huge'; the cases: log_softmax/huge-tokens" in capsys.readouterr().err
    with pytest.raises(NotTorchAPI, match="hands torch tensors"):
        torch_api(type("Other", (), {"name": "other"})())
