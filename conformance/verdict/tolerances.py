"""The error model and its budgets, read from one data file (cases/tolerances.yaml; docs/tolerances.md derives it).

A budget is a number of units of the dtype's roundoff u, relative to the oracle's scale, and has two parts:

- the **per-element chain** (``budgets``, per function, check and dtype, with keyword-conditioned
  ``overrides``): the roundings of the elementwise operations, which do not depend on the input's size;
- the **accumulation** (``accumulation``): every sum that enters a check (``sums``: the class sum, the sum over
  rows, the sum of the weights, the sum over elements) adds ``min(d, lambda * sqrt(d))`` units of roundoff of the
  accumulation dtype, with d the depth of the sum's order for its length n (``depth``): n - 1 for a sequential
  sum, ceil(log2 n) for a pairwise one. The default order is ``sequential``, the bound every correct order meets;
  a backend that declares its order (Capabilities.summation_order) is judged by that order's bound.

``Tolerances.resolve`` is the one resolver: (case, dtype, check, lengths, order) -> ``Budget``, used by the checks
and by parity. Float16 and bfloat16 accumulate in float32: their budget is their own chain plus the float32
computation's error converted to their u, and their ``relative`` check gets that error as its accumulation term.
Every number is checked when the file is loaded: NaN, infinity, zero or negative budgets are refused.
"""
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from oracle import implicit_dim

from ..corpus.casefile import CASES_DIR, CaseFileError, read_yaml
from ..spec.dtypes import DTYPES, float_format
from .. import spec
from ..spec.classes import class_dim
from ..spec.features import effective_reduction

TOLERANCES_PATH = CASES_DIR / "tolerances.yaml"
SUM_LENGTHS = ("class", "rows", "weights", "elements", "hidden", "batch")  # the sums a check may hold (sum_lengths)


def budgeted_checks():
    """Every check a budget file may name: those of the built-in records (value, grad_<tensor>, outputs)."""
    return tuple(dict.fromkeys(check for name in spec.ALL_FUNCTIONS for check in spec.get(name).checks))
ORDER_KINDS = ("sequential", "lanes", "pairwise", "tiles")


def parse_order(order):
    """(kind, size) of a summation order: 'sequential', 'pairwise', 'lanes-K' (K accumulators, each summing
    every K-th term, then a tree), 'tiles-B' (a tree inside each tile of B terms, then the tiles in sequence)."""
    kind, _, size = str(order).partition("-")
    sized = kind in ("lanes", "tiles")
    if kind not in ORDER_KINDS or sized != bool(size) or (size and not (size.isdigit() and int(size) >= 1)):
        raise ValueError(f"unknown summation order {order!r}: expected sequential, pairwise, lanes-K or tiles-B")
    return kind, int(size) if size else 0


def depth(n, order):
    """The most roundings a term of a sum of n terms goes through in this order (exact additions of padding
    zeros not counted): the d of the error bounds d u and lambda sqrt(d) u relative to the sum of |terms|."""
    if n <= 1:
        return 0
    kind, size = parse_order(order)
    if kind == "sequential":
        return n - 1
    if kind == "pairwise":
        return math.ceil(math.log2(n))
    return math.ceil(n / size) - 1 + math.ceil(math.log2(min(n, size)))  # lanes and tiles alike


def accumulation_u(lengths, order, lam):
    """The accumulation term, in units of the accumulation dtype's roundoff, of sums of these lengths: each adds
    the smaller of its deterministic bound d and its probabilistic bound lambda sqrt(d) (docs/tolerances.md)."""
    total = 0.0
    for n in lengths:
        d = depth(n, order)
        total += min(d, lam * math.sqrt(d))
    return total


def sum_lengths(function, kwargs, arrays):
    """{length name: n} of the sums a kernel forms for this call: ``class`` (along the class or softmax dim),
    ``rows`` (the loss terms a 'sum' or 'mean' adds up), ``weights`` (the class-index 'mean' denominator's
    terms), ``elements`` (kl_div's reduced elements), ``hidden`` (a computed logit's dot product) and ``batch``
    (the rows a linear layer's weight gradient adds up); 0 where the call has no such sum."""
    record = spec.get(function)
    if record.kind == "linear":
        # the logits' shape, as a stride-0 view: no N x V array is made to read its sizes
        logits = {**arrays, "input": np.broadcast_to(np.float64(0), record.shape_for_others(arrays))}
        lengths = sum_lengths("cross_entropy", kwargs, logits)
        rows = logits["input"].size // max(lengths["class"], 1) if lengths["class"] else 0
        return {**lengths, "hidden": int(arrays["input"].shape[-1]), "batch": int(rows)}
    x, kind = arrays["input"], record.kind
    if kind == "softmax":
        dim = kwargs.get("dim")
        dim = implicit_dim(x.ndim) if dim is None else dim
        length = x.shape[dim] if x.ndim and isinstance(dim, int) and -x.ndim <= dim < x.ndim else 1
        return {"class": int(length)}
    reduction = effective_reduction(kwargs)
    reduced = reduction in ("sum", "mean", "batchmean")
    if kind == "pointwise":
        return {"elements": int(x.size) if reduced else 0}
    classes = x.shape[class_dim(x.ndim)] if x.ndim else 0
    rows = x.size // classes if classes else 0
    index_targets = "target" in arrays and arrays["target"].shape != x.shape
    return {"class": int(classes), "rows": int(rows) if reduced else 0,
            "weights": int(rows) if reduction == "mean" and index_targets else 0}


def _matches(condition, function, kwargs, derived):
    """Whether a call meets an override's ``when``: a keyword of the function by its value (the reduction as
    resolved from the legacy spelling); ``feature`` by the features the case exercises (each listed one present);
    any other name by the case's derived axis of that name (spec/features.py: shape, weight, dtype, ...)."""
    for name, accepted in condition.items():
        accepted = accepted if isinstance(accepted, list) else [accepted]
        if name == "feature":
            if not set(accepted) <= set((derived or {}).get("features", ())):
                return False
            continue
        if name == "reduction" or name in spec.get(function).keywords:
            value = effective_reduction(kwargs) if name == "reduction" else kwargs.get(name)
        else:
            value = (derived or {}).get("axes", {}).get(name)
        if value not in accepted:
            return False
    return True


class RelativeBudget(NamedTuple):
    """The relative-accuracy check of one dtype: ``budget`` u of the dtype relative to each element's value, plus
    ``accumulation_budget`` u of the ``accumulation`` dtype relative to its scale, for the elements at least
    ``floor_factor`` times the dtype's smallest normal (a gradient: the largest upstream gradient, at least 1)."""

    budget: float
    accumulation: str
    accumulation_budget: float
    floor_factor: float = 1.0


class Budget(NamedTuple):
    """What one check of one case in one dtype is judged by: the scale budget (u of the dtype), the relative
    budget (None where the dtype has none), and for the grade the budgets of the ladder's orders, tightest first
    (empty where the order cannot show: a dtype coarser than its accumulation, or no sum)."""

    scale_u: float
    relative: RelativeBudget | None = None
    ladder: tuple = ()

    def grade(self, error_u):
        """The tightest order of the ladder whose budget holds the error; 'beyond' when none does."""
        if not self.ladder or error_u is None:
            return None
        return next((order for order, budget in self.ladder if error_u <= budget), "beyond")


def grade_rank(ladder, grade):
    """The position of a grade on the ladder ('beyond' after it), for the loosest grade of a group of checks."""
    return ladder.index(grade) if grade in ladder else len(ladder)


def _positive(value, path, field_path):
    """A budget: a finite number above 0 (NaN, inf, 0, negatives, booleans and strings are refused)."""
    try:
        number = None if isinstance(value, bool) or not isinstance(value, (int, float)) else float(value)
    except OverflowError:  # an integer too large for a float
        number = None
    if number is None or not math.isfinite(number) or number <= 0:
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:40]}..."
        raise CaseFileError(path, f"must be a finite number greater than 0, got {shown}", field_path=field_path)
    return number


def _budget_table(document, path):
    budgets = document.get("budgets")
    if not isinstance(budgets, dict):
        raise CaseFileError(path, "must be a mapping with a 'budgets' mapping", field_path="budgets")
    for function, checks in budgets.items():
        if function not in spec.function_names() or not isinstance(checks, dict):
            raise CaseFileError(path, f"must name a function of {spec.function_names()} with a mapping of checks",
                                field_path=f"budgets.{function}")
        for check, per_dtype in checks.items():
            missing = set(DTYPES) - set(per_dtype if isinstance(per_dtype, dict) else {})
            if check not in budgeted_checks() or missing:
                raise CaseFileError(path, f"needs a check in {budgeted_checks()} with a budget for every dtype "
                                    f"(missing {sorted(missing)})", field_path=f"budgets.{function}.{check}")
            for dtype, value in per_dtype.items():
                _positive(value, path, f"budgets.{function}.{check}.{dtype}")
    return budgets


def _overrides(document, path):
    overrides = document.get("overrides", [])
    if not isinstance(overrides, list):
        raise CaseFileError(path, "must be a list of overrides", field_path="overrides")
    for number, override in enumerate(overrides):
        where = f"overrides.{number}"
        if not isinstance(override, dict) or not {"function", "budgets", "reason"} <= set(override):
            raise CaseFileError(path, "an override needs function, budgets and reason", field_path=where)
        if not isinstance(override["budgets"], dict) or not isinstance(override.get("when", {}), dict):
            raise CaseFileError(path, "budgets and when must be mappings", field_path=where)
        if override["function"] not in spec.function_names():
            raise CaseFileError(path, f"must be one of {spec.function_names()}, got {override['function']!r}",
                                field_path=f"{where}.function")
        if "check" in override and override["check"] not in budgeted_checks():
            raise CaseFileError(path, f"must be one of {budgeted_checks()}, got {override['check']!r}",
                                field_path=f"{where}.check")
        if not isinstance(override["reason"], str) or not override["reason"].strip():
            raise CaseFileError(path, "must be a non-empty string", field_path=f"{where}.reason")
        for name, accepted in override.get("when", {}).items():
            values = accepted if isinstance(accepted, list) else [accepted]
            if not isinstance(name, str) or any(isinstance(v, (dict, list)) for v in values):
                raise CaseFileError(path, "a condition names a keyword argument and gives a value or a list of values",
                                    field_path=f"{where}.when.{name}")
        for dtype, value in override["budgets"].items():
            if dtype not in DTYPES:
                raise CaseFileError(path, f"unknown dtype {dtype!r}", field_path=f"{where}.budgets")
            _positive(value, path, f"{where}.budgets.{dtype}")
    return overrides


def _relative(document, path):
    """The relative-accuracy check: {"roundings": the default number of roundings to the dtype a kernel may make,
    "per_rounding": {dtype: u relative to the value per rounding}} (the dtypes it applies to)."""
    section = document.get("relative", {"per_rounding": {}})
    if not isinstance(section, dict) or not isinstance(section.get("per_rounding"), dict):
        raise CaseFileError(path, "must be a mapping with 'per_rounding' (and 'roundings')", field_path="relative")
    unknown = [dtype for dtype in section["per_rounding"] if dtype not in DTYPES]
    if unknown:
        raise CaseFileError(path, f"unknown dtype {unknown[0]!r}; accepted: {', '.join(DTYPES)}",
                            field_path="relative.per_rounding")
    roundings = section.get("roundings", 2)
    if isinstance(roundings, bool) or not isinstance(roundings, int) or roundings < 1:
        raise CaseFileError(path, f"must be a whole number of roundings of at least 1, got {roundings!r}",
                            field_path="relative.roundings")
    return {"roundings": roundings, "per_rounding": {
        dtype: _positive(value, path, f"relative.per_rounding.{dtype}") for dtype, value in
        section["per_rounding"].items()}}


def _order(value, path, field_path):
    try:
        parse_order(value)
    except ValueError as error:
        raise CaseFileError(path, str(error), field_path=field_path) from None
    return str(value)


def _accumulation(document, path):
    """The accumulation model: lambda, the default order, the grade ladder, each dtype's accumulation dtype, and
    the sums of each function's checks. Absent: no accumulation term (flat budgets)."""
    section = document.get("accumulation", {})
    if not isinstance(section, dict):
        raise CaseFileError(path, "must be a mapping (lambda, order, grades, dtypes, sums)", field_path="accumulation")
    lam = _positive(section.get("lambda", 1), path, "accumulation.lambda") if section else 0.0
    grades = section.get("grades", [])
    if not isinstance(grades, list):
        raise CaseFileError(path, "must be a list of orders, tightest first", field_path="accumulation.grades")
    dtypes = section.get("dtypes", {})
    if not isinstance(dtypes, dict) or any(k not in DTYPES or v not in DTYPES for k, v in dtypes.items()):
        raise CaseFileError(path, f"must map dtypes to their accumulation dtype ({', '.join(DTYPES)})",
                            field_path="accumulation.dtypes")
    sums = section.get("sums", {})
    for function, checks in (sums.items() if isinstance(sums, dict) else [(None, None)]):
        valid = function in spec.function_names() and isinstance(checks, dict) and all(
            check in budgeted_checks() and isinstance(names, list) and all(name in SUM_LENGTHS for name in names)
            for check, names in checks.items())
        if not valid:
            raise CaseFileError(path, f"must map a function and its checks to lists of sums ({', '.join(SUM_LENGTHS)})",
                                field_path=f"accumulation.sums.{function}")
    return {"lambda": lam, "order": _order(section.get("order", "sequential"), path, "accumulation.order"),
            "grades": [_order(g, path, f"accumulation.grades.{i}") for i, g in enumerate(grades)],
            "dtypes": dtypes, "sums": sums}


def _check_complete(budgets, path):
    """Every budget a run looks up (each record's checks): a file without one would fail every case of that
    function as it runs."""
    for function in spec.ALL_FUNCTIONS:
        for check in spec.get(function).checks:
            if check not in budgets.get(function, {}):
                raise CaseFileError(path, f"has no budget for {function} {check}; a budget file gives every check "
                                    "of every function's record (value, grad_<tensor>, other outputs)",
                                    field_path=f"budgets.{function}")


def load_document(document, path):
    """The fields of Tolerances from a parsed budget file, every number and name checked."""
    if not isinstance(document, dict):
        raise CaseFileError(path, "must be a mapping with a 'budgets' mapping", field_path="budgets")
    budgets = _budget_table(document, path)
    fields = {"budgets": budgets, "overrides": _overrides(document, path), "relative": _relative(document, path),
              "accumulation": _accumulation(document, path)}
    _check_complete(budgets, path)
    return fields


@dataclass
class Tolerances:
    budgets: dict  # function -> check -> dtype -> budget in u (the per-element chain)
    overrides: list  # {"function", "check" (optional), "when", "budgets": {dtype: budget}, "reason"}
    source: str = ""
    relative: dict = field(default_factory=dict)  # roundings, per_rounding: dtype -> u relative to the value
    accumulation: dict = field(default_factory=dict)  # lambda, order, grades, dtypes, sums (docs/tolerances.md)

    @classmethod
    def load(cls, path=None):
        path = Path(path or TOLERANCES_PATH)
        return cls(**load_document(read_yaml(path), path), source=str(path))

    @property
    def default_order(self):
        return self.accumulation.get("order", "sequential")

    def chain(self, function, check, dtype, kwargs, derived=None):
        """The per-element budget: the table's, then the matching overrides in order (a later one wins);
        ``derived`` ({"axes", "features"}) is what overrides may match besides keywords."""
        value = self.budgets[function][check][dtype]
        for override in self.overrides:
            if override["function"] != function or override.get("check", check) != check:
                continue
            if dtype in override["budgets"] and _matches(override.get("when", {}), function, kwargs, derived):
                value = override["budgets"][dtype]
        return float(value)

    def _computation_u(self, function, check, accumulation_dtype, kwargs, lengths, order, derived=None):
        """The error of the computation in the accumulation dtype, in its u: its chain plus the sums."""
        sums = self.accumulation.get("sums", {}).get(function, {}).get(check, ())
        return self.chain(function, check, accumulation_dtype, kwargs, derived) + \
            accumulation_u([lengths.get(name, 0) for name in sums], order, self.accumulation.get("lambda", 0.0))

    def relative_u(self, dtype, roundings=None):
        """The relative check's budget of a dtype for a kernel that rounds to it ``roundings`` times (default: the
        file's), or None where the dtype has no relative check."""
        per_rounding = self.relative.get("per_rounding", {}).get(dtype)
        return None if per_rounding is None else per_rounding * (roundings or self.relative["roundings"])

    def resolve(self, function, check, dtype, kwargs, lengths, order=None, factor=1.0, roundings=None,
                derived=None):
        """The Budget of one check (value, grad_input, grad_target) of a call in a dtype, for sums of these lengths
        (sum_lengths) in this order (default: the file's), times a case's tolerance factor, for a kernel that rounds
        to the dtype ``roundings`` times (default: the file's); ``derived`` holds the case's axes and features,
        which overrides may match."""
        order = order or self.default_order
        accumulation_dtype = self.accumulation.get("dtypes", {}).get(dtype, dtype)
        computation = self._computation_u(function, check, accumulation_dtype, kwargs, lengths, order, derived)
        if accumulation_dtype == dtype:
            ladder = tuple((name, factor * self._computation_u(function, check, dtype, kwargs, lengths, name, derived))
                           for name in self.accumulation.get("grades", ()))
            return Budget(factor * computation, None, ladder if _has_sum(self, function, check, lengths) else ())
        conversion = float_format(accumulation_dtype).unit_roundoff / float_format(dtype).unit_roundoff
        scale_u = self.chain(function, check, dtype, kwargs, derived) + computation * conversion
        relative, relative_u = None, self.relative_u(dtype, roundings)
        if relative_u is not None:
            u = float_format(dtype).unit_roundoff
            relative = RelativeBudget(factor * relative_u, accumulation_dtype,
                                      computation * (1 + u) ** (roundings or self.relative["roundings"]))
        return Budget(factor * scale_u, relative)


def _has_sum(tolerances, function, check, lengths):
    sums = tolerances.accumulation.get("sums", {}).get(function, {}).get(check, ())
    return any(lengths.get(name, 0) > 1 for name in sums)


def judged_by(tolerances, declared=None):
    """What judged a run, for every summary: the budget file, the order the sums were judged by (declared by the
    backend, or the default that every correct order meets), lambda, the grade ladder, the relative budgets, the
    layers of checks (the documented semantics, and torch's API conventions where they apply), and the backend's
    declared choices (backends.DECLARABLE)."""
    declared = dict(declared or {})
    order = declared.get("summation_order") or tolerances.default_order
    return {"source": tolerances.source, "summation_order": order,
            "order_declared": bool(declared.get("summation_order")),
            "lambda": tolerances.accumulation.get("lambda"), "grades": list(tolerances.accumulation.get("grades", ())),
            "relative": {dtype: tolerances.relative_u(dtype, declared.get("dtype_roundings"))
                         for dtype in tolerances.relative.get("per_rounding", {})},
            "dtype_roundings": declared.get("dtype_roundings") or tolerances.relative.get("roundings"),
            "layers": ["semantics"] + (["torch conventions"] if declared.pop("conventions", None) == "torch" else []),
            "declared": declared}
