"""What judged a run, as the summaries say it: the lines every report prints from verdict.tolerances.judged_by."""

DECLARED_TEXT = {"summation_order": "summation order {}", "in_place_gradient": "gradient written into the logits",
                 "loss_dtype": "losses of 16-bit logits in {}", "dtype_roundings": "{} roundings to the dtype"}


def _shown(value):
    """A declared value as a summary shows it: a per-function mapping as "float32 (linear_cross_entropy)"."""
    if isinstance(value, dict):
        return ", ".join(f"{dtype} ({function})" for function, dtype in value.items())
    return value


def describe_judgement(judged):
    """The summary lines that say what judged a run (judged_by), e.g. "budgets: sums judged as any order ..."."""
    if not judged:
        return []
    order = judged["summation_order"]
    how = f"the declared order {order}" if judged.get("order_declared") else \
        f"any order (the {order} bound)" if order == "sequential" else f"the default order {order}"
    relative = ", ".join(f"{dtype} {value:g} u" for dtype, value in judged.get("relative", {}).items())
    roundings = judged.get("dtype_roundings")
    lines = [f"budgets: sums judged as {how}, lambda {judged.get('lambda'):g}"
             + (f"; relative to the value {relative} ({roundings} roundings to the dtype)" if relative else "")
             + "; grade: the tightest order whose bound holds every measured error"]
    layers = judged.get("layers", ["semantics"])
    lines.append("checks: the documented semantics" + (" and torch's API conventions" if len(layers) > 1 else
                 " (torch's API conventions do not apply: --conventions torch adds them)"))
    choices = [DECLARED_TEXT[name].format(_shown(value)) for name, value in judged.get("declared", {}).items()
               if name in DECLARED_TEXT]
    if choices:
        lines.append("declared by the backend: " + "; ".join(choices))
    return lines
