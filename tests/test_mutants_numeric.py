"""The default corpus against torch 2.13 CPU (no unexpected failure) and against the numeric mutants (each fails).

This is the calibration proof of docs/tolerances.md: the budgets pass a correct kernel with margin and fail the
realistic bugs of conformance/mutants/numerics.py. The oracle cache is shared by every xdist worker of a run.
"""
import pytest

from conformance.mutants.numerics import CATALOG
from conformance.session import RunOptions, Session, default_xfail_paths

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    # The parent of basetemp is shared by all xdist workers of one pytest run; entries are written atomically.
    return tmp_path_factory.getbasetemp().parent / "oracle-cache"


def run_default_corpus(backend, cache_dir):
    """Records of the default corpus; mutants wrap torch, so torch's declared deviations apply to them too."""
    options = RunOptions(backend=backend, jobs=0, cache_dir=cache_dir, xfail_paths=default_xfail_paths("torch"),
                         strict=False)
    records, _ = Session(options).run()
    return records


def unexpected(records):
    return [r for r in records if r["status"] in ("failed", "error", "xpassed")]


def test_torch_passes_the_default_corpus(shared_cache):
    records = run_default_corpus("torch", shared_cache)
    bad = unexpected(records)
    assert len(records) > 2000, f"only {len(records)} checks: the default corpus is missing"
    assert not bad, "torch 2.13 CPU failed:\n" + "\n".join(
        f"{r['case']} [{r['dtype']}] {r['check']}: {r.get('message', '')}" for r in bad[:10])


@pytest.mark.parametrize("mutant", sorted(CATALOG))
def test_the_default_corpus_fails_each_numeric_mutant(mutant, shared_cache):
    records = run_default_corpus(f"conformance.mutants.numerics:{mutant}", shared_cache)
    failed = [r for r in records if r["status"] == "failed"]
    assert failed, f"mutant {mutant} survived the default corpus ({len(records)} checks, none failed)"
    changed = set(vars(CATALOG[mutant]()).keys()) & {"softmax", "log_softmax", "nll_loss", "cross_entropy", "kl_div"}
    replaced = {name for name in changed if getattr(CATALOG[mutant](), name) is not getattr(F, name)}
    assert {r["function"] for r in failed} <= replaced, "failures outside the functions the mutant changes"
