"""The error model's accumulation term (docs/tolerances.md, "Summation order"): the depth of each order, the bound
of a sum, the grade, and the proof that it is right on every machine: correct kernels that differ only in the order
of their sums (sequential; 4, 8 and 16 lanes; pairwise; a GPU-like tile tree) pass the default corpus and the large
tier with no declared deviation, and so does torch under every CPU capability the machine offers."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from conformance.verdict.tolerances import Tolerances, accumulation_u, depth, parse_order, sum_lengths

LAMBDA = Tolerances.load().accumulation["lambda"]


@pytest.mark.parametrize("order, n, expected", [
    ("sequential", 1, 0), ("sequential", 2, 1), ("sequential", 8193, 8192),
    ("pairwise", 2, 1), ("pairwise", 1024, 10), ("pairwise", 1025, 11),
    ("lanes-8", 8, 3), ("lanes-8", 9, 4), ("lanes-8", 8193, 1024 + 3), ("lanes-4", 3, 2),
    ("tiles-1024", 1024, 10), ("tiles-1024", 131072, 10 + 127),
])
def test_the_depth_of_each_order(order, n, expected):
    assert depth(n, order) == expected


@pytest.mark.parametrize("order", ["lanes", "tiles-", "lanes-0", "blocked", "pairwise-2", "sequential-1"])
def test_an_unknown_order_is_refused(order):
    with pytest.raises(ValueError, match="unknown summation order"):
        parse_order(order)


def test_a_sum_adds_the_smaller_of_its_deterministic_and_probabilistic_bounds():
    assert accumulation_u([5], "sequential", LAMBDA) == 4  # d = 4 < lambda sqrt(4)
    assert accumulation_u([8193], "sequential", LAMBDA) == pytest.approx(LAMBDA * math.sqrt(8192))
    assert accumulation_u([8193, 8193, 1], "pairwise", LAMBDA) == 2 * 14  # ceil(log2 8193) = 14 < lambda sqrt(14)
    assert accumulation_u([0, 1], "sequential", LAMBDA) == 0


@pytest.mark.parametrize("order", ["sequential", "lanes-4", "lanes-16", "pairwise", "tiles-64"])
def test_the_reference_sums_meet_the_deterministic_bound_of_their_depth(order):
    from conformance.mutants._ordered import ordered_sum

    rng = np.random.default_rng(5)
    terms = rng.standard_normal((50, 3001)).astype(np.float32)
    exact = np.array([math.fsum(row) for row in terms.astype(np.float64)])
    bound = depth(3001, order) * 2.0 ** -24 * np.abs(terms.astype(np.float64)).sum(-1)
    assert np.all(np.abs(ordered_sum(terms, order).astype(np.float64) - exact) <= bound)


def test_the_sequential_reference_sum_is_the_running_sum():
    from conformance.mutants._ordered import ordered_sum

    terms = np.float32([1.0, 2.0 ** -24, 2.0 ** -24, 2.0 ** -24])  # each tiny term is lost against 1 in turn
    assert ordered_sum(terms, "sequential") == np.float32(1.0)
    assert ordered_sum(terms, "pairwise") == np.float32(1.0) + np.float32(2.0 ** -23)


def test_the_lengths_of_the_sums_of_a_call():
    arrays = {"input": np.zeros((4, 7, 3)), "target": np.zeros((4, 3), dtype=np.int64)}
    assert sum_lengths("cross_entropy", {"reduction": "mean"}, arrays) == {"class": 7, "rows": 12, "weights": 12}
    assert sum_lengths("cross_entropy", {"reduction": "none"}, arrays) == {"class": 7, "rows": 0, "weights": 0}
    probabilities = {"input": np.zeros((4, 7)), "target": np.zeros((4, 7))}
    assert sum_lengths("cross_entropy", {}, probabilities)["weights"] == 0  # 'mean' divides by N exactly
    assert sum_lengths("softmax", {"dim": 0}, {"input": np.zeros((5, 2))}) == {"class": 5}
    assert sum_lengths("log_softmax", {}, {"input": np.zeros((5, 2))}) == {"class": 2}  # the implicit dim 1
    assert sum_lengths("kl_div", {"reduction": "batchmean"}, {"input": np.zeros((5, 2))}) == {"elements": 10}


def test_a_budget_is_the_chain_plus_the_sums_and_its_grade_the_tightest_order_that_holds():
    tolerances = Tolerances.load()
    lengths = {"class": 8193}
    budget = tolerances.resolve("softmax", "value", "float32", {"dim": 1}, lengths)
    chain = tolerances.chain("softmax", "value", "float32", {"dim": 1})
    assert budget.scale_u == pytest.approx(chain + LAMBDA * math.sqrt(8192))
    ladder = dict(budget.ladder)
    assert ladder["pairwise"] == pytest.approx(chain + 14) and budget.grade(chain + 14) == "pairwise"
    assert budget.grade(ladder["lanes-8"]) == "lanes-8" and budget.grade(budget.scale_u * 2) == "beyond"
    declared = tolerances.resolve("softmax", "value", "float32", {"dim": 1}, lengths, order="tiles-1024")
    assert declared.scale_u == pytest.approx(ladder["tiles-1024"])


def test_sixteen_bit_dtypes_add_the_float32_computation_converted_to_their_unit():
    tolerances = Tolerances.load()
    lengths = {"class": 131072}
    float32 = tolerances.resolve("softmax", "value", "float32", {"dim": 1}, lengths).scale_u
    bfloat16 = tolerances.resolve("softmax", "value", "bfloat16", {"dim": 1}, lengths)
    chain = tolerances.chain("softmax", "value", "bfloat16", {"dim": 1})
    assert bfloat16.scale_u == pytest.approx(chain + float32 * 2.0 ** -16)
    assert bfloat16.ladder == ()  # a float32 order cannot show at bfloat16's resolution: no grade
    assert bfloat16.relative.accumulation_budget == pytest.approx(float32 * (1 + 2.0 ** -8) ** 2)


# --- correct designs of every order pass; torch passes on every CPU ---------------------------------------------

@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.getbasetemp().parent / "oracle-cache"  # shared with the other corpus runs


# The correct design of each order (conformance/mutants/designs.py) passes the default corpus and the large tier
# with no declared deviation: tests/test_mutants.py, test_no_correct_design_raises_a_false_alarm_....


def _capabilities():
    """The ATen CPU capabilities this machine can run (default always; avx2 and avx512 where the CPU has them)."""
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    return ["default"] + [name for name, flag in (("avx2", " avx2"), ("avx512", " avx512f")) if flag in flags]


@pytest.mark.parametrize("capability", _capabilities())
def test_torch_passes_the_default_corpus_under_every_cpu_capability(capability, cache_dir):
    pytest.importorskip("torch")
    environment = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--quiet", "--jobs", "1",
                           "--cache-dir", str(cache_dir)], env=environment, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
