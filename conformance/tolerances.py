"""The error budgets, read from one data file (cases/tolerances.yaml; docs/tolerances.md gives the model).

A budget is a number of units of the dtype's roundoff u, relative to the oracle's scale. It is looked up per
function, check (value, grad_input, grad_target) and dtype, then the file's overrides apply in order (a later
matching override wins): an override names the function, optionally the check, and conditions on keyword
arguments (``reduction`` is matched after resolving the legacy size_average/reduce spelling).
"""
from dataclasses import dataclass
from pathlib import Path

from oracle import OracleError
from oracle._reduction import KL_REDUCTIONS, resolve_reduction

from .casefile import CASES_DIR, CaseFileError, read_yaml
from .dtypes import DTYPES

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


@dataclass
class Tolerances:
    budgets: dict  # function -> check -> dtype -> budget in u
    overrides: list  # {"function", "check" (optional), "when", "budgets": {dtype: budget}, "reason"}
    source: str = ""

    @classmethod
    def load(cls, path=None):
        path = Path(path or TOLERANCES_PATH)
        document = read_yaml(path)
        if not isinstance(document, dict) or not isinstance(document.get("budgets"), dict):
            raise CaseFileError(path, "must be a mapping with a 'budgets' mapping", field_path="budgets")
        for function, checks in document["budgets"].items():
            for check, per_dtype in checks.items():
                missing = set(DTYPES) - set(per_dtype or {})
                if check not in CHECKS or missing:
                    raise CaseFileError(path, f"needs a check in {CHECKS} with a budget for every dtype "
                                        f"(missing {sorted(missing)})", field_path=f"budgets.{function}.{check}")
        for number, override in enumerate(document.get("overrides", [])):
            if not {"function", "budgets", "reason"} <= set(override):
                raise CaseFileError(path, "an override needs function, budgets and reason",
                                    field_path=f"overrides.{number}")
        return cls(document["budgets"], document.get("overrides", []), str(path))

    def budget(self, function, check, dtype, kwargs):
        value = self.budgets[function][check][dtype]
        for override in self.overrides:
            if override["function"] != function or override.get("check", check) != check:
                continue
            if dtype in override["budgets"] and _matches(override.get("when", {}), kwargs):
                value = override["budgets"][dtype]
        return float(value)
