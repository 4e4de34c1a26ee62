"""The suite's power, kept in CI: torch 2.13 CPU and every correct design of conformance/mutants/designs.py raise no
unexpected failure on the default corpus (no false alarm), and every mutant in conformance/mutants (torch with one
realistic bug) fails it (is killed).

Each mutant runs only the cases of the functions it replaces, until its first failed check. The oracle cache is
shared by every xdist worker of the run (entries are written atomically).
"""
from dataclasses import replace

import pytest

from conformance.mutants import catalog
from conformance.mutants.designs import CATALOG as DESIGNS
from conformance.mutants.score import design_false_alarms, run_mutant, torch_false_alarms
from conformance.run.session import RunOptions

pytest.importorskip("torch")
MUTANTS = catalog()


@pytest.fixture(scope="session")
def base_options(tmp_path_factory):
    # The parent of basetemp is shared by all xdist workers of one pytest run.
    return RunOptions(jobs=0, cache_dir=tmp_path_factory.getbasetemp().parent / "oracle-cache")


def test_torch_raises_no_false_alarm_on_the_default_corpus(base_options):
    alarms, checked = torch_false_alarms(base_options)
    assert checked > 10000, f"only {checked} checks: the default corpus is missing"
    assert not alarms, "torch 2.13 CPU failed:\n" + "\n".join(
        f"{r['case']} [{r['dtype']}] {r['check']}: {r.get('message', '')}" for r in alarms[:10])


@pytest.mark.parametrize("design", list(DESIGNS))
def test_no_correct_design_raises_a_false_alarm_on_the_default_corpus_or_the_large_tier(design, base_options):
    """Kernels of other designs than torch's (summation orders, a fused kernel, the gradient stored in the dtype or
    in the logits, float32 losses) with no declared deviation: zero unexplained failures."""
    alarms, checked = design_false_alarms(replace(base_options, include_tags=("large",)), design)
    assert checked > 10000, f"only {checked} checks"
    assert not alarms, f"correct design {design} failed:\n" + "\n".join(
        f"{r['case']} [{r['dtype']}] {r['check']}: {r.get('message', '')[:300]}" for r in alarms[:10])


def test_the_catalog_covers_every_family():
    families = {mutant.family for mutant in MUTANTS.values()}
    assert len(MUTANTS) >= 25 and len(families) >= 8, f"{len(MUTANTS)} mutants in {sorted(families)}"


@pytest.mark.parametrize("name", list(MUTANTS))
def test_the_default_corpus_kills_the_mutant(name, base_options):
    result = run_mutant(MUTANTS[name], base_options)
    assert result.killed, f"mutant {name} ({result.description}) survived {result.checks_run} checks"
    assert result.first_kill["case"].split("/")[0] in MUTANTS[name].build().REPLACED
    if MUTANTS[name].family == "layout":  # killed by what was made for it: a layout case or a stability check
        assert "/layout-" in result.first_kill["case"] or result.first_kill["check"] in (
            "deterministic", "batch_invariant"), result.first_kill
    if MUTANTS[name].family == "extensions" and name != "z_loss_when_off":  # that one breaks every plain case
        case = result.first_kill["case"]
        assert "/ext-" in case or case.startswith("linear_cross_entropy/"), result.first_kill


def test_the_mutants_command_reports_the_score_as_json(tmp_path, base_options):
    import json

    from conformance.cli import main

    path = tmp_path / "mutants.json"
    status = main(["mutants", "--mutant", "label_smoothing_over_c_minus_1", "--skip-torch", "--skip-designs",
                   "--json", str(path),
                   "--cache-dir", str(base_options.cache_dir)])
    document = json.loads(path.read_text())
    assert status == 0
    assert document["schema"] == "loss-conformance/mutants"
    assert document["mutation"]["killed"] == document["mutation"]["total"] == 1
    assert document["mutation"]["score"] == 1.0
    assert document["mutation"]["mutants"][0]["first_kill"]["case"].startswith("cross_entropy/")


def test_an_unknown_mutant_is_a_usage_error(capsys):
    from conformance.cli import main

    assert main(["mutants", "--mutant", "no_such_mutant", "--skip-torch", "--skip-designs"]) == 2
    assert "unknown mutants ['no_such_mutant']" in capsys.readouterr().err
