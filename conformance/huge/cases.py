"""The huge tier's cases and their structured inputs: tensors past 2**31 elements built from a few distinct rows.

Every row of a case is one of a few *kinds*: a logits row, with (cross_entropy) its target and upstream gradient,
or (log_softmax) its upstream gradient row. The oracle certifies the kinds alone, O(kinds x C), and a row of the
huge tensor is judged against its kind's. The kinds are placed so that 32-bit index arithmetic shows: the rows
that lie wholly past element 2**31 (the *tail*) are a kind of their own, with their target in the last class, and
no other row holds it, so a kernel that reads or writes a tail row at an offset wrapped to 32 bits (into the first
rows) reads another kind's values, and a checked row is wrong. Ignored rows (cross_entropy) sit among the others,
one in every eighth of the rows before the tail, so that the 'mean' divides by a power of two.

docs/huge-tier.md gives the sizes, the memory and the times.
"""
from dataclasses import dataclass

import numpy as np

from ..inputs.generate import normal
from ..spec.dtypes import round_to

SEED = 20261206  # the tier's inputs, bit-identical on every machine (inputs/generate.py's Irwin-Hall normals)
IGNORE_INDEX = -100
TAIL_ROWS = 8  # rows past the boundary: 8 x C elements beyond 2**31 (2**20 at C = 2**17)
IGNORED_ROWS = 8  # cross_entropy: the rows left, rows - IGNORED_ROWS = boundary / C, are a power of two


@dataclass(frozen=True)
class Geometry:
    """The sizes of a tier run: C classes and a boundary of 2**boundary_bits elements, which the rows cross by
    TAIL_ROWS rows. The default is the real tier (2**31 + 2**20 elements); tests use a smaller boundary, where a
    mutant that wraps its offsets at that many bits is caught by the same placement."""

    classes: int = 2**17
    boundary_bits: int = 31

    def __post_init__(self):
        if self.classes & (self.classes - 1) or (1 << self.boundary_bits) < 8 * self.classes:
            raise ValueError("classes must be a power of two, with 8 rows or more before the boundary")

    @property
    def boundary(self):
        return 1 << self.boundary_bits

    @property
    def rows(self):
        return self.boundary // self.classes + TAIL_ROWS

    @property
    def elements(self):
        return self.rows * self.classes

    def ignored_rows(self):
        """One row in every eighth of the rows before the tail (5 past its start): the rest count, 2**k rows."""
        step = (self.boundary // self.classes) // IGNORED_ROWS
        return np.arange(IGNORED_ROWS) * step + min(5, step - 1)


@dataclass(frozen=True)
class HugeCase:
    """One case of the tier: the function, the layout its logits are handed over in, and its keywords."""

    id: str
    function: str  # cross_entropy or log_softmax
    layout: str  # "rows": (N, C) contiguous; "tokens": (B, T, C) contiguous handed over as its view (B, C, T)
    kwargs: dict
    peak_tensors: int = 4  # tensors of the logits' size alive at once at the peak (torch 2.13, CPU: docs/huge-tier.md)
    tags = ("huge",)  # as a corpus case's, in its records

    def shape(self, geometry):
        """The shape of the logits as the function sees them."""
        rows, classes = geometry.rows, geometry.classes
        return (rows, classes) if self.layout == "rows" else (2, classes, rows // 2)

    @property
    def class_dim(self):
        return 1

    @property
    def full_id(self):
        """function/id, as the corpus names a case: the backend's expected deviations match it."""
        return f"{self.function}/{self.id}"


CASES = (
    # the case that needs the most memory first, while the process holds the least (a compiler's workers grow it)
    HugeCase("huge-tokens", "log_softmax", "tokens", {"dim": 1}, peak_tensors=5),  # a contiguous copy inside
    HugeCase("huge-rows", "log_softmax", "rows", {"dim": -1}),
    HugeCase("huge-rows-none", "cross_entropy", "rows", {"reduction": "none"}),
    HugeCase("huge-rows-mean", "cross_entropy", "rows", {"reduction": "mean"}),
    HugeCase("huge-tokens-none", "cross_entropy", "tokens", {"reduction": "none"}),
    HugeCase("huge-tokens-mean", "cross_entropy", "tokens", {"reduction": "mean"}),
)
DTYPES = ("float16", "bfloat16")


def case_ids():
    """The tier's cases by full id: a backend's xfail file may hold entries for them (not stale in a corpus run)."""
    return [case.full_id for case in CASES]


@dataclass
class Kinds:
    """The distinct rows of a case in a dtype (float64 arrays of dtype values) and which kind each row is.

    logits (K, C); targets (K,) class indices or IGNORE_INDEX (cross_entropy); upstream (K,) per-row upstream
    gradients of a 'none' loss, (K, C) rows of a log_softmax's, or None for a 'mean' (its upstream is 1);
    pattern (rows,) the kind of each row, rows in the order of the logits' (position, class) layout."""

    logits: np.ndarray
    targets: np.ndarray | None
    upstream: np.ndarray | None
    pattern: np.ndarray

    def counts(self):
        return np.bincount(self.pattern, minlength=len(self.logits))

    def first_rows(self):
        """The first row of each kind, whose output stands for the rows of that kind that match it bit for bit."""
        return np.array([int(np.flatnonzero(self.pattern == k)[0]) for k in range(len(self.logits))])


def _draw(stream, shape, dtype, scale=1.0):
    return round_to(scale * normal(np.random.default_rng([SEED, stream]), shape), dtype)


def make_kinds(case, geometry, dtype):
    """The kinds of a case: logits rows A, B (alternating before the tail) and T (the tail); for cross_entropy
    also an ignored kind (row A, target IGNORE_INDEX) at Geometry.ignored_rows."""
    rows, classes = geometry.rows, geometry.classes
    distinct = _draw(1, (3, classes), dtype, scale=3.0)  # A, B, T
    pattern = (np.arange(rows) % 2).astype(np.int64)
    tail = geometry.boundary // classes
    if case.function == "log_softmax":
        pattern[tail:] = 2
        upstream = _draw(2, (3, classes), dtype)
        return Kinds(distinct, None, upstream, pattern)
    pattern[geometry.ignored_rows()] = 2
    pattern[tail:] = 3
    targets = np.random.default_rng([SEED, 3]).integers(0, classes - 1, size=2)
    kind_targets = np.array([targets[0], targets[1], IGNORE_INDEX, classes - 1], dtype=np.int64)
    kind_logits = distinct[[0, 1, 0, 2]]
    upstream = None if case.kwargs["reduction"] == "mean" else _draw(4, (4,), dtype)
    return Kinds(kind_logits, kind_targets, upstream, pattern)
