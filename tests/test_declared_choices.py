"""What judged a run, in every report format: the budget set (the summation order, lambda), the accuracy grade,
the layers of checks (the documented semantics; torch's API conventions), and the kernel choices a backend declares
(its gradient written into the logits, float32 losses of 16-bit logits). A declared choice is judged as declared; the
same kernel without the declaration fails."""
import json
import textwrap

import pytest

from conformance.cli import main
from conformance.verdict.results import FAILING
from conformance.run.session import RunOptions, Session

pytest.importorskip("torch")

SUBSET = "NC-mean-w=pos-ii=-100-ls=0.1 or confident-C=6-p=0.9-none or error-NC-target-dtype=int32"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.getbasetemp().parent / "oracle-cache"


def outputs(tmp_path, cache_dir, backend, *extra):
    """(exit status, console text, JSON document, JUnit text, Markdown text, HTML text) of one run on the subset."""
    paths = {name: tmp_path / name for name in ("r.json", "j.xml", "s.md")}
    status = main(["run", "--backend", backend, "--function", "cross_entropy", "-k", SUBSET, "--jobs", "0",
                   "--xfails", "--cache-dir", str(cache_dir), "--json", str(paths["r.json"]), "--junit",
                   str(paths["j.xml"]), "--markdown", str(paths["s.md"]), *extra])
    assert main(["report", str(paths["r.json"]), "-o", str(tmp_path / "html")]) == 0
    return (status, json.loads(paths["r.json"].read_text()), paths["j.xml"].read_text(), paths["s.md"].read_text(),
            (tmp_path / "html" / "index.html").read_text())


@pytest.mark.parametrize("design, shown", [("in_place", "gradient written into the logits"),
                                           ("float32_loss", "losses of 16-bit logits in float32")])
def test_a_declared_choice_passes_and_every_report_format_names_it(design, shown, tmp_path, cache_dir, capsys):
    status, document, junit, markdown, html = outputs(tmp_path, cache_dir, f"conformance.mutants.designs:{design}")
    console = capsys.readouterr().out
    assert status == 0
    judged = document["summary"]["judged_by"]
    assert judged["declared"] and judged["summation_order"] == "sequential" and judged["lambda"] == 6.5
    for text in (console, junit, markdown, html):
        assert f"declared by the backend: {shown}" in text
        assert "sums judged as any order (the sequential bound), lambda 6.5" in text


def test_the_same_kernels_without_their_declarations_fail(tmp_path, cache_dir, monkeypatch):
    (tmp_path / "lc_undeclared.py").write_text(textwrap.dedent('''
        from conformance.mutants.designs import float32_loss, in_place

        def f32():
            namespace = float32_loss()
            del namespace.LOSS_DTYPE
            return namespace

        def inplace():
            namespace = in_place()
            del namespace.IN_PLACE_GRADIENT
            return namespace
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    for backend, check in (("lc_undeclared:f32", "dtype"), ("lc_undeclared:inplace", "inputs.unchanged")):
        options = RunOptions(backend=backend, functions=("cross_entropy",), keyword=SUBSET, jobs=0, xfail_paths=(),
                             cache_dir=cache_dir)
        records, _ = Session(options).run()
        assert any(r["status"] == "failed" and r["check"] == check for r in records), backend


def test_the_grade_is_in_the_summary_of_every_format(tmp_path, cache_dir, capsys):
    _, document, _, markdown, html = outputs(tmp_path, cache_dir, "conformance.mutants.designs:pairwise",
                                             "--dtype", "float32")
    console = capsys.readouterr().out
    (row,) = document["summary"]["table"]
    assert row["grade"] == "pairwise"
    assert all(r.get("grade") in ("pairwise", None) for r in document["results"])
    assert "| grade |" in markdown and "<th>grade</th>" in html and "┃ grade" in console


CONVENTION_KERNEL = '''
import torch
import torch.nn.functional as F


def cross_entropy(input, target, *args, **kwargs):  # takes int32 (and any integer) class indices
    if target.dtype in (torch.int32, torch.int16, torch.int8):
        target = target.long()
    return F.cross_entropy(input, target, *args, **kwargs)
'''


def test_a_kernel_that_accepts_int32_targets_passes_on_the_semantics_and_fails_torch_s_conventions(tmp_path,
                                                                                                  cache_dir,
                                                                                                  monkeypatch):
    (tmp_path / "lc_int32_targets.py").write_text(CONVENTION_KERNEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    semantics = RunOptions(backend="lc_int32_targets", functions=("cross_entropy",), ids=(
        "cross_entropy/error-NC-target-dtype=int32",), dtypes=("float32",), jobs=0, xfail_paths=(),
        cache_dir=cache_dir)
    session = Session(semantics)
    records, _ = session.run()
    assert {r["status"] for r in records} == {"skipped"} and records[0]["skip_kind"] == "not-applicable"
    assert "target_dtype" in records[0]["missing"]
    assert session.summary(records)["judged_by"]["layers"] == ["semantics"]
    conventions = RunOptions(**{**semantics.__dict__, "conventions": "torch"})
    records, _ = Session(conventions).run()
    assert [r["check"] for r in records if r["status"] in FAILING] == ["raises"]
