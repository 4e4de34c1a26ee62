"""Fused-kernel bugs: the mistakes that fused cross-entropy kernels of LLM training libraries have shipped,
each re-created on the torch kernel of _fused.py (online log-sum-exp over blocks, rows in chunks, float32
accumulation, the gradient computed in the forward pass). ``reference()`` is that kernel without a bug: a
correct kernel of another design than torch's, which must pass the default corpus.

These mutants do not wrap torch's functions, so they do not inherit torch's declared deviations: they run with
no expected-deviation file at all. Each factory returns a namespace for ``--backend conformance.mutants.fused:<name>``.
Sources (public trackers; docs/tolerances.md, "Fused-kernel mutants", has the details):
  no_rescale            online softmax without rescaling the running sum (tt-metal#51278, Liger-Kernel PR 1252)
  pad_zero              the last partial block padded with 0 instead of -inf (verl#2899, unsloth PR 10616)
  ninf_nan              exp(-inf - (-inf)) on masked-vocabulary rows (flash-attention#1930, optax#896)
  lse_lowp              the log-sum-exp stored in the input dtype (optax#1020)
  true_class_rounded    p_y rounded to bf16/fp16 before "- 1" (Liger-Kernel PR 1268, fixed by PR 1329)
  none_grad_first       'none' gradients all scaled by the first upstream gradient (Liger-Kernel PR 1298)
  none_returns_sum      'none' returns the summed scalar (Liger-Kernel #421, #435)
  grad_output_ignored   the stored gradient returned without the upstream gradient (unsloth-zoo #434)
  fast_path_first       a "grad_output == 1" fast path decided on the first element (Liger FLCE)
  chunk_mean_of_means   the mean as a mean of per-chunk means (NeMo Automodel#3803, transformers#35203)
  mean_count_all        ignored rows counted in the mean (TransformerEngine PR 2476, Paddle PR 76033)
  mean_count_not_weight the number of rows instead of the sum of their weights (Liger-Kernel PR 420)
  ignore_hardcoded      ignore_index -100 whatever the argument (unsloth, apex xentropy)
  ls_ignored_included   the smoothing term of ignored rows kept (pytorch#73205)
  no_bounds_check       out-of-range targets read silently (Liger-Kernel PR 588, flash-attention)
  inplace               the gradient written into the logits (Liger-Kernel #272, unsloth#5002)
"""
from types import SimpleNamespace

from ._fused import cross_entropy_with

BUGS = {
    "no_rescale": "online log-sum-exp: the running sum not rescaled when the running maximum grows",
    "pad_zero": "the last partial block of columns padded with 0 instead of -inf",
    "ninf_nan": "exp(-inf - (-inf)) = NaN on rows whose first blocks are all -inf (masked vocabulary)",
    "lse_lowp": "the log-sum-exp rounded to the input dtype, then x - lse",
    "true_class_rounded": "the true-class probability rounded to the input dtype before the one-hot term is "
                          "subtracted (confident tokens get a zero or 100 %-off gradient in bf16/fp16)",
    "none_grad_first": "reduction 'none': every row's gradient scaled by the first row's upstream gradient",
    "none_returns_sum": "reduction 'none' returns the summed scalar",
    "grad_output_ignored": "the gradient computed in the forward pass returned without the upstream gradient",
    "fast_path_first": "a fast path for an upstream gradient of 1.0, decided on its first element",
    "chunk_mean_of_means": "'mean' over rows computed as the mean of per-chunk means",
    "mean_count_all": "'mean' divides by all rows, ignored ones included",
    "mean_count_not_weight": "weighted 'mean' divides by the number of counted rows, not their weight",
    "ignore_hardcoded": "ignore_index fixed at -100 whatever the argument says",
    "ls_ignored_included": "label smoothing: the smoothing term of ignored rows is kept",
    "no_bounds_check": "targets outside [0, C) are clamped and read silently instead of raising",
    "inplace": "the gradient is written into the logits' memory (the input changes)",
}


def _namespace(description, bugs):
    import torch.nn.functional as F

    return SimpleNamespace(__doc__=description, REPLACED=("cross_entropy",), DEVIATIONS=(), CONVENTIONS="torch",
                           cross_entropy=cross_entropy_with(bugs), nll_loss=F.nll_loss, kl_div=F.kl_div,
                           softmax=F.softmax, log_softmax=F.log_softmax)


def reference():
    """The fused kernel without a bug (it must pass the default corpus: tests/test_fused_kernel.py)."""
    return _namespace("a correct fused cross-entropy kernel (online log-sum-exp, float32 accumulation)", ())


def _factory(name):
    def build():
        return _namespace(BUGS[name], (name,))
    build.__name__ = name
    return build


CATALOG = {name: _factory(name) for name in BUGS}


def __getattr__(name):  # --backend conformance.mutants.fused:<name> resolves the catalog's factories
    if name in CATALOG:
        return CATALOG[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
