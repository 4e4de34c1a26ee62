"""The Backend that checks a vocab-parallel implementation: each call's logits are cut into the ranks' shards
(contract.py), every rank of the world (world.py) computes its part, and the pieces are put together into one
Outcome that the ordinary checks judge against the unsharded oracle, with the ordinary budgets.

Beyond what one process could show, the ranks must agree: the same loss bits on every rank, the same error, no
gradient in the padding columns. A rank that disagrees, hangs or dies is a RankFailure: the call fails.
"""
from dataclasses import replace

import numpy as np

from .. import BackendLoadError, Capabilities, Outcome, Unsupported
from .contract import (SHARDINGS, SMOOTHING_CONVENTIONS, ShardingError, check_weight, class_axis_back,
                       class_last, keyword_arguments, load_implementation, plan, shard_request)
from .world import RankFailure, World, WorldError

# Features no vocab-parallel call can express: the contract's targets are class indices of a class-last input.
OUTSIDE_THE_CONTRACT = frozenset({"probability_targets", "shape:0-dim"})


class VocabParallelBackend:
    """``spec`` names the implementation (contract.load_implementation); ``timeout`` bounds one call on all ranks."""

    def __init__(self, spec, device="cpu", world_size=2, sharding=None, timeout=30.0, listen=None):
        try:
            self.implementation = load_implementation(spec)
        except Exception as error:  # noqa: BLE001 -- its import or constructor failed: a load error
            raise BackendLoadError(f"vocab-parallel implementation {spec!r} could not be loaded: "
                                   f"{type(error).__name__}: {error}") from None
        declared = tuple(getattr(self.implementation, "shardings", SHARDINGS))
        self.sharding = sharding or declared[0]
        if self.sharding not in declared:
            raise BackendLoadError(f"{spec!r} takes the shardings {', '.join(declared)}, not {self.sharding!r}")
        self.convention = getattr(self.implementation, "label_smoothing", "torch")
        if self.convention not in SMOOTHING_CONVENTIONS:
            raise BackendLoadError(f"{spec!r} declares label_smoothing {self.convention!r}; expected one of "
                                   f"{', '.join(SMOOTHING_CONVENTIONS)}")
        self.name = getattr(self.implementation, "name", spec)
        self.world_size, self.timeout, self.device = int(world_size), float(timeout), device
        self.world = World(spec, device, self.world_size, listen=listen, group_timeout=max(60.0, 4 * timeout))
        try:
            self.world.start()
        except WorldError as error:
            raise BackendLoadError(f"the {self.world_size} ranks of {spec!r} could not start: {error}") from None

    @property
    def capabilities(self):
        own = getattr(self.implementation, "capabilities", None) or Capabilities()
        return replace(own, functions=("cross_entropy",), api="array", differentiable=("input",),
                       unsupported=frozenset(own.unsupported) | OUTSIDE_THE_CONTRACT)

    def describe(self):
        description = dict(getattr(self.implementation, "describe", dict)())
        description.setdefault("name", self.name)
        return dict(description, world_size=self.world_size, sharding=self.sharding, device=self.device,
                    process_group="nccl" if self.device.startswith("cuda") else "gloo",
                    label_smoothing_convention=self.convention)

    def supports(self, call):
        try:
            self._plan(call)
        except ShardingError as error:
            return f"not expressible on {self.world_size} ranks ({self.sharding} shards): {error}"
        return None

    def _plan(self, call):
        """(the shards, the keyword arguments as the implementation takes them); ShardingError if inexpressible."""
        vocab_size = class_last(call.arrays["input"]).shape[-1]
        check_weight(call.arrays, vocab_size)
        return plan(vocab_size, self.world_size, self.sharding), keyword_arguments(call.kwargs, vocab_size,
                                                                                    self.convention)

    def run(self, call):
        try:
            shards, kwargs = self._plan(call)
        except ShardingError as error:
            raise Unsupported(str(error)) from None
        requests = [shard_request(call.arrays, shard, call.dtype, kwargs, call.grad_output) for shard in shards]
        replies = self.world.exchange(requests, self.timeout)
        return assemble(replies, call.arrays["input"].ndim, call.grad_output is not None)

    def close(self):
        self.world.close()


def _agreed(replies, key):
    """The replies' common value of ``key``, compared as exact bits; RankFailure naming the first rank that
    differs from rank 0."""
    first = replies[0][key]
    for rank, reply in enumerate(replies[1:], 1):
        if not _same(first, reply[key]):
            raise RankFailure(f"ranks disagree: rank {rank}'s {key} {_show(reply[key])} differs from rank 0's "
                              f"{_show(first)}")
    return first


def _same(first, other):
    if isinstance(first, np.ndarray) and isinstance(other, np.ndarray):
        return first.shape == other.shape and first.tobytes() == other.tobytes()
    return first == other


def _show(value):
    if isinstance(value, np.ndarray):
        return f"(shape {value.shape}, first {value.ravel()[:3].tolist()})"
    return repr(value)


def assemble(replies, ndim, wants_grad):
    """One Outcome of the ranks' replies: the agreed loss, the gradient shards side by side."""
    states = ["unsupported" if r["unsupported"] else "error" if r["error"] else "value" for r in replies]
    for rank, state in enumerate(states[1:], 1):
        if state != states[0]:
            what = {"unsupported": "said unsupported", "error": "raised", "value": "returned a value"}
            raise RankFailure(f"ranks disagree: rank 0 {what[states[0]]}, rank {rank} {what[state]}"
                              + "".join(f" ({r['error'][0]}: {r['error'][1][:200]})" for r in (replies[0],
                                        replies[rank]) if r["error"]))
    if states[0] == "unsupported":
        return Outcome(unsupported=replies[0]["unsupported"])
    if states[0] == "error":
        classes = [reply["error"][0] for reply in replies]
        differing = next((rank for rank, name in enumerate(classes) if name != classes[0]), None)
        if differing is not None:
            raise RankFailure(f"ranks disagree: rank 0 raised {classes[0]}, rank {differing} {classes[differing]}")
        return Outcome(error=replies[0]["error"])
    outcome = Outcome(value=_agreed(replies, "value"), dtype=_agreed(replies, "dtype"))
    outcome.modified_inputs = sorted({name for reply in replies for name in reply.get("modified", ())})
    if wants_grad:
        _gradient(replies, ndim, outcome)
    return outcome


def _gradient(replies, ndim, outcome):
    for rank, reply in enumerate(replies):
        if reply["grad_error"]:
            outcome.grad_error = (reply["grad_error"][0], f"on rank {rank}: {reply['grad_error'][1]}")
            return
    gradient = np.concatenate([r["grad"] for r in replies], axis=-1)
    problem = _padding_problem(replies, gradient)
    if problem:
        outcome.grad_error = ("PaddingGradient", problem)
        return
    outcome.grads["input"] = class_axis_back(gradient, ndim)
    outcome.grad_dtypes["input"] = _agreed(replies, "grad_dtype")


def _padding_problem(replies, gradient):
    """Why the padding columns' gradient is wrong, or None: it must be 0 (padding is not a class) in every row
    whose gradient is finite (where an infinite upstream, a zero total weight, makes a row NaN, padding may be
    NaN too)."""
    finite_rows = np.all(np.isfinite(gradient), axis=-1, keepdims=True)
    for rank, reply in enumerate(replies):
        padding = reply["padding_grad"]
        wrong = (padding != 0) & finite_rows if padding.size else np.zeros((0,), bool)
        if np.any(wrong):
            return (f"rank {rank}'s padding columns got the gradient {padding[wrong].flat[0]!r} in a row whose "
                    "gradient is finite, not 0: padding is not a class")
    return None
