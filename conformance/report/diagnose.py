"""Point at the fault: the parameters whose values separate the failing (case, dtype) pairs from the passing.

A broken kernel usually fails for some values of one parameter (label_smoothing > 0, a weight, float16); a
value that never fails beside one that mostly does names the parameter before anyone reads a case.
"""
from collections import defaultdict

from .. import spec

SHOWN = 3
MIN_PAIRS = 10  # a value seen on fewer pairs than this neither clears nor convicts its parameter


def features(case, dtype):
    """The parameter values of a case in a dtype, as 'name=value' strings (defaults filled in)."""
    kwargs = {name: case.kwargs.get(name, default) for name, default in spec.get(case.function).keywords.items()}
    values = {f"{name}={value}" for name, value in kwargs.items() if name in case.kwargs or value is not None}
    input_spec, target_spec = case.inputs["input"], case.inputs.get("target", {})
    values |= {f"dtype={dtype}", f"form={case.form}", f"weight={'given' if 'weight' in case.inputs else 'none'}",
               f"target={target_spec.get('kind', 'float') if target_spec else 'none'}"}
    if "shape" in input_spec:
        values.add(f"input.ndim={len(input_spec['shape'])}")
    return values


def _rates(selected, failed_pairs):
    """{function: {parameter: {value: [failing, total]}}} over the selected (case, dtype) pairs."""
    rates = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: [0, 0])))
    for case, dtypes in selected:
        for dtype in dtypes:
            failing = (case.full_id, dtype) in failed_pairs
            for feature in features(case, dtype):
                name, _, value = feature.partition("=")
                counts = rates[case.function][name][value]
                counts[0] += failing
                counts[1] += 1
    return rates


def explain(selected, records):
    """{function: [sentence, ...]}: the parameters whose values split the failures from the passes, such as
    "label_smoothing: 0.0 fails 0 of 230 pairs, 0.1 fails 150 of 180" (a value that never fails, beside one
    that mostly does)."""
    failed_pairs = {(r["case"], r["dtype"]) for r in records if r["status"] == "failed"}
    sentences = {}
    for function, parameters in _rates(selected, failed_pairs).items():
        if not any(f for values in parameters.values() for f, _ in values.values()):
            continue
        ranked = []
        for name, values in parameters.items():
            fractions = [failing / total for failing, total in values.values() if total >= MIN_PAIRS]
            spread = max(fractions) - min(fractions) if len(fractions) > 1 else 0
            if min(fractions, default=1) == 0 and spread >= 0.5:
                ranked.append((-spread, name, values))
        sentences[function] = [
            f"{name}: " + ", ".join(f"{value} fails {failing} of {total}"
                                    for value, (failing, total) in sorted(values.items()))
            for _, name, values in sorted(ranked)[:SHOWN]]
    return sentences
