"""Pairwise coverage of the corpus (docs/case-format.md, "Pairwise coverage") and the features a case exercises,
derived from its inputs."""
import textwrap

import numpy as np

from conformance.corpus.casefile import load_cases, load_file
from conformance.corpus.coverage import axis_pairs, covering_rows, describe, impossible, missing_pairs
from conformance.spec.features import case_axes, required_features
from conformance.inputs.generate import make_inputs, rounded_inputs


def test_the_default_corpus_covers_every_pair_of_parameter_values():
    missing = missing_pairs([case for case in load_cases() if "large" not in case.tags])
    assert {function: [describe(pair) for pair in pairs] for function, pairs in missing.items() if pairs} == {}


def test_a_corpus_without_a_pair_is_named(tmp_path):
    path = tmp_path / "ce.yaml"
    path.write_text(textwrap.dedent("""
        function: cross_entropy
        dtypes: [float32]
        cases:
          - id: mean-weighted
            kwargs: {reduction: mean}
            inputs: {input: {shape: [3, 4]}, target: {kind: index}, weight: {dist: uniform, low: 0.5}}
          - id: none-unweighted-probabilities
            kwargs: {reduction: none}
            inputs: {input: {shape: [3, 4]}, target: {kind: probabilities}}
    """))
    missing = {describe(pair) for pair in missing_pairs(load_file(path))["cross_entropy"]}
    assert "reduction=none with target=index" in missing  # the summed-scalar bug of 'none' would pass
    assert "reduction=mean with weight=none" in missing
    assert "reduction=mean with weight=positive" not in missing


def test_impossible_pairs_are_not_asked_for():
    pairs = axis_pairs("cross_entropy")
    assert (("ignore_index", "class"), ("target", "probabilities")) not in pairs
    assert impossible(("target", "probabilities"), ("ignore_index", "class"))
    assert (("reduction", "none"), ("target", "index")) in pairs


def test_covering_rows_cover_every_pair_and_respect_the_impossible_ones():
    pairs = sorted(axis_pairs("cross_entropy"))
    rows = covering_rows("cross_entropy", pairs)
    covered = {tuple(sorted((a, b))) for row in rows for a in row.items() for b in row.items() if a[0] < b[0]}
    assert set(pairs) <= covered
    assert not any(impossible(a, b) for row in rows for a in row.items() for b in row.items() if a != b)
    assert len(rows) < 60  # a covering array, not the cross product (thousands)


def axes_of(text, tmp_path, dtype="float32"):
    path = tmp_path / "case.yaml"
    path.write_text(textwrap.dedent(text))
    (case,) = load_file(path)
    arrays = rounded_inputs(make_inputs(case), dtype)
    return case_axes(case, arrays, dtype), required_features(case, arrays, dtype)


def test_axes_and_features_come_from_the_inputs_themselves(tmp_path):
    axes, features = axes_of("""
        function: cross_entropy
        cases:
          - id: c
            kwargs: {size_average: false, ignore_index: 2, label_smoothing: 0.2}
            grad_output: negative
            inputs: {input: {shape: [4, 5, 3]}, target: {kind: index}, weight: {dist: uniform, negative: 0.4}}
    """, tmp_path)
    assert axes == {"dtype": "float32", "grad_output": "negative", "shape": "k-dim", "reduction": "sum",
                    "weight": "negative", "ignore_index": "class", "label_smoothing": "partial", "target": "index"}
    assert {"legacy_reduction", "shape:k-dim", "weight", "ignore_index_class", "label_smoothing",
            "reduction:sum"} <= features


def test_a_weight_that_rounds_to_zero_counts_as_zeros_in_that_dtype(tmp_path):
    text = """
        function: nll_loss
        cases:
          - id: c
            inputs: {input: {shape: [2, 3]}, target: {kind: index}, weight: {values: [1, 1.0e-10, 2]}}
    """
    assert axes_of(text, tmp_path, "float32")[0]["weight"] == "positive"
    assert axes_of(text, tmp_path, "float16")[0]["weight"] == "zeros"  # 1e-10 is 0 in float16


def test_row_patterns_place_the_maximum_and_the_targets(tmp_path):
    path = tmp_path / "ce.yaml"
    path.write_text(textwrap.dedent("""
        function: cross_entropy
        cases:
          - id: last
            inputs:
              input: {shape: [2, 70], peak: last, neg_inf_leading: 64}
              target: {kind: index, positions: [0, -1], ignore: 0.5, ignore_pattern: leading}
          - id: confident
            inputs: {input: {shape: [3, 9], confident: 0.999}, target: {kind: index}}
    """))
    last, confident = load_file(path)
    arrays = make_inputs(last)
    assert (arrays["input"].argmax(axis=1) == 69).all() and np.isneginf(arrays["input"][:, :64]).all()
    assert arrays["target"].tolist() == [-100, 69]  # the first row ignored, the second at the last class
    arrays = make_inputs(confident)
    x, t = arrays["input"], arrays["target"]
    probabilities = np.exp(x - x.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    assert np.allclose(probabilities[np.arange(3), t], 0.999, rtol=1e-12)
