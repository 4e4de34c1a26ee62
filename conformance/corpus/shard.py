"""Splitting a run over N machines (``run --shard K/N``), and the shard's part of the selection.

The (case, dtype) pairs of the selection are dealt to the shards by estimated cost, largest first, each to the
shard with the least cost so far (ties to the lower shard, pairs in selection order): deterministic for the same
corpus and options, and balanced. Every pair keeps its position in the whole selection, written into the
results file, so that ``loss-conformance merge`` puts the shards back in the order of an unsharded run.
"""
import math
import re

from ..inputs.generate import input_shape

PAIR_OVERHEAD = 2000  # the fixed cost of a pair (a backend call, comparisons), in input elements
_SPEC = re.compile(r"(\d+)/(\d+)")


class ShardError(ValueError):
    """A --shard argument that is not K/N with 1 <= K <= N."""


def parse_shard(text):
    """(index, count) from "K/N", 1-based K; ShardError otherwise."""
    match = _SPEC.fullmatch(str(text).strip())
    index, count = (int(match[1]), int(match[2])) if match else (0, 0)
    if not 1 <= index <= count:
        raise ShardError(f"--shard {text!r} is not K/N with 1 <= K <= N, e.g. 1/4")
    return index, count


def pair_cost(case):
    """The estimated cost of one (case, dtype) pair: its input elements, three times with gradients."""
    elements = math.prod(input_shape(case.inputs["input"])) if "input" in case.inputs else 0
    return PAIR_OVERHEAD + elements * (3 if case.grad and case.expect_error is None else 1)


def shard_selection(selected, index, count):
    """(the shard's (case, dtypes) list in selection order, the positions of its pairs in the whole selection)."""
    pairs = [(position, case, dtype) for position, (case, dtype) in
             enumerate((case, dtype) for case, dtypes in selected for dtype in dtypes)]
    loads, owner = [0] * count, {}
    for position, case, _ in sorted(pairs, key=lambda pair: (-pair_cost(pair[1]), pair[0])):
        shard = min(range(count), key=lambda k: (loads[k], k))
        loads[shard] += pair_cost(case)
        owner[position] = shard
    mine = [(position, case, dtype) for position, case, dtype in pairs if owner[position] == index - 1]
    chosen, seen = [], {}
    for _, case, dtype in mine:
        if case.full_id not in seen:
            seen[case.full_id] = len(chosen)
            chosen.append((case, []))
        chosen[seen[case.full_id]][1].append(dtype)
    return chosen, [position for position, _, _ in mine]
