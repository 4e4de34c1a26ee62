"""One record per function (conformance/spec/): the stages read signatures from it, the schema agrees with it, a
function added by a record alone runs end to end against the oracle, and the names a backend declares are checked."""
import json
import textwrap

import numpy as np
import pytest
import yaml

import oracle
from conformance import spec
from conformance.backends import BackendLoadError, load_backend
from conformance.corpus.casefile import CASES_DIR, SCHEMA_PATH
from conformance.run.session import RunOptions, Session
from conformance.verdict.results import FAILING


def test_the_schema_file_lists_the_functions_and_tensors_of_the_built_in_records():
    schema = json.loads(SCHEMA_PATH.read_text())["$defs"]
    assert tuple(schema["function"]["enum"]) == spec.ALL_FUNCTIONS == spec.function_names()
    tensors = {name for function in spec.ALL_FUNCTIONS for name in spec.get(function).tensor_names}
    assert set(schema["inputs"]["properties"]) == tensors


def test_a_record_says_the_call_order_and_the_checks():
    record = spec.get("cross_entropy")
    arrays = {"weight": np.ones(3), "target": np.zeros(2), "input": np.zeros((2, 3))}
    positional, keyword = record.call_arguments(arrays)
    assert [a.shape for a in positional] == [(2, 3), (2,)] and list(keyword) == ["weight"]
    assert record.checks == ("value", "grad_input", "grad_target", "z_loss", "lse", "target_logprob", "entropy")
    assert spec.get("nll_loss").checks == ("value", "grad_input")  # class indices have no gradient
    assert spec.get("kl_div").oracle_functions() == (oracle.kl_div, oracle.kl_div_vjp)


# --- a toy function, added through a record alone ----------------------------------------------------------------

def scaled_softmax(x, dim=None, scale=1.0, **options):
    """softmax(scale * x): exact for a power-of-two scale, so the oracle's own softmax certifies it."""
    return oracle.softmax(np.asarray(x, dtype=np.float64) * scale, dim, **options)


def scaled_softmax_vjp(x, grad_output, dim=None, scale=1.0, **options):
    gradients = oracle.softmax_vjp(np.asarray(x, dtype=np.float64) * scale, grad_output, dim, **options)
    value, scale_of = gradients.input
    return oracle.Gradients(oracle.Evaluation(value * scale, scale_of * abs(scale)))


TOY = spec.FunctionSpec(
    "scaled_softmax", tensors=(spec.Tensor("input"),), keywords={"dim": None, "scale": 1.0}, module="Softmax",
    kind="softmax", oracle=scaled_softmax, oracle_vjp=scaled_softmax_vjp,
    derive_axes=lambda kwargs, arrays: {"shape": "2-dim", "dim": "explicit"}, build_case=None,
    probe=lambda: ({"input": np.zeros((2, 3))}, {"dim": 1}, np.ones((2, 3))),
    axes={"shape": ("2-dim",), "dim": ("explicit",)})
CASES = """
    function: scaled_softmax
    dtypes: [float64, float32]  # the kernel is torch's softmax, whose 16-bit backward rounds y (a torch defect)
    cases:
      - matrix:
          id: "toy-{shape}-scale={scale}"
          base: {kwargs: {dim: 1}}
          axes:
            shape: {"3x7": {inputs: {input: {shape: [3, 7], scale: 3}}},
                    "2x1025": {inputs: {input: {shape: [2, 1025], scale: 3}}}}
            scale: [2.0, 0.5]
"""
KERNELS = '''
import torch

def scaled_softmax(input, dim=None, scale=1.0):
    return torch.softmax(input * scale, dim)
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy registered, its case file, a budget file that gives it softmax's budgets, and a kernel for it."""
    spec.register(TOY)
    (tmp_path / "toy.yaml").write_text(textwrap.dedent(CASES))
    budgets = yaml.safe_load((CASES_DIR / "tolerances.yaml").read_text())
    budgets["budgets"]["scaled_softmax"] = budgets["budgets"]["softmax"]
    budgets["accumulation"]["sums"]["scaled_softmax"] = budgets["accumulation"]["sums"]["softmax"]
    (tmp_path / "tolerances.yaml").write_text(yaml.safe_dump(budgets))
    (tmp_path / "lc_toy_kernels.py").write_text(KERNELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    spec.unregister("scaled_softmax")


def test_a_toy_function_added_by_its_record_alone_runs_end_to_end_against_the_oracle(toy):
    options = RunOptions(backend="lc_toy_kernels", case_paths=(toy / "toy.yaml",), tolerances=toy / "tolerances.yaml",
                         jobs=0, xfail_paths=(), cache_dir=toy / "cache")
    records, _ = Session(options).run()
    checks = {(r["case"], r["dtype"], r["check"]): r for r in records}
    assert len({(case, dtype) for case, dtype, _ in checks}) == 8  # 4 cases in 2 dtypes
    assert not [r for r in records if r["status"] in FAILING]
    value = checks[("scaled_softmax/toy-3x7-scale=2.0", "float64", "value")]
    assert value["status"] == "passed" and value["n"] == 21 and value["error_u"] < 4
    assert checks[("scaled_softmax/toy-2x1025-scale=0.5", "float32", "grad_input.value")]["grade"]


def test_a_wrong_toy_kernel_fails_against_the_oracle(toy):
    (toy / "lc_toy_wrong.py").write_text(KERNELS.replace("input * scale", "input"))  # forgets the scale
    options = RunOptions(backend="lc_toy_wrong", case_paths=(toy / "toy.yaml",), tolerances=toy / "tolerances.yaml",
                         jobs=0, xfail_paths=(), cache_dir=toy / "cache", dtypes=("float64",))
    records, _ = Session(options).run()
    assert {r["check"] for r in records if r["status"] == "failed"} >= {"value", "grad_input.value"}


# --- what a backend declares is checked ---------------------------------------------------------------------------

def test_a_misspelt_feature_is_a_load_error(tmp_path, monkeypatch):
    (tmp_path / "lc_misspelt.py").write_text(
        "import torch.nn.functional as F\ncross_entropy = F.cross_entropy\nUNSUPPORTED_FEATURES = ('weights',)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BackendLoadError, match=r"unknown features \['weights'\]"):
        load_backend("lc_misspelt")


def test_an_opt_in_feature_is_unsupported_unless_the_backend_declares_it(monkeypatch):
    from conformance import backends

    monkeypatch.setattr(backends, "OPT_IN", ("weight",))
    plain, declared = backends.Capabilities(), backends.Capabilities(supported=frozenset({"weight"}))
    assert plain.missing({"weight", "reduction:mean"}) == ["weight"]
    assert declared.missing({"weight", "reduction:mean"}) == []


def test_a_budget_override_may_match_derived_axes_and_features(tmp_path):
    from conformance.verdict.tolerances import Tolerances

    text = (CASES_DIR / "tolerances.yaml").read_text().replace("\noverrides:\n", textwrap.dedent("""
        overrides:
          - {function: softmax, check: value, when: {shape: k-dim}, budgets: {float32: 40}, reason: an axis}
          - {function: nll_loss, check: value, when: {feature: weight}, budgets: {float32: 50}, reason: a feature}
        """), 1)
    assert "reason: an axis" in text
    path = tmp_path / "tolerances.yaml"
    path.write_text(text)
    tolerances = Tolerances.load(path)
    k_dim = {"axes": {"shape": "k-dim"}, "features": frozenset()}
    assert tolerances.chain("softmax", "value", "float32", {}, k_dim) == 40
    assert tolerances.chain("softmax", "value", "float32", {}, {"axes": {"shape": "2-dim"}}) == 4
    weighted = {"axes": {}, "features": frozenset({"weight", "reduction:mean"})}
    assert tolerances.chain("nll_loss", "value", "float32", {}, weighted) == 50
    assert tolerances.chain("nll_loss", "value", "float32", {}, None) == 2
