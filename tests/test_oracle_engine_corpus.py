"""Cross-validation on the corpus: the mpmath and arb engines agree on a seeded sample of the default corpus.

Each sampled (case, dtype) is called as conformance/expected/calls.py calls the oracle (the dtype-rounded inputs,
the case's upstream gradient), forward and VJP; values, gradients and scales must agree to the certified bits
(oracle/crosscheck.py), and the stored float64 pairs, canonical, bit for bit. The whole corpus is compared
by benchmarks/oracle_crosscheck.py (figures in docs/oracle-engines.md).
"""
import random
from functools import lru_cache

import numpy as np
import pytest

from oracle.crosscheck import compare_engines

pytest.importorskip("flint", reason="the arb engine needs python-flint")
from conformance.corpus.casefile import load_cases  # noqa: E402
from conformance.inputs.generate import make_inputs, rounded_inputs  # noqa: E402
from conformance.expected import oracle_calls  # noqa: E402

SAMPLE_SEED = 14  # the issue that introduced the engines
SAMPLE_SIZE = 80  # (case, dtype) pairs
MAX_ELEMENTS = 4096  # per input: keeps the mpmath side of the sample to a few seconds
OPT_IN_TAGS = {"large", "slow"}


@lru_cache(maxsize=1)
def _sampled_pairs():
    pairs = [(case, dtype) for case in load_cases() if not set(case.tags) & OPT_IN_TAGS
             for dtype in case.dtypes]
    pairs = [(case, dtype) for case, dtype in pairs if _input_size(case) <= MAX_ELEMENTS]
    return tuple(random.Random(SAMPLE_SEED).sample(pairs, SAMPLE_SIZE))


def _input_size(case):
    """Elements of the case's input, from its spec where it gives a shape (generating every input is slow)."""
    spec = case.inputs["input"]
    if "shape" in spec:
        return int(np.prod(spec["shape"], dtype=np.int64))
    return make_inputs(case)["input"].size


def _sample():
    return [pytest.param(case, dtype, id=f"{case.full_id}[{dtype}]") for case, dtype in _sampled_pairs()]


@pytest.mark.parametrize("case, dtype", _sample())
def test_engines_agree_on_the_corpus_sample(case, dtype):
    for label, function, positional, kwargs in oracle_calls(case, dtype):
        comparison = compare_engines(function, *positional, **kwargs)
        assert comparison.ok, f"{label}: {comparison.problems[:5]}"


def test_the_sample_covers_every_function():
    functions = {case.function for case, _ in _sampled_pairs()}
    assert functions == {"cross_entropy", "nll_loss", "kl_div", "softmax", "log_softmax", "linear_cross_entropy"}, \
        functions
    assert len({dtype for _, dtype in _sampled_pairs()}) >= 3  # several dtypes


@pytest.mark.parametrize("case, dtype", _sample())
def test_stored_results_of_both_engines_are_bit_identical(case, dtype):
    """What the cache stores (the Wanted pairs of conformance.expected.calls): canonical, so the same bytes from
    either engine (oracle/_canonical.py), for every value, scale and gradient of the sample."""
    from conformance.expected import compute_expected

    arrays = rounded_inputs(make_inputs(case), dtype)
    results = [compute_expected(case.function, arrays, case.kwargs, dtype, case.seed, case.grad,
                                grad_output_kind=case.grad_output, engine=engine)
               for engine in ("mpmath", "arb")]
    assert results[0].error == results[1].error
    named = [{**(r.outputs or {}), **{f"grad_{n}": w for n, w in (r.gradients or {}).items()}} for r in results]
    assert named[0].keys() == named[1].keys()
    for name in named[0]:
        for part, a, b in zip(("hi", "lo", "scale"), named[0][name], named[1][name]):
            assert a.tobytes() == b.tobytes(), f"{case.full_id}[{dtype}] {name}.{part}"
