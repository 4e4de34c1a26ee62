"""The error budgets, read from one data file (cases/tolerances.yaml; docs/tolerances.md gives the model).

A budget is a number of units of the dtype's roundoff u, relative to the oracle's scale. It is looked up per
function, check (value, grad_input, grad_target) and dtype, then the file's overrides apply in order (a later
matching override wins): an override names the function, optionally the check, and conditions on keyword
arguments (``reduction`` is matched after resolving the legacy size_average/reduce spelling). The ``relative``
section gives, per dtype, the budget of the second check, relative to each element's own value. Every budget
is checked when the file is loaded: a NaN, an infinity, zero or a negative number is refused.
"""
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from oracle import OracleError
from oracle._reduction import KL_REDUCTIONS, resolve_reduction

from .casefile import CASES_DIR, CaseFileError, read_yaml
from .dtypes import DTYPES
from .names import FUNCTIONS

TOLERANCES_PATH = CASES_DIR / "tolerances.yaml"
CHECKS = ("value", "grad_input", "grad_target")


def effective_reduction(kwargs):
    """The reduction in force, resolved by the oracle's own rule (legacy size_average/reduce override it)."""
    try:
        return resolve_reduction(kwargs.get("reduction", "mean"), kwargs.get("size_average"), kwargs.get("reduce"),
                                 KL_REDUCTIONS)
    except OracleError:  # an invalid reduction (an error case): matched as written
        return kwargs.get("reduction")


def _matches(condition, kwargs):
    for name, accepted in condition.items():
        value = effective_reduction(kwargs) if name == "reduction" else kwargs.get(name)
        if value not in (accepted if isinstance(accepted, list) else [accepted]):
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
        if function not in FUNCTIONS or not isinstance(checks, dict):
            raise CaseFileError(path, f"must name a function of {FUNCTIONS} with a mapping of checks",
                                field_path=f"budgets.{function}")
        for check, per_dtype in checks.items():
            missing = set(DTYPES) - set(per_dtype if isinstance(per_dtype, dict) else {})
            if check not in CHECKS or missing:
                raise CaseFileError(path, f"needs a check in {CHECKS} with a budget for every dtype "
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
        if override["function"] not in FUNCTIONS:
            raise CaseFileError(path, f"must be one of {FUNCTIONS}, got {override['function']!r}",
                                field_path=f"{where}.function")
        if "check" in override and override["check"] not in CHECKS:
            raise CaseFileError(path, f"must be one of {CHECKS}, got {override['check']!r}",
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
    """{dtype: RelativeBudget} of the relative-accuracy check (the dtypes it applies to)."""
    section = document.get("relative", {"budgets": {}})
    if not isinstance(section, dict) or not isinstance(section.get("budgets"), dict):
        raise CaseFileError(path, "must be a mapping with 'budgets', 'accumulation' and 'accumulation_budget'",
                            field_path="relative")
    accumulation = section.get("accumulation", "float32")
    if accumulation not in DTYPES:
        raise CaseFileError(path, f"must be one of {DTYPES}", field_path="relative.accumulation")
    if not section["budgets"]:
        return {}
    extra = _positive(section.get("accumulation_budget"), path, "relative.accumulation_budget")
    unknown = [dtype for dtype in section["budgets"] if dtype not in DTYPES]
    if unknown:
        raise CaseFileError(path, f"unknown dtype {unknown[0]!r}; accepted: {', '.join(DTYPES)}",
                            field_path="relative.budgets")
    return {dtype: RelativeBudget(_positive(value, path, f"relative.budgets.{dtype}"), accumulation, extra)
            for dtype, value in section["budgets"].items()}


REQUIRED_CHECKS = {function: ("value", "grad_input") + (("grad_target",) if function in ("cross_entropy", "kl_div")
                                                          else ()) for function in FUNCTIONS}


def _check_complete(budgets, path):
    """Every budget a run looks up: a file without one would fail every case of that function as it runs."""
    for function, checks in REQUIRED_CHECKS.items():
        for check in checks:
            if check not in budgets.get(function, {}):
                raise CaseFileError(path, f"has no budget for {function} {check}; a budget file gives value and "
                                    "grad_input of every function, and grad_target of cross_entropy and kl_div",
                                    field_path=f"budgets.{function}")


@dataclass
class Tolerances:
    budgets: dict  # function -> check -> dtype -> budget in u
    overrides: list  # {"function", "check" (optional), "when", "budgets": {dtype: budget}, "reason"}
    source: str = ""
    relative: dict = field(default_factory=dict)  # dtype -> RelativeBudget

    @classmethod
    def load(cls, path=None):
        path = Path(path or TOLERANCES_PATH)
        document = read_yaml(path)
        if not isinstance(document, dict):
            raise CaseFileError(path, "must be a mapping with a 'budgets' mapping", field_path="budgets")
        tolerances = cls(_budget_table(document, path), _overrides(document, path), str(path),
                         _relative(document, path))
        _check_complete(tolerances.budgets, path)
        return tolerances

    def budget(self, function, check, dtype, kwargs):
        value = self.budgets[function][check][dtype]
        for override in self.overrides:
            if override["function"] != function or override.get("check", check) != check:
                continue
            if dtype in override["budgets"] and _matches(override.get("when", {}), kwargs):
                value = override["budgets"][dtype]
        return float(value)

    def relative_budget(self, dtype):
        """The RelativeBudget of a dtype, or None where the relative check does not apply (float32, float64)."""
        return self.relative.get(dtype)
