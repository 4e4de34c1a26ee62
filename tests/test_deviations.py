"""Xfail files: loading, validation messages, matching, and how an entry changes a check's status."""
import textwrap

import pytest

from conformance.corpus.casefile import CaseFileError
from conformance.verdict.deviations import (DeviationEntry, DeviationSet, default_deviation_paths, load_deviation_file,
                                            status_through)

VALID = """\
backend: torch
entries:
  - id: "kl_div/zero-target-inf-input*"
    dtypes: [float16, bfloat16]
    checks: ["nonfinite", "grad_input.*"]
    reason: "torch returns NaN for 0 * log(0/q) when q is infinite"
    spec: "docs/spec-notes.md#kl_div"
    strict: true
  - id: "kl_div/*"
    reason: "every kl_div case deviates in some other way"
    strict: false
  - id: "cross_entropy/NC*-mean-ls=*"
    checks: ["value"]
    reason: "label smoothing is summed in a different order"
"""


def write(tmp_path, text, name="torch.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(CaseFileError) as info:
        load_deviation_file(path)
    message = str(info.value)
    assert str(path) in message  # every message names the file
    return message


def one_entry(body):
    """A file with a single entry whose keys are the lines of ``body`` (indented under '- ')."""
    lines = textwrap.dedent(body).strip().splitlines()
    return "entries:\n  - " + "\n    ".join(lines) + "\n"


# loading


def test_valid_file_loads_every_field(tmp_path):
    path = write(tmp_path, VALID)
    entries = load_deviation_file(path)
    assert [e.id for e in entries] == ["kl_div/zero-target-inf-input*", "kl_div/*", "cross_entropy/NC*-mean-ls=*"]
    first = entries[0]
    assert first.dtypes == ("float16", "bfloat16")
    assert first.checks == ("nonfinite", "grad_input.*")
    assert first.spec == "docs/spec-notes.md#kl_div"
    assert first.strict is True and first.source == str(path)
    assert entries[1] == DeviationEntry(id="kl_div/*", reason="every kl_div case deviates in some other way",
                                    strict=False, source=str(path))
    assert entries[2].strict is True and entries[2].dtypes is None and entries[2].spec is None


def test_file_with_no_entries_is_empty(tmp_path):
    assert load_deviation_file(write(tmp_path, "backend: torch\nentries: []\n")) == []


def test_entries_are_hashable_and_frozen():
    entry = DeviationEntry(id="a/*", reason="a long enough reason")
    assert {entry: 1}[entry] == 1
    with pytest.raises(AttributeError):
        entry.strict = False


# matching


def test_match_with_dtype_and_check_filters(tmp_path):
    xfails = DeviationSet(load_deviation_file(write(tmp_path, VALID)))
    special = xfails.entries[0]
    assert xfails.match("kl_div/zero-target-inf-input-sum", "float16", "nonfinite") is special
    assert xfails.match("kl_div/zero-target-inf-input-sum", "bfloat16", "grad_input.value") is special
    # another dtype or check falls through to the catch-all kl_div entry
    assert xfails.match("kl_div/zero-target-inf-input-sum", "float32", "nonfinite") is xfails.entries[1]
    assert xfails.match("kl_div/zero-target-inf-input-sum", "float16", "value") is xfails.entries[1]


def test_match_without_filters_covers_every_dtype_and_check(tmp_path):
    xfails = DeviationSet(load_deviation_file(write(tmp_path, VALID)))
    for dtype in ("float64", "float32", "float16", "bfloat16"):
        for check in ("shape", "dtype", "nonfinite", "value", "grad_input.value"):
            assert xfails.match("kl_div/batchmean", dtype, check) is xfails.entries[1]


def test_match_checks_filter_only(tmp_path):
    xfails = DeviationSet(load_deviation_file(write(tmp_path, VALID)))
    assert xfails.match("cross_entropy/NCd1-mean-ls=0.1", "float32", "value") is xfails.entries[2]
    assert xfails.match("cross_entropy/NCd1-mean-ls=0.1", "float32", "grad_input.value") is None
    assert xfails.match("cross_entropy/NCd1-sum-ls=0.1", "float32", "value") is None


def test_match_is_exact_on_the_id_pattern():
    xfails = DeviationSet([DeviationEntry(id="nll_loss/N-mean", reason="a long enough reason")])
    assert xfails.match("nll_loss/N-mean", "float32", "value") is not None
    assert xfails.match("nll_loss/N-mean-weighted", "float32", "value") is None  # no implicit trailing *
    assert xfails.match("NLL_LOSS/N-mean", "float32", "value") is None  # case-sensitive on every platform


def test_first_matching_entry_wins_in_file_order():
    broad = DeviationEntry(id="softmax/*", reason="broad entry listed first")
    narrow = DeviationEntry(id="softmax/large-*", reason="narrow entry listed second", strict=False)
    assert DeviationSet([broad, narrow]).match("softmax/large-inputs", "float16", "value") is broad
    assert DeviationSet([narrow, broad]).match("softmax/large-inputs", "float16", "value") is narrow


def test_a_conforming_entry_stops_an_included_deviation_and_keeps_the_status(tmp_path):
    write(tmp_path, "backend: torch\nentries:\n  - id: 'nll_loss/*'\n    reason: eager torch deviates here\n",
          "eager.yaml")
    path = write(tmp_path, "backend: compiled\ninclude: [eager.yaml]\nentries:\n  - id: 'nll_loss/a'\n"
                 "    checks: [raises]\n    conforms: true\n    reason: the compiled function raises as documented\n",
                 "compiled.yaml")
    xfails = DeviationSet(load_deviation_file(path))
    assert xfails.match("nll_loss/a", "float32", "raises").conforms is True
    assert xfails.deviation("nll_loss/a", "float32", "raises") is None
    assert xfails.deviation("nll_loss/a", "float32", "value").reason == "eager torch deviates here"
    records = [{"case": "nll_loss/a", "dtype": "float32", "check": "raises", "status": status}
               for status in ("passed", "failed")]
    assert [r["status"] for r in xfails.apply(records)] == ["passed", "failed"]
    assert all("reason" not in record for record in records)
    assert status_through("passed", xfails.entries[0]) == "passed"


def test_conforms_must_be_a_boolean(tmp_path):
    path = write(tmp_path, "entries:\n  - id: 'a/*'\n    reason: a long enough reason\n    conforms: 'yes'\n")
    with pytest.raises(CaseFileError, match=r"entries.0.conforms.*must be true or false"):
        load_deviation_file(path)


def test_empty_set_matches_nothing():
    xfails = DeviationSet([])
    assert len(xfails) == 0
    assert xfails.match("softmax/x", "float32", "value") is None
    assert xfails.unmatched(["softmax/x"]) == []


def test_unmatched_lists_stale_patterns(tmp_path):
    xfails = DeviationSet(load_deviation_file(write(tmp_path, VALID)))
    stale = xfails.unmatched(iter(["kl_div/zero-target-inf-input-mean", "softmax/basic"]))
    assert [e.id for e in stale] == ["cross_entropy/NC*-mean-ls=*"]
    assert xfails.unmatched([]) == xfails.entries
    assert xfails.unmatched(["kl_div/zero-target-inf-input", "cross_entropy/NCd2-mean-ls=0.5"]) == []


def test_from_paths_concatenates_in_order(tmp_path):
    first = write(tmp_path, VALID, "a.yaml")
    second = write(tmp_path, one_entry("""
        id: "softmax/*"
        reason: "softmax deviation from the second file"
    """), "b.yaml")
    xfails = DeviationSet.from_paths([first, second])
    assert len(xfails) == 4
    assert xfails.entries[-1].id == "softmax/*" and xfails.entries[-1].source == str(second)
    assert xfails.match("softmax/any", "float32", "value") is xfails.entries[-1]


def test_from_paths_reports_the_bad_file(tmp_path):
    good = write(tmp_path, VALID, "good.yaml")
    bad = write(tmp_path, "entries: {}\n", "bad.yaml")
    with pytest.raises(CaseFileError) as info:
        DeviationSet.from_paths([good, bad])
    assert str(bad) in str(info.value) and "field entries" in str(info.value)


# status_through


STRICT = DeviationEntry(id="a/*", reason="a strict deviation", strict=True)
LENIENT = DeviationEntry(id="a/*", reason="a non-strict deviation", strict=False)


@pytest.mark.parametrize("status, entry, result", [
    ("failed", STRICT, "xfailed"),
    ("failed", LENIENT, "xfailed"),
    ("passed", STRICT, "xpassed"),
    ("passed", LENIENT, "passed"),
    ("skipped", STRICT, "skipped"),
    ("skipped", LENIENT, "skipped"),
    ("failed", None, "failed"),
    ("passed", None, "passed"),
    ("skipped", None, "skipped"),
])
def test_apply_xfail_truth_table(status, entry, result):
    assert status_through(status, entry) == result


# malformed files: each message names the file, the entry and the field


def test_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(CaseFileError) as info:
        load_deviation_file(path)
    assert str(path) in str(info.value) and "cannot be read" in str(info.value)


def test_invalid_yaml_gives_line_and_column(tmp_path):
    message = load_error(tmp_path, "entries:\n  - id: \"a/*\n    reason: [unclosed\n")
    assert "is not valid YAML at line" in message
    assert "column" in message


def test_invalid_yaml_position_is_accurate(tmp_path):
    message = load_error(tmp_path, "entries:\n  - id: a\n   bad: indentation\n")
    assert "is not valid YAML at line 3, column" in message


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_document_must_be_a_mapping(tmp_path, text):
    assert "must be a mapping with the key 'entries'" in load_error(tmp_path, text)


def test_unknown_top_level_key(tmp_path):
    message = load_error(tmp_path, "backend: torch\nentrys: []\n")
    assert "unknown top-level keys ['entrys']" in message and "accepted: backend, entries" in message


def test_backend_must_be_a_string(tmp_path):
    message = load_error(tmp_path, "backend: [torch]\nentries: []\n")
    assert "field backend" in message and "must be a non-empty string" in message


@pytest.mark.parametrize("text", ["backend: torch\n", "entries: {}\n", "entries:\n"])
def test_entries_must_be_a_list(tmp_path, text):
    message = load_error(tmp_path, text)
    assert "field entries" in message and "must be a list" in message


def test_entry_must_be_a_mapping(tmp_path):
    message = load_error(tmp_path, "entries:\n  - kl_div/*\n")
    assert "case '#0'" in message and "field entries.0" in message and "must be a mapping" in message


def test_missing_id_names_the_entry_by_index(tmp_path):
    text = VALID + '  - reason: "an entry with no id at all"\n'
    message = load_error(tmp_path, text)
    assert "case '#3'" in message and "field entries.3.id" in message and "required key 'id'" in message


def test_missing_reason(tmp_path):
    message = load_error(tmp_path, one_entry('id: "softmax/*"'))
    assert "case 'softmax/*'" in message and "field entries.0.reason" in message and "'reason' is missing" in message


def test_reason_too_short(tmp_path):
    message = load_error(tmp_path, one_entry('id: "softmax/*"\nreason: "flaky"'))
    assert "case 'softmax/*'" in message and "field entries.0.reason" in message
    assert "at least 10 characters" in message and "'flaky'" in message


def test_unknown_entry_key(tmp_path):
    message = load_error(tmp_path, one_entry('id: "softmax/*"\nreason: "a long enough reason"\ndtype: [float16]'))
    assert "case 'softmax/*'" in message and "field entries.0" in message
    assert "unknown keys ['dtype']" in message and "accepted: id, dtypes, checks" in message


@pytest.mark.parametrize("key, value", [("id", "42"), ("reason", "[a, b]"), ("spec", "3"), ("spec", '""')])
def test_string_fields_have_the_right_type(tmp_path, key, value):
    fields = {"id": '"softmax/*"', "reason": '"a long enough reason"', key: value}
    message = load_error(tmp_path, one_entry("\n".join(f"{k}: {v}" for k, v in fields.items())))
    name = "#0" if key == "id" else "softmax/*"
    assert f"case '{name}'" in message and f"field entries.0.{key}" in message
    assert "must be a non-empty string" in message


def test_strict_must_be_a_boolean(tmp_path):
    message = load_error(tmp_path, one_entry('id: "softmax/*"\nreason: "a long enough reason"\nstrict: "no"'))
    assert "case 'softmax/*'" in message and "field entries.0.strict" in message and "true or false" in message


def test_unknown_dtype_lists_the_accepted_ones(tmp_path):
    message = load_error(tmp_path, one_entry('id: "softmax/*"\nreason: "a long enough reason"\n'
                                             'dtypes: [float16, half]'))
    assert "case 'softmax/*'" in message and "field entries.0.dtypes.1" in message
    assert "unknown dtype 'half'" in message and "accepted: float64, float32, float16, bfloat16" in message


@pytest.mark.parametrize("key, value", [("dtypes", "float16"), ("dtypes", "[]"), ("checks", "value"),
                                        ("checks", "[]"), ("checks", "[value, 3]")])
def test_list_fields_must_be_non_empty_lists_of_strings(tmp_path, key, value):
    message = load_error(tmp_path, one_entry(f'id: "softmax/*"\nreason: "a long enough reason"\n{key}: {value}'))
    assert "case 'softmax/*'" in message and f"field entries.0.{key}" in message
    assert "must be a non-empty list" in message


def test_duplicate_entries(tmp_path):
    text = VALID + textwrap.indent(textwrap.dedent("""\
        - id: "kl_div/zero-target-inf-input*"
          dtypes: [bfloat16, float16]
          checks: ["grad_input.*", "nonfinite"]
          reason: "the same entry again, in another order"
    """), "  ")
    message = load_error(tmp_path, text)
    assert "case 'kl_div/zero-target-inf-input*'" in message and "field entries.3" in message
    assert "duplicate of entry #0" in message


def test_same_id_with_other_filters_is_not_a_duplicate(tmp_path):
    text = VALID + textwrap.indent(textwrap.dedent("""\
        - id: "kl_div/zero-target-inf-input*"
          dtypes: [float32]
          reason: "the same pattern for another dtype"
    """), "  ")
    assert len(load_deviation_file(write(tmp_path, text))) == 4


# versions


@pytest.mark.parametrize("specifier, version, covered", [
    (">2.5.1", "2.13.0+cpu", True), (">2.5.1", "2.5.1", False), (">2.5.1", "2.5.1+cu121", False),
    (">=2.6,<2.14", "2.14.1", False), (">=2.6,<2.14", "2.6.0", True), (">2.5.1", "2.15.0.dev20261101", True),
    (">2.5.1", None, True), (">2.5.1", "not a version", True), (None, "1.0", True)])
def test_an_entry_with_versions_covers_only_those_backend_versions(specifier, version, covered):
    entry = DeviationEntry(id="nll_loss/*", reason="changed between releases", versions=specifier)
    assert entry.matches("nll_loss/x", "float32", "raises", version) is covered
    assert (DeviationSet([entry]).match("nll_loss/x", "float32", "raises", version) is entry) is covered


def test_versions_is_loaded_and_a_bad_specifier_names_the_field(tmp_path):
    (entry,) = load_deviation_file(write(tmp_path, one_entry('id: "a/*"\nreason: "changed in 2.6 or later"\n'
                                                     'versions: ">2.5.1"')))
    assert entry.versions == ">2.5.1"
    for bad in ('"two point five"', "3", "[1]"):
        message = load_error(tmp_path, one_entry(f'id: "a/*"\nreason: "changed in 2.6 or later"\nversions: {bad}'))
        assert "field entries.0.versions" in message and "PEP 440 version specifier" in message


def test_every_entry_of_the_shipped_xfail_files_matches_a_case_of_the_corpus_or_the_huge_tier():
    """A default run prints no stale-entry warning: the huge tier's entries match its cases, not the corpus's."""
    from conformance.huge.cases import case_ids
    from conformance.run.session import RunOptions, Session

    session = Session(RunOptions(jobs=0, cache_dir=None))
    for backend in ("torch", "torch-compile"):
        paths = default_deviation_paths(backend)
        assert paths, backend
        session.runner.deviations = DeviationSet.from_paths(paths)
        assert session.warnings(case_ids()) == [], backend
