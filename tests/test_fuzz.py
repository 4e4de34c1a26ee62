"""The fuzzer: strategies, found-case files (exact round trip), known-deviation rules, the command line, and a
deliberately broken backend found, shrunk and written as a case that ``run`` then fails on."""
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.corpus.casefile import CaseFileError, case_files, load_file
from conformance.cli import main
from conformance.fuzz import engine, known
from conformance.fuzz.calls import calls
from conformance.fuzz.found import case_id, choose_path, literal, render, verify_round_trip, write_found_case
from conformance.fuzz.invalid import defect_strategies
from conformance.fuzz.strategies import DrawnCall
from conformance.spec.names import FUNCTIONS
from conformance.run.session import RunOptions, Session

CI = settings(max_examples=40, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
MUTANT = "conformance.mutants.numerics:label_smoothing_over_c_minus_1"
RECORD = {"check": "value", "status": "failed", "function": "softmax", "dtype": "float32", "message": "a\nb"}


# ---- found-case files -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, written", [
    (0.5, 0.5), (-3.0, -3.0), (0.1, 0.1), (-0.0, -0.0), (1 / 3, (1 / 3).hex()), (1e-300, (1e-300).hex()),
    (65504.0, 65504.0), (2.0**-24, (2.0**-24).hex()), (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan")])
def test_literal_writes_short_decimals_as_numbers_and_the_rest_exactly(value, written):
    got = literal(value)
    assert got == written or (isinstance(got, float) and math.copysign(1, got) == math.copysign(1, written))
    if isinstance(got, str) and "0x" in got:
        assert float.fromhex(got) == value


@CI
@given(call=calls(FUNCTIONS, invalid=True))
def test_every_drawn_call_round_trips_through_its_case_file_bit_for_bit(call):
    with tempfile.TemporaryDirectory() as directory:
        path = choose_path(call, directory)
        write_found_case(call, dict(RECORD, function=call.function, dtype=call.dtype), path, {"Backend": "x"})
        loaded = verify_round_trip(path, call)  # raises unless inputs, kwargs, form, dtype, seed all agree
        assert loaded.full_id == f"{call.function}/{case_id(call)}"
        assert (loaded.grad, loaded.expect_error) == (call.expect_error is None, call.expect_error)


def softmax_call(values, **kwargs):
    return DrawnCall("softmax", "float32", {"input": np.array(values, dtype=np.float64)}, kwargs, seed=3)


def test_the_file_names_the_failing_check_and_message_in_comments(tmp_path):
    text = render(softmax_call([[1.0, -math.inf]], dim=1), RECORD, {"Backend": "torch on cpu"})
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert any("Failing check: value (failed) of softmax in float32" in line for line in comments)
    assert "#   a" in comments and "#   b" in comments and "# Backend: torch on cpu" in comments
    document = yaml.safe_load(text)
    assert document["cases"][0]["inputs"]["input"]["values"] == [[1.0, "-inf"]]
    assert document["cases"][0]["seed"] == 3 and document["cases"][0]["dtypes"] == ["float32"]


def test_an_existing_file_with_another_case_is_never_overwritten(tmp_path):
    call = softmax_call([1.0, 2.0])
    first = choose_path(call, tmp_path)
    first.write_text("# someone else's file\nfunction: softmax\n", encoding="utf-8")
    second = choose_path(call, tmp_path)
    assert second != first and second.name.endswith("-1.yaml")
    write_found_case(call, RECORD, second, {})
    assert first.read_text(encoding="utf-8").startswith("# someone else's file")
    assert choose_path(call, tmp_path) == second  # the same case again: the same file, reused


def test_found_cases_in_a_subdirectory_of_the_corpus_are_loaded_by_default(tmp_path):
    (tmp_path / "found").mkdir()
    path = tmp_path / "found" / "softmax-x.yaml"
    write_found_case(softmax_call([0.5]), RECORD, path, {})
    assert path in case_files([tmp_path])


@st.composite
def damaged_documents(draw):
    """A found-case document with one field deleted or replaced by an arbitrary value."""
    document = yaml.safe_load(render(draw(calls(FUNCTIONS)), RECORD, {}))
    node, keys = document, []
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node, key=str) if isinstance(node, dict) else range(len(node))))
        keys.append(key)
        node = node[key]
    if not keys:
        keys, node = ["function"], document["function"]
    parent = document
    for key in keys[:-1]:
        parent = parent[key]
    junk = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.lists(st.integers())
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[keys[-1]]
    else:
        parent[keys[-1]] = draw(junk | st.dictionaries(st.text(max_size=3), junk, max_size=2))
    return document


@settings(CI, max_examples=60)
@given(document=damaged_documents())
def test_a_damaged_found_case_loads_or_raises_a_casefileerror(document):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "damaged.yaml"
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        try:
            load_file(path)
        except CaseFileError as error:
            assert str(error).startswith(f"{path}: ") and "\n" not in str(error)


# ---- strategies -------------------------------------------------------------------------------------------------


EXPECTED_DEFECTS = {
    "softmax": {"dim-out-of-range", "integer-input"},
    "kl_div": {"shape-mismatch", "unknown-reduction", "legacy-not-bool", "integer-input"},
    "nll_loss": {"target-out-of-range", "batch-mismatch", "weight-size", "unknown-reduction", "no-classes",
                 "integer-input", "legacy-not-bool", "target-dtype"},
}
EXPECTED_DEFECTS["cross_entropy"] = EXPECTED_DEFECTS["nll_loss"] | {"label-smoothing-range",
                                                                    "ignore-index-with-probabilities"}


@pytest.mark.parametrize("function", sorted(EXPECTED_DEFECTS))
def test_each_defect_of_the_invalid_family_draws_calls_with_that_defect(function):
    strategies = defect_strategies(function, "float16")
    assert set(strategies) == EXPECTED_DEFECTS[function]
    for name, strategy in strategies.items():
        check_draws(strategy, function, name)


def check_draws(strategy, function, defect):
    @settings(CI, max_examples=5)
    @given(call=strategy)
    def check(call):
        assert call.function == function and call.dtype == "float16" and call.expect_error
        assert call.defect.startswith(defect)

    check()


# ---- known deviations -------------------------------------------------------------------------------------------


def explained(call, check):
    rule = known.explain(known.TORCH_RULES, call, {"check": check})
    return rule.name if rule else None


def test_kl_div_zero_target_on_an_infinite_input_is_explained_only_for_its_check():
    call = DrawnCall("kl_div", "float32", {"input": np.array([-math.inf, 0.0]), "target": np.array([0.0, 0.5])}, {})
    assert explained(call, "nonfinite") == "kl-zero-target-infinite-input"
    assert explained(call, "value") is None
    call.arrays["target"] = np.array([0.5, 0.5])  # a positive target on -inf: +inf in both, nothing to explain
    assert explained(call, "nonfinite") is None


def test_a_zero_weight_on_a_neg_inf_target_logit_is_explained_and_a_positive_weight_is_not():
    arrays = {"input": np.array([[-math.inf, 1.0, 0.0]]), "target": np.array([0]), "weight": np.array([0.0, 1.0, 1.0])}
    call = DrawnCall("cross_entropy", "float64", arrays, {})
    assert explained(call, "nonfinite") == "zero-coefficient-on-infinite-log"
    call.arrays["weight"] = np.array([2.0, 1.0, 1.0])
    assert explained(call, "nonfinite") is None
    call.kwargs = {"label_smoothing": 0.1}  # smoothing reads the -inf entry, with coefficient 0.1 * 2 / 3: inf
    assert explained(call, "nonfinite") is None


def test_negative_label_smoothing_is_a_declared_deviation_of_the_raises_check():
    arrays = {"input": np.zeros((2, 3)), "target": np.array([0, 1])}
    call = DrawnCall("cross_entropy", "float32", arrays, {"label_smoothing": -0.1}, expect_error="x")
    assert explained(call, "raises") == "label-smoothing-below-zero"
    call.kwargs = {"label_smoothing": 1.5}
    assert explained(call, "raises") is None


def test_the_findings_declared_since_are_explained_narrowly():
    """The calls of the declared cases/found files, and neighbours that must stay findings."""
    weight = {"input": np.zeros((1, 1, 1)), "target": np.zeros((1, 1), dtype=np.int64), "weight": np.ones((1, 1))}
    call = DrawnCall("nll_loss", "float64", weight, {}, expect_error="WeightSizeError")
    assert explained(call, "raises") == "weight-any-shape-k-dim"
    call.arrays.update(input=np.zeros((1, 1)), target=np.zeros(1, dtype=np.int64))  # (N, C): torch raises here
    assert explained(call, "raises") is None
    subnormal = DrawnCall("kl_div", "float16", {"input": np.array(0.0), "target": np.array(-16.0)},
                          {"log_target": True})
    assert explained(subnormal, "value") == explained(subnormal, "grad_target.value") == "kl-log-target-exp-below-normal"
    subnormal.arrays["target"] = np.array(-9.0)  # exp(-9) = 1.2e-4 is a float16 normal: no excuse
    assert explained(subnormal, "value") is None
    underflow = DrawnCall("kl_div", "float64", {"input": np.array([0.0, -math.inf]),
                                                "target": np.array([-0.0, -1024.0])}, {"log_target": True})
    assert explained(underflow, "nonfinite") == "kl-log-target-exp-below-normal"
    overflow = DrawnCall("kl_div", "float16", {"input": np.zeros(4), "target": np.array([0.0, 0.0, 0.0, 8192.0])}, {})
    assert explained(overflow, "nonfinite") == "kl-intermediate-overflow"
    overflow.arrays["target"] = np.array([0.0, 0.0, 0.0, 4096.0])  # 4096 log 4096 = 34070 fits in float16
    assert explained(overflow, "nonfinite") is None
    top = np.zeros((3, 5))
    top[1:, 4] = np.finfo(np.float64).max
    rows = DrawnCall("cross_entropy", "float64", {"input": top, "target": np.zeros(3, dtype=np.int64)}, {})
    assert explained(rows, "nonfinite") == "intermediate-overflow"  # the sum of two row losses near 1.8e308


def test_known_rules_apply_to_torch_based_backends_only():
    assert known.rules_for("torch") == known.rules_for(MUTANT) == known.TORCH_RULES
    assert known.rules_for("my_kernels.conformance") == () and known.rules_for("torch", "none") == ()
    assert known.rules_for("my_kernels", "torch") == known.TORCH_RULES
    assert all(rule.spec.startswith("docs/spec-notes.md#") and len(rule.reason) > 30 for rule in known.TORCH_RULES)


# ---- profiles, database, command line ---------------------------------------------------------------------------


def test_profiles_and_the_default_database_location(monkeypatch, tmp_path):
    from hypothesis import settings as hypothesis_settings

    names = engine.register_profiles()
    ci = hypothesis_settings.get_profile(names["ci"])
    assert ci.derandomize and ci.database is None and ci.deadline is None and ci.max_examples == 50
    assert hypothesis_settings.get_profile(names["nightly"]).max_examples > 10000
    monkeypatch.setenv("LOSS_CONFORMANCE_CACHE", str(tmp_path / "cache" / "oracle"))
    assert engine.default_database_dir() == tmp_path / "cache" / "hypothesis"


@pytest.mark.parametrize("arguments", [["--max-examples", "0"], ["--minutes", "1", "--max-examples", "3"],
                                       ["--function", "softmax,mse_loss"], ["--profile", "weekly"]])
def test_usage_errors_exit_with_status_2(arguments, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fuzz", *arguments])
    assert exit_info.value.code == 2


def test_a_backend_that_cannot_be_loaded_is_one_line_and_status_2(tmp_path, capsys):
    assert main(["fuzz", "--backend", "no_such_module_for_fuzz", "--out", str(tmp_path), "--no-database"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "no_such_module_for_fuzz" in error and "\n" not in error


ORIGINAL_CHECK = engine.Checker.check


def drawn_hashes(monkeypatch, seed):
    from conformance.fuzz.found import content_hash

    hashes = []
    monkeypatch.setattr(engine.Checker, "check",
                        lambda self, call: hashes.append(content_hash(call)) or ORIGINAL_CHECK(self, call))
    options = engine.FuzzOptions(functions=("softmax", "log_softmax"), max_examples=12, seed=seed,
                                 out_dir=Path("/nonexistent"))
    report = engine.fuzz(options)
    assert not report.findings and report.examples == len(hashes) == 12
    return hashes


def test_the_same_seed_draws_the_same_calls(monkeypatch):
    first = drawn_hashes(monkeypatch, 7)
    assert drawn_hashes(monkeypatch, 7) == first and len(set(first)) > 6
    assert drawn_hashes(monkeypatch, 8) != first


def test_torch_softmax_passes_a_small_derandomized_budget(tmp_path, capsys):
    status = main(["fuzz", "--function", "softmax,log_softmax", "--profile", "ci", "--max-examples", "25",
                   "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0 and not list(tmp_path.iterdir())
    assert "25 examples" in out and "examples/s" in out and "findings: 0" in out


def test_a_spent_time_budget_stops_the_search_before_any_example():
    report = engine.fuzz(engine.FuzzOptions(functions=("softmax",), minutes=1e-9, out_dir=Path("/nonexistent")))
    assert report.stopped_by == "time" and report.examples == 0 and not report.findings


def failures(backend, path):
    options = RunOptions(backend=backend, case_paths=(str(path),), jobs=0, cache_dir=None, xfail_paths=())
    records, _ = Session(options).run()
    return [r for r in records if r["status"] == "failed"]


def test_a_broken_backend_is_found_shrunk_and_written_as_a_case_that_run_fails(tmp_path, capsys, monkeypatch):
    arguments = ["fuzz", "--backend", MUTANT, "--function", "cross_entropy", "--dtype", "float64", "--profile", "ci",
                 "--valid-only", "--out", str(tmp_path / "found"), "--database", str(tmp_path / "db")]
    status = main(arguments)
    out = capsys.readouterr().out
    assert status == 1 and "FINDING cross_entropy" in out
    written = sorted((tmp_path / "found").glob("cross_entropy-*.yaml"))
    assert written and all(f"case: {path}" in out for path in written)
    assert f"reproduce: loss-conformance run --backend {MUTANT} --device cpu --cases {written[0]}" in out
    (case,) = load_file(written[0])
    assert case.dtypes == ("float64",) and case.id.startswith("fuzz-") and case.inputs["input"]["values"]
    assert failures(MUTANT, written[0]) and not failures("torch", written[0])

    # The database keeps the failure: the next run tries it first, and finds the same case at once.
    outcomes = []
    monkeypatch.setattr(engine.Checker, "check",
                        lambda self, call: outcomes.append(ORIGINAL_CHECK(self, call)) or outcomes[-1])
    assert main(arguments) == 1
    assert outcomes[0][0] and set((tmp_path / "found").glob("*.yaml")) == set(written)


def test_the_checker_knows_the_backend_version_that_scopes_xfail_entries():
    import torch

    from conformance.fuzz.engine import Checker, FuzzOptions

    checker = Checker(FuzzOptions(backend="torch"))
    assert checker.runner.version == torch.__version__
    checker.close()


# --- the fuzzer's torch rules and torch's declared deviations say the same ------------------------------------

# Declared deviations that need no rule: the fuzzer never draws their inputs, or their id pattern matches drawn ids.
NOT_DRAWN = {
    "docs/spec-notes.md#kl_div-batchmean-on-a-0-dim-input-and-broadcasting": "broadcast shapes are not drawn",
    "docs/spec-notes.md#kl_div-with-negative-targets-log_targetfalse": "probability targets are drawn in [0, 1]",
    "docs/spec-notes.md#known-torch-layout-defects": "the fuzzer draws contiguous tensors only",
    "docs/spec-notes.md#nan-inputs-and-gradients": "NaN inputs are not drawn",
    "docs/spec-notes.md#reduction-names": "torch's alias 'elementwise_mean' is not drawn",
    "docs/spec-notes.md#target-kinds-and-dtypes": "uint8 and (1,) targets are not drawn",
    "docs/tolerances.md#torch-and-the-relative-check": "function-wide entries (softmax/*): they match drawn ids too",
    "docs/extensions.md#e4-linear-cross-entropy": "the fuzzer draws the five torch functions, not linear_cross_entropy",
    "docs/results.md#determinism-and-batch-invariance": "the fuzzer runs no determinism or batch-invariance check",
}
# Rules of deviations that the fuzzer reaches and no corpus case does.
FUZZER_ONLY = {
    "docs/spec-notes.md#cross-entropy-as-one-coefficient-form": "a zero coefficient of a probability target's "
    "gradient on a -inf log-probability",
}


def test_every_rule_of_the_fuzzer_is_a_declared_torch_deviation_and_the_reverse():
    from conformance.fuzz.known import TORCH_RULES
    from conformance.verdict.deviations import DeviationSet, default_deviation_paths

    declared = {entry.spec for entry in DeviationSet.from_paths(default_deviation_paths("torch")).entries}
    rules = {rule.spec for rule in TORCH_RULES}
    assert rules - declared == set(FUZZER_ONLY)
    assert declared - rules == set(NOT_DRAWN)
