"""Point at the fault: which parameter values all failing (case, dtype) pairs of a function share.

A broken kernel usually fails one parameter value (label_smoothing > 0, a weight, float16); listing the values
that every failure has, and that passing pairs mostly lack, names that value before anyone reads a case.
"""
from collections import Counter, defaultdict

DEFAULTS = {"reduction": "mean", "ignore_index": -100, "label_smoothing": 0.0, "log_target": False, "dim": None}
SHOWN = 3


def features(case, dtype):
    """The parameter values of a case in a dtype, as 'name=value' strings (defaults filled in)."""
    kwargs = {name: case.kwargs.get(name, default) for name, default in DEFAULTS.items()}
    values = {f"{name}={value}" for name, value in kwargs.items() if name in case.kwargs or value is not None}
    input_spec, target_spec = case.inputs["input"], case.inputs.get("target", {})
    values |= {f"dtype={dtype}", f"form={case.form}", f"weight={'given' if 'weight' in case.inputs else 'none'}",
               f"target={target_spec.get('kind', 'float') if target_spec else 'none'}"}
    if "shape" in input_spec:
        values.add(f"input.ndim={len(input_spec['shape'])}")
    return values


def explain(selected, records):
    """{function: [sentence, ...]} for each function with failures: the values shared by all its failures."""
    failed_pairs = {(r["case"], r["dtype"]) for r in records if r["status"] == "failed"}
    failing, passing = defaultdict(Counter), defaultdict(Counter)
    totals = Counter()
    for case, dtypes in selected:
        for dtype in dtypes:
            bucket = failing if (case.full_id, dtype) in failed_pairs else passing
            totals[case.function, bucket is failing] += 1
            bucket[case.function].update(features(case, dtype))
    sentences = {}
    for function, counts in failing.items():
        n_failing, n_passing = totals[function, True], totals[function, False]
        shared = [(passing[function][value], value) for value, count in counts.items() if count == n_failing]
        shared = [(p, v) for p, v in shared if p < n_passing]  # a value every pair has explains nothing
        sentences[function] = [
            f"all {n_failing} failing (case, dtype) pairs have {value}; {in_passing} of {n_passing} passing pairs do"
            for in_passing, value in sorted(shared)[:SHOWN]]
    return sentences
