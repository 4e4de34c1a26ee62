"""Pairwise coverage of the corpus: every pair of values of two parameter axes of a function (its record's axes:
reduction, weight kind, ignore_index kind, label_smoothing, target kind, shape kind, dtype, upstream-gradient
kind, dim) occurs in at least one (case, dtype) pair that expects a value, unless the pair is impossible.

``missing_pairs`` computes what the loaded corpus lacks; ``python -m conformance.corpus.coverage --write DIR``
writes, per function, the cases of a greedy covering array for exactly those pairs (cases/pairwise/ holds the
result; docs/case-format.md, "Pairwise coverage"). The axis values of a case are derived from its inputs
(features.case_axes), never tagged by hand.
"""
import copy
import itertools
from collections import defaultdict

from ..inputs.generate import make_inputs, rounded_inputs
from ..spec import get
from ..spec.features import case_axes, function_axes

REDUCED = ("mean", "sum", "batchmean")
IMPOSSIBLE = {  # (axis, value, axis, value) pairs no valid case has, with the reason
    ("target", "probabilities", "ignore_index", "none"): "probability targets have no ignored class",
    ("target", "probabilities", "ignore_index", "ignored"): "probability targets have no ignored class",
    ("target", "probabilities", "ignore_index", "class"): "a class ignore_index is an error with probabilities",
    ("target", "index", "ignore_index", "n/a"): "n/a is the ignore_index kind of probability targets only",
    **{("reduction", r, "grad_output", "one-first"): "a reduced loss has one upstream gradient: 'one' already"
       for r in REDUCED},
}
UNCOUNTED = {"grad_output": ("none",)}  # a case without gradients says nothing about upstream gradients


def impossible(first, second):
    """The reason a pair of (axis, value) items cannot occur, or None."""
    return IMPOSSIBLE.get((*first, *second)) or IMPOSSIBLE.get((*second, *first))


def axis_pairs(function):
    """Every pair of (axis, value) items of a function that a valid case can have."""
    axes = function_axes(function)
    items = [(axis, value) for axis, values in axes.items() for value in values
             if value not in UNCOUNTED.get(axis, ())]
    return {tuple(sorted((a, b))) for a, b in itertools.combinations(items, 2)
            if a[0] != b[0] and not impossible(a, b)}


def covered_pairs(cases):
    """{function: set of ((axis, value), (axis, value)) pairs} that the value cases exercise, axes sorted."""
    covered = defaultdict(set)
    for case in cases:
        if case.expect_error is not None:
            continue
        source = make_inputs(case, input_values=False)  # what a case exercises needs only shapes and targets
        for dtype in case.dtypes:
            axes = case_axes(case, rounded_inputs(source, dtype), dtype)
            items = sorted((axis, value) for axis, value in axes.items() if value not in UNCOUNTED.get(axis, ()))
            covered[case.function].update(itertools.combinations(items, 2))
    return covered


def missing_pairs(cases, functions=None):
    """{function: sorted pairs no case covers}; empty lists when the corpus is pairwise complete."""
    covered = covered_pairs(cases)
    functions = functions or sorted({case.function for case in cases})
    return {function: sorted(axis_pairs(function) - covered[function]) for function in functions}


def describe(pair):
    (a, x), (b, y) = pair
    return f"{a}={x} with {b}={y}"


# ---- writing the cases that cover the missing pairs ----------------------------------------------------------

def build_case(function, row, number):
    """A case dict (the YAML form) whose derived axes are exactly ``row``'s values (the record builds its part)."""
    inputs, kwargs = get(function).build_case(row)
    label = "-".join(f"{k}={v}" for k, v in sorted(row.items()) if k not in ("dtype",)).replace("/", "")
    return {"id": f"pairwise-{number:03d}-{label}"[:200], "dtypes": [row["dtype"]], "grad_output": row["grad_output"],
            "kwargs": kwargs, "inputs": inputs}


def _row_value_choices(function):
    axes = function_axes(function)
    return {axis: [v for v in values if v not in UNCOUNTED.get(axis, ())] for axis, values in axes.items()}


def _consistent(row):
    return not any(impossible(a, b) for a, b in itertools.combinations(sorted(row.items()), 2))


def covering_rows(function, missing):
    """Rows (axis -> value) that together cover every pair in ``missing``: greedy, deterministic (AETG-style:
    each row starts from the first uncovered pair, then takes per axis the value covering most pairs)."""
    choices, left, rows = _row_value_choices(function), set(missing), []
    while left:
        (a, x), (b, y) = min(left)
        row = {a: x, b: y}
        for axis in sorted(choices):
            if axis in row:
                continue
            def gain(value, row=row, axis=axis):
                trial = {**row, axis: value}
                return -1 if not _consistent(trial) else sum(
                    tuple(sorted(((axis, value), item))) in left for item in row.items())
            row[axis] = max(choices[axis], key=gain)
        rows.append(row)
        left -= {tuple(sorted(pair)) for pair in itertools.combinations(row.items(), 2)}
    return rows


def write_pairwise(directory, cases):
    """Write DIRECTORY/<function>.yaml with the cases that cover what ``cases`` leaves uncovered."""
    from pathlib import Path

    import yaml

    from .resources import write_atomic

    directory = Path(directory)
    for function, pairs in missing_pairs(cases).items():
        path = directory / f"{function}.yaml"
        if not pairs:
            path.unlink(missing_ok=True)
            continue
        rows = covering_rows(function, pairs)
        built = [copy.deepcopy(build_case(function, row, number)) for number, row in enumerate(rows, 1)]
        document = {"function": function, "description": (
            f"Generated by `python -m conformance.corpus.coverage --write {directory}`: {len(rows)} cases covering the "
            f"{len(pairs)} pairs of parameter values the rest of the corpus lacks (docs/case-format.md, "
            "'Pairwise coverage'). Regenerate instead of editing."),
            "cases": built}
        write_atomic(path, yaml.safe_dump(document, sort_keys=False, width=120))
        _verify(path, rows)


def _verify(path, rows):
    """Every written case exercises exactly the axis values of its row (else the builder is wrong)."""
    from .casefile import load_file

    for case, row in zip(load_file(path), rows):
        arrays = rounded_inputs(make_inputs(case, input_values=False), case.dtypes[0])
        derived = case_axes(case, arrays, case.dtypes[0])
        wrong = {axis: (value, derived.get(axis)) for axis, value in row.items() if derived.get(axis) != value}
        if wrong:
            raise AssertionError(f"{path}: case {case.id} exercises {wrong} (wanted, derived)")


def main(argv=None):
    import argparse

    from .casefile import CASES_DIR, load_cases

    parser = argparse.ArgumentParser(prog="python -m conformance.corpus.coverage", description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="DIR", help="write the covering cases for the missing pairs to DIR")
    args = parser.parse_args(argv)
    pairwise = (CASES_DIR / "pairwise").resolve()
    cases = [c for c in load_cases() if "large" not in c.tags and not str(c.source).startswith(str(pairwise))]
    if args.write:
        write_pairwise(args.write, cases)
    for function, pairs in missing_pairs(load_cases()).items():
        print(f"{function}: {len(pairs)} missing pairs" + "".join(f"\n  {describe(p)}" for p in pairs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
