"""The failure diagnosis names the parameter whose values separate failing (case, dtype) pairs from passing."""
from conformance.corpus.casefile import Case
from conformance.report.diagnose import explain


def make_case(case_id, **kwargs):
    return Case(id=case_id, function="cross_entropy", kwargs=kwargs,
                inputs={"input": {"shape": [3, 5]}, "target": {"kind": "index"}})


def records_failing(pairs):
    return [{"case": case.full_id, "dtype": dtype, "status": "failed"} for case, dtype in pairs]


def test_a_parameter_value_that_never_fails_beside_one_that_always_does_is_named():
    smoothed = [make_case(f"s{k}", label_smoothing=0.1) for k in range(12)]
    plain = [make_case(f"p{k}", label_smoothing=0.0) for k in range(12)]
    selected = [(case, ["float32"]) for case in smoothed + plain]
    sentences = explain(selected, records_failing((case, "float32") for case in smoothed))
    assert sentences["cross_entropy"][0] == "label_smoothing: 0.0 fails 0 of 12, 0.1 fails 12 of 12"


def test_values_seen_on_few_pairs_do_not_clear_a_parameter():
    failing = [make_case(f"f{k}", reduction="mean") for k in range(12)]
    rare = [make_case("r", reduction="sum")]  # 1 pair: too few to say 'sum' is fine
    selected = [(case, ["float32"]) for case in failing + rare]
    sentences = explain(selected, records_failing((case, "float32") for case in failing))
    assert not any(line.startswith("reduction:") for line in sentences["cross_entropy"])


def test_no_failure_no_sentence():
    selected = [(make_case("a"), ["float32"])]
    assert explain(selected, []) == {}
