"""The extended contract of fused cross-entropy kernels (issue #24, docs/extensions.md), checked by independent
routes: exact dot products against Python fractions, identities (a softcap too large to bite, a z-loss of 0, the
outputs against each other), hand values, central differences of the gradients, both engines, torch's float64
results, and the suite end to end (the torch reference passes, torch's own linear_cross_entropy passes, a backend
that declares nothing finds the cases unsupported)."""
import math
from fractions import Fraction

import numpy as np
import pytest

import oracle
from oracle._dot import exact_matmul, to_float64

RNG = np.random.default_rng(24)


def _fraction_matmul(a, b, bias=None):
    return [[sum((Fraction(float(x)) * Fraction(float(y)) for x, y in zip(row, col)), Fraction(0))
             + (Fraction(float(bias[j])) if bias is not None else 0) for j, col in enumerate(b)] for row in a]


def _as_fractions(mantissas, exponents):
    return [[Fraction(int(m)) * Fraction(2) ** int(e) for m, e in zip(mr, er)] for mr, er in zip(mantissas, exponents)]


@pytest.mark.parametrize("dtype, spread", [(np.float16, 6), (np.float32, 40), (np.float64, 600)])
def test_exact_matmul_equals_the_sum_of_fractions(dtype, spread):
    a = (RNG.normal(size=(3, 29)) * np.exp2(RNG.integers(-spread, spread, (3, 29)) // 2)).astype(dtype)
    b = (RNG.normal(size=(4, 29)) * np.exp2(RNG.integers(-spread, spread, (4, 29)) // 2)).astype(dtype)
    bias = RNG.normal(size=4).astype(dtype)
    a[1] = 0
    assert _as_fractions(*exact_matmul(a, b, bias)) == _fraction_matmul(a, b, bias)


def test_exact_matmul_at_the_ends_of_float64_and_its_refusals():
    a = np.array([[5e-324, 1e308, -3e-310, 2.0]])
    b = np.array([[1e-10, 1e-300, 7e300, 3.0], [5e-324, 5e-324, 1.0, 1.0]])
    assert _as_fractions(*exact_matmul(a, b)) == _fraction_matmul(a, b)
    mantissas, exponents = exact_matmul(np.zeros((0, 3)), np.ones((2, 3)))
    assert mantissas.shape == (0, 2)
    assert to_float64(*exact_matmul(np.ones((1, 3)), np.ones((1, 3)) / 3))[0, 0] == 1.0
    with pytest.raises(ValueError, match="finite"):
        exact_matmul(np.array([[np.inf]]), np.ones((1, 1)))


LOGITS = np.array([[1.0, 2.0, -1.0, 0.5], [0.5, 0.25, 3.0, -2.0], [4.0, -4.0, 0.0, 1.0]])
TARGET = np.array([2, 0, -100])


def test_a_softcap_too_large_to_bite_and_a_zero_z_loss_change_nothing():
    plain = float(oracle.cross_entropy(LOGITS, TARGET, label_smoothing=0.1))
    assert float(oracle.cross_entropy(LOGITS, TARGET, label_smoothing=0.1, z_loss_scale=0.0)) == plain
    assert float(oracle.cross_entropy(LOGITS, TARGET, label_smoothing=0.1, softcap=1e9)) == pytest.approx(plain, 1e-15)


def _hand(logits, target, c, s, ignore=-100):
    """softcapped cross entropy plus z-loss, 'mean' over the counted rows, in floats."""
    total, count = 0.0, 0
    for row, y in zip(logits, target):
        if y == ignore:
            continue
        capped = [c * math.tanh(v / c) for v in row]
        lse = math.log(math.fsum(math.exp(v) for v in capped))
        total += (lse - capped[y]) + s * lse * lse
        count += 1
    return total / count


def test_hand_values_of_softcap_and_z_loss():
    got = float(oracle.cross_entropy(LOGITS, TARGET, softcap=2.5, z_loss_scale=0.01))
    assert got == pytest.approx(_hand(LOGITS, TARGET, 2.5, 0.01), rel=1e-14)


def test_the_outputs_agree_with_each_other_and_with_the_loss():
    outputs = oracle.cross_entropy(LOGITS, TARGET, reduction="none", softcap=3.0, z_loss_scale=0.1,
                                   return_outputs=("lse", "target_logprob", "entropy", "z_loss"))
    lse, logprob, z = (np.array(outputs[n], dtype=float) for n in ("lse", "target_logprob", "z_loss"))
    loss = np.array(outputs["loss"], dtype=float)
    assert np.allclose(loss[:2], (z - logprob)[:2], rtol=1e-15) and loss[2] == logprob[2] == z[2] == 0
    assert np.allclose(z[:2], 0.1 * lse[:2] ** 2, rtol=1e-15)
    uniform = oracle.cross_entropy(np.zeros((1, 7)), np.array([3]), return_outputs=("entropy", "lse"))
    assert float(uniform["entropy"][0]) == pytest.approx(math.log(7), rel=1e-15) == float(uniform["lse"][0])


def test_z_loss_mean_counts_rows_or_weighs_them_by_class():
    weight = np.array([2.0, 0.5, 1.0, 3.0])
    count = oracle.cross_entropy(LOGITS, TARGET, weight=weight, z_loss_scale=1.0, return_outputs=("z_loss", "lse"))
    by_class = oracle.cross_entropy(LOGITS, TARGET, weight=weight, z_loss_scale=1.0, z_loss_weighting="class",
                                    return_outputs=("z_loss",))
    lse = np.array(count["lse"], dtype=float)
    assert float(count["z_loss"]) == pytest.approx((lse[0] ** 2 + lse[1] ** 2) / 2, rel=1e-15)
    assert float(by_class["z_loss"]) == pytest.approx((1.0 * lse[0] ** 2 + 2.0 * lse[1] ** 2) / 3.0, rel=1e-15)


def test_softcap_sends_infinities_to_plus_and_minus_c_and_nan_rows_stay_nan():
    logits = np.array([[-np.inf, 0.0, np.inf], [np.nan, 1.0, 2.0]])
    out = oracle.cross_entropy(logits, np.array([1, 1]), reduction="none", softcap=2.0, return_outputs=("lse",))
    capped = [-2.0, 0.0, 2.0]
    lse = math.log(math.fsum(math.exp(v) for v in capped))
    assert float(out["lse"][0]) == pytest.approx(lse, rel=1e-15) and float(out["loss"][0]) == pytest.approx(lse)
    assert math.isnan(float(out["loss"][1])) and math.isnan(float(out["lse"][1]))


@pytest.mark.parametrize("kwargs", [
    {"softcap": 2.0, "z_loss_scale": 0.1},
    {"softcap": 1.5, "label_smoothing": 0.2, "weight": np.array([1.0, 2.0, 0.5, 1.5])},
    {"z_loss_scale": 0.3, "z_loss_weighting": "class", "weight": np.array([1.0, 2.0, 0.5, 1.5]), "reduction": "sum"},
])
def test_the_gradients_are_the_central_differences_of_the_loss(kwargs):
    gradient = np.array(oracle.cross_entropy_vjp(LOGITS, TARGET, 1.0, **kwargs)["input"], dtype=float)
    step = 1e-6
    for index in [(0, 0), (1, 2), (0, 3), (2, 1)]:
        up, down = LOGITS.copy(), LOGITS.copy()
        up[index] += step
        down[index] -= step
        numeric = (float(oracle.cross_entropy(up, TARGET, **kwargs)) -
                   float(oracle.cross_entropy(down, TARGET, **kwargs))) / (2 * step)
        assert gradient[index] == pytest.approx(numeric, abs=1e-8)


def test_both_engines_give_the_same_certified_results():
    pytest.importorskip("flint")
    x, w, b = RNG.normal(size=(3, 6)), RNG.normal(size=(9, 6)), RNG.normal(size=9)
    t = np.array([1, 8, -100])
    kwargs = dict(softcap=3.0, z_loss_scale=0.01, label_smoothing=0.1, return_outputs=("lse", "entropy"))
    for function, args in ((oracle.linear_cross_entropy, (x, w, t, b)), (oracle.cross_entropy, (LOGITS, TARGET))):
        results = [oracle.certify_float64(function, *args, engine=engine, **kwargs) for engine in ("mpmath", "arb")]
        for name in results[0]:
            assert np.array_equal(results[0][name].hi, results[1][name].hi), name


def test_linear_cross_entropy_is_the_cross_entropy_of_the_exact_logits():
    x, w = RNG.normal(size=(4, 5)).astype(np.float32), RNG.normal(size=(6, 5)).astype(np.float32)
    t = np.array([0, 5, 2, -100])
    exact = np.array([[sum(Fraction(float(a)) * Fraction(float(c)) for a, c in zip(row, col)) for col in w]
                      for row in x], dtype=object)
    import mpmath

    with mpmath.workprec(200):  # the sums of 5 products of float32 values hold in far fewer bits: exact
        logits = np.vectorize(lambda f: mpmath.fdiv(f.numerator, f.denominator), otypes=[object])(exact)
    assert float(oracle.linear_cross_entropy(x, w, t, label_smoothing=0.1)) == pytest.approx(
        float(oracle.cross_entropy(logits, t, label_smoothing=0.1)), rel=1e-15)


@pytest.mark.parametrize("shapes", [((12,), (20, 12), (20,), ()), ((3, 8), (6, 4, 8), (6, 4), (3, 4)),
                                    ((4, 5), (7, 5), None, (4,))])
def test_linear_cross_entropy_and_its_gradients_agree_with_torch_in_float64(shapes):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    xs, ws, bs, ts = shapes
    x, w = RNG.normal(size=xs), RNG.normal(size=ws)
    b = None if bs is None else RNG.normal(size=bs)
    t = RNG.integers(0, ws[0], size=ts)
    leaves = [torch.tensor(a, requires_grad=True) if a is not None else None for a in (x, w, b)]
    loss = F.linear_cross_entropy(leaves[0], leaves[1], torch.tensor(t), linear_bias=leaves[2], reduction="none")
    upstream = RNG.normal(size=loss.shape)
    loss.backward(torch.tensor(upstream))
    ours = oracle.linear_cross_entropy_vjp(x, w, t, upstream, b, reduction="none")
    assert np.allclose(np.array(oracle.linear_cross_entropy(x, w, t, b, reduction="none"), dtype=float),
                       loss.detach().numpy(), rtol=1e-13, atol=1e-14)
    for name, leaf in zip(("input", "linear_weight", "linear_bias"), leaves):
        if leaf is not None:
            assert np.allclose(np.array(ours[name], dtype=float), leaf.grad.numpy(), rtol=1e-12, atol=1e-14), name


@pytest.mark.parametrize("kwargs, says", [({"softcap": 0.0}, "softcap"), ({"softcap": float("nan")}, "softcap"),
                                          ({"z_loss_scale": -1.0}, "z_loss_scale"),
                                          ({"z_loss_weighting": "mean"}, "z_loss_weighting"),
                                          ({"return_outputs": ("lse", "lse")}, "return_outputs"),
                                          ({"return_outputs": "lse"}, "return_outputs")])
def test_arguments_the_contract_rules_out_raise_its_error(kwargs, says):
    with pytest.raises(oracle.ExtensionArgumentError, match=says):
        oracle.cross_entropy(LOGITS, TARGET, **kwargs)


def test_target_logprob_of_probability_targets_and_infinite_linear_inputs_are_refused():
    with pytest.raises(oracle.ExtensionArgumentError, match="class-index"):
        oracle.cross_entropy(LOGITS, np.full(LOGITS.shape, 0.25), return_outputs=("target_logprob",))
    with pytest.raises(oracle.ExtensionArgumentError, match="finite"):
        oracle.linear_cross_entropy(np.array([[np.inf, 1.0]]), np.ones((3, 2)), np.array([0]))


# --- the suite, end to end ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.getbasetemp().parent / "oracle-cache"


def _run(cache_dir, backend, selection, **options):
    from conformance.run.session import RunOptions, Session

    session = Session(RunOptions(backend=backend, jobs=0, cache_dir=cache_dir, keyword=selection,
                                 functions=("cross_entropy", "linear_cross_entropy"), **options))
    records, _ = session.run()
    return records


def _by_status(records):
    found = {}
    for record in records:
        found.setdefault(record["status"], []).append(record)
    return found


def test_the_torch_reference_passes_every_extension_case_with_determinism_checked(cache_dir):
    pytest.importorskip("torch")
    from conformance.verdict.deviations import default_deviation_paths

    records = _by_status(_run(cache_dir, "conformance.backends.reference", "ext- or linear", determinism=True,
                              xfail_paths=default_deviation_paths("torch"), strict=False))
    failing = records.get("failed", []) + records.get("error", []) + records.get("xpassed", [])
    assert len(records["passed"]) > 3000 and not failing, [(r["case"], r["dtype"], r["check"]) for r in failing[:5]]
    assert {r["check"] for r in records.get("xfailed", [])} <= {"batch_invariant"}  # BLAS, declared for torch


def test_torch_finds_the_extension_cases_unsupported_and_passes_its_own_linear_cross_entropy(cache_dir):
    pytest.importorskip("torch")
    records = _by_status(_run(cache_dir, "torch", "ext- or linear"))
    skipped = {r["case"].split("/")[0] for r in records["skipped"] if r.get("skip_kind") == "unsupported"}
    assert skipped == {"cross_entropy", "linear_cross_entropy"}
    assert not records.get("failed") and not records.get("error") and not records.get("xpassed")
    linear = {r["check"] for r in records["passed"] if r["case"].startswith("linear_cross_entropy/")}
    assert {"value", "grad_input.value", "grad_linear_weight.value", "grad_linear_bias.value"} <= linear


def test_a_declared_output_that_is_not_returned_fails_and_tuples_follow_the_order_asked(cache_dir, monkeypatch):
    pytest.importorskip("torch")
    import sys
    import types

    from conformance.backends import reference

    def as_tuple(*args, return_outputs=(), **kwargs):
        result = reference.cross_entropy(*args, return_outputs=return_outputs, **kwargs)
        return result if not return_outputs else (result["loss"],) + tuple(result[n] for n in return_outputs)

    def without_lse(*args, return_outputs=(), **kwargs):
        result = reference.cross_entropy(*args, return_outputs=return_outputs, **kwargs)
        return result if not return_outputs else {k: v for k, v in result.items() if k != "lse"}

    features = reference.SUPPORTED_FEATURES
    for name, function in (("tuples", as_tuple), ("lossy", without_lse)):
        monkeypatch.setitem(sys.modules, f"lc_ext_{name}", types.SimpleNamespace(
            cross_entropy=function, SUPPORTED_FEATURES=features, CONVENTIONS="torch"))
    tuples = _by_status(_run(cache_dir, "lc_ext_tuples", "ext-outputs-none"))
    assert not tuples.get("failed") and any(r["check"] == "entropy.value" for r in tuples["passed"])
    lossy = _by_status(_run(cache_dir, "lc_ext_lossy", "ext-outputs-none"))
    assert {r["check"] for r in lossy["failed"]} == {"lse.value"}
