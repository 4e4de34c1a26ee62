"""Determinism and batch invariance: what RL and inference users ask of a kernel beside its accuracy.

- ``deterministic``: the same call, made again with fresh tensors, gives bit-identical values and gradients.
- ``batch_invariant``: where rows are independent (a loss with reduction 'none', a softmax along a dim other
  than the batch dim), the first row computed alone (a batch of 1) and inside a batch of 64 (the case's rows
  repeated) gives the same bits, value and gradient; rows of up to 2048 elements (the batch's cost).

Both compare the backend with itself, bit for bit (NaN payloads aside), never with the oracle. A difference fails
the check and names the first differing element. docs/results.md lists the checks; docs/tolerances.md says why
they are exact.
"""
from dataclasses import replace

import numpy as np

from .. import spec
from ..spec.features import effective_reduction
from .compare import CheckResult

BATCH = 64  # the rows of the batch the first row is computed in
BATCH_ELEMENTS = 2**17  # the largest batch checked: rows of up to 2048 elements (cost, docs/results.md)


def _arrays_of(outcome):
    """{name: array} of what a call returned: its outputs, then each gradient as "grad_<name>"."""
    named = {"value": outcome.value, **outcome.outputs}
    named.update({f"grad_{name}": grad for name, grad in outcome.grads.items()})
    return {name: np.asarray(array) for name, array in named.items() if array is not None}


def _first_difference(first, second):
    """A sentence naming the first element whose bits differ between two {name: array}, or None."""
    for name in first:
        a, b = first[name], second.get(name)
        if b is None or a.shape != b.shape:
            return f"{name}: shape {a.shape} then {None if b is None else b.shape}"
        differ = (a != b) & ~(np.isnan(a) & np.isnan(b))
        if np.any(differ):
            index = tuple(int(i) for i in np.unravel_index(int(np.argmax(differ)), a.shape)) if a.ndim else ()
            return f"{name}{list(index)}: {a[index]!r} then {b[index]!r} ({int(differ.sum())} of {a.size} elements)"
    return None


def _result(check, first, second, what):
    if first.error or second.error or first.unsupported or second.unsupported:
        failing = next(o for o in (first, second) if o.error or o.unsupported)
        reason = (failing.error or failing.unsupported)[0]
        return CheckResult(check, "skipped", f"not compared: a call of the {what} raised {reason}")
    difference = _first_difference(_arrays_of(first), _arrays_of(second))
    if difference is None:
        return CheckResult(check, "passed", n=1)
    return CheckResult(check, "failed", f"{what} differ in their bits: {difference}", n=1, bad=1)


def deterministic_check(call, outcome, run):
    """The ``deterministic`` check: ``run(call)`` (the backend, fresh tensors) again, against ``outcome``."""
    return _result("deterministic", outcome, run(call), "two identical calls")


def batch_rows(function, kwargs, arrays):
    """Whether the rows along dim 0 are computed independently for this call: a loss with reduction 'none' or a
    softmax along another dim, on a batched input."""
    record, x = spec.get(function), arrays["input"]
    if x.ndim < 2 or x.shape[0] == 0 or BATCH * (x.size // x.shape[0]) > BATCH_ELEMENTS:
        return False
    if record.kind == "softmax":
        dim = kwargs.get("dim")
        return isinstance(dim, int) and not isinstance(dim, bool) and dim % x.ndim != 0
    return effective_reduction(kwargs) == "none"


def batch_invariance_check(call, run):
    """The ``batch_invariant`` check: the first row alone, and as the first of a batch of BATCH (the call's rows
    repeated), contiguous; None where the rows are not independent."""
    if not batch_rows(call.function, call.kwargs, call.arrays):
        return None
    rows = call.arrays["input"].shape[0]
    record = spec.get(call.function)
    batched = [name for name in call.arrays if record.tensor(name).batched and np.ndim(call.arrays[name]) >= 1
               and call.arrays[name].shape[0] == rows]
    order = np.arange(BATCH) % rows

    def sliced(index):
        arrays = {name: array[index] if name in batched else array for name, array in call.arrays.items()}
        upstream = None if call.grad_output is None else np.asarray(call.grad_output)[index]
        return replace(call, arrays=arrays, grad_output=upstream, layouts={})

    alone, inside = run(sliced(slice(0, 1))), run(sliced(order))
    if inside.value is not None:  # the batch's first row is what is compared
        inside.value = np.asarray(inside.value)[:1]
        inside.outputs = {name: np.asarray(array)[:1] for name, array in inside.outputs.items()}
    # only per-row gradients: a gradient of a tensor the rows share (a linear layer's weight) sums over the batch
    for outcome in (alone, inside):
        outcome.grads = {name: np.asarray(array)[:1] for name, array in outcome.grads.items() if name in batched}
    return _result("batch_invariant", alone, inside, f"first row alone and in a batch of {BATCH}")
