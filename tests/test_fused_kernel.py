"""Kernels of other designs than torch's against the default corpus: a hand-written chunked cross entropy (online
log-sum-exp over blocks of 64 columns in float32, the gradient computed in the forward pass), plugged in with the
README's one-line namespace, passes it, and the same kernel with the classic bug (the running sum not rescaled
when the running maximum grows) fails it; so does every mutant of the fused-kernel family, while the family's
bug-free kernel (conformance/mutants/_fused.py) passes with no declared deviation at all."""

import pytest

from conformance.verdict.results import FAILING
from conformance.run.session import RunOptions, Session

torch = pytest.importorskip("torch")

KERNEL = '''
import torch

BLOCK = 64
RESCALE = RESCALE_SWITCH
SUPPORTED_DTYPES = ("float32", "float16", "bfloat16")  # it accumulates in float32: float64 is not its business


class _OnlineCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target):
        x = logits.detach().float()
        rows, width = x.shape
        top = torch.full((rows,), float("-inf"))
        total = torch.zeros(rows)
        for start in range(0, width, BLOCK):
            block = x[:, start:start + BLOCK]
            new_top = torch.maximum(top, block.amax(1))
            shift = torch.where(torch.isneginf(new_top), torch.zeros_like(new_top), new_top)
            if RESCALE:
                total = total * torch.where(torch.isneginf(top), torch.zeros_like(top), torch.exp(top - shift))
            total = total + torch.exp(block - shift[:, None]).sum(1)
            top = new_top
        shift = torch.where(torch.isneginf(top), torch.zeros_like(top), top)
        log_p = x - shift[:, None] - torch.log(total)[:, None]
        loss_rows = -log_p.gather(1, target[:, None])[:, 0]
        gradient = torch.exp(log_p).scatter_add(1, target[:, None], -torch.ones(rows, 1)) / rows
        ctx.save_for_backward(gradient.to(logits.dtype))
        return loss_rows.mean().to(logits.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (gradient,) = ctx.saved_tensors
        return gradient * grad_output, None


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    plain = weight is None and size_average is None and reduce is None and label_smoothing == 0.0
    if not plain or reduction != "mean" or input.dim() != 2 or target.dtype != torch.int64 \\
            or bool((target == ignore_index).any()):
        raise NotImplementedError("this kernel computes the unweighted mean over (N, C) logits only")
    if target.shape != input.shape[:1]:
        raise ValueError(f"target of shape {tuple(target.shape)} for logits of shape {tuple(input.shape)}")
    if bool(((target < 0) | (target >= input.shape[1])).any()):
        raise IndexError("target out of range")
    return _OnlineCrossEntropy.apply(input, target)
'''


def failures(backend, function="cross_entropy", xfails=(), cache_dir=None):
    options = RunOptions(backend=backend, functions=(function,), jobs=0, xfail_paths=xfails, cache_dir=cache_dir)
    session = Session(options)
    records, _ = session.run()
    return [r for r in records if r["status"] in FAILING], session.summary(records)


@pytest.fixture
def hand_written(tmp_path, monkeypatch):
    for name, rescale in (("lc_online_ce", True), ("lc_online_ce_no_rescale", False)):
        (tmp_path / f"{name}.py").write_text(KERNEL.replace("RESCALE_SWITCH", str(rescale)))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.getbasetemp().parent / "oracle-cache"  # shared with test_mutants.py's runs


def test_a_hand_written_online_softmax_kernel_passes_the_default_corpus(hand_written, cache_dir):
    bad, summary = failures("lc_online_ce", cache_dir=cache_dir)
    assert not bad, [(r["case"], r["dtype"], r["check"], r.get("message", "")[:200]) for r in bad[:5]]
    assert summary["coverage"]["ran"] > 100  # it ran the plain (N, C) means, block-crossing rows among them


def test_the_same_kernel_without_the_rescale_fails_on_block_crossing_rows(hand_written, cache_dir):
    bad, _ = failures("lc_online_ce_no_rescale", cache_dir=cache_dir)
    assert any(r["case"].startswith("cross_entropy/blocks-") for r in bad)


def test_the_fused_reference_kernel_passes_the_default_corpus_without_deviations(cache_dir):
    for function in ("cross_entropy",):
        bad, summary = failures("conformance.mutants.fused:reference", function, cache_dir=cache_dir)
        assert not bad, [(r["case"], r["dtype"], r["check"], r.get("message", "")[:200]) for r in bad[:5]]
        assert 0.5 < summary["coverage"]["share"] < 1  # probability targets and the module form are unsupported


def test_the_fused_reference_kernel_does_not_change_its_input():
    from conformance.mutants.fused import reference

    kernel = reference().cross_entropy
    logits = torch.randn(3, 70, requires_grad=True)
    before = logits.detach().clone()
    kernel(logits, torch.tensor([0, 69, 5])).backward()
    assert torch.equal(logits.detach(), before)


# Each fused-kernel mutant fails the cases written for its bug (not only some case that happens to come first).
KILLING_CASES = {
    "no_rescale": "blocks-", "pad_zero": "blocks-", "ninf_nan": "masked", "lse_lowp": "confident-",
    "true_class_rounded": "confident-", "none_grad_first": "upstream-", "none_returns_sum": "upstream-",
    "grad_output_ignored": "upstream-", "fast_path_first": "upstream-one-first", "chunk_mean_of_means": "chunks-",
    "mean_count_all": "chunks-", "mean_count_not_weight": "chunks-", "ignore_hardcoded": "ii=1",
    "ls_ignored_included": "ls=0.1", "no_bounds_check": "error-", "inplace": "NC-",
}


def test_every_fused_mutant_has_cases_made_for_it():
    from conformance.mutants.fused import BUGS

    assert set(KILLING_CASES) == set(BUGS)


@pytest.mark.parametrize("name", sorted(KILLING_CASES))
def test_each_fused_mutant_fails_the_cases_made_for_its_bug(name, cache_dir):
    options = RunOptions(backend=f"conformance.mutants.fused:{name}", functions=("cross_entropy",), jobs=0,
                         xfail_paths=(), cache_dir=cache_dir, keyword=KILLING_CASES[name])
    records, _ = Session(options).run()
    assert any(r["status"] == "failed" for r in records), f"{name} passed every case matching {KILLING_CASES[name]!r}"
