"""The vocab-parallel contract (docs/vocab-parallel.md): how a case's logits are cut into the ranks' shards, what
each rank is handed, the label-smoothing conventions an implementation may declare, and how a spec names one.

No framework import: the coordinator plans the shards, each rank builds its tensors from what it is sent.
"""
import numbers
from dataclasses import dataclass
from importlib.metadata import entry_points

import numpy as np

ENTRY_POINT_GROUP = "loss_conformance.vocab_parallel"
SHARDINGS = ("uneven", "padded")
SMOOTHING_CONVENTIONS = ("torch", "megatron")
# The keyword arguments of cross_entropy the contract carries to every rank, with torch's documented defaults.
KEYWORDS = {"ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0}


class ShardingError(ValueError):
    """A call the shards of the contract cannot express (the case is skipped for this world, never failed)."""


@dataclass(frozen=True)
class Shard:
    """What one rank holds: the global classes [start, stop) in the first ``stop - start`` columns of a tensor
    ``width`` columns wide; the columns past them are padding (logits -inf, weight 0), not classes."""

    rank: int
    world_size: int
    start: int
    stop: int
    width: int
    vocab_size: int  # V, the number of classes over all ranks

    @property
    def classes(self):
        return self.stop - self.start

    @property
    def padding(self):
        return self.width - self.classes


def plan(vocab_size, world_size, sharding):
    """The R shards of V classes. "uneven": torch.tensor_split's shards (widths differ by one, the first ranks
    the wider), no padding. "padded": every shard ceil(V / R) wide, the vocabulary padded to R of them at its
    end, as Megatron-LM pads it: the last ranks hold padding columns, a rank possibly nothing but padding."""
    if sharding not in SHARDINGS:
        raise ShardingError(f"unknown sharding {sharding!r}; expected one of {', '.join(SHARDINGS)}")
    if vocab_size < world_size:
        raise ShardingError(f"{vocab_size} classes cannot give each of {world_size} ranks a class")
    if sharding == "uneven":
        widths = [vocab_size // world_size + (rank < vocab_size % world_size) for rank in range(world_size)]
        starts = np.cumsum([0] + widths[:-1])
        return [Shard(rank, world_size, int(starts[rank]), int(starts[rank]) + widths[rank], widths[rank],
                      vocab_size) for rank in range(world_size)]
    width = -(-vocab_size // world_size)
    return [Shard(rank, world_size, min(rank * width, vocab_size), min((rank + 1) * width, vocab_size), width,
                  vocab_size) for rank in range(world_size)]


def class_last(logits):
    """The logits with the class axis last: torch's (N, C, d1, ...) becomes (N, d1, ..., C); (C) and (N, C) are
    already so. Vocab-parallel implementations take the vocabulary as the last axis."""
    if logits.ndim == 0:
        raise ShardingError("a 0-dim input has no class axis to shard")
    return logits if logits.ndim <= 2 else np.moveaxis(logits, 1, -1)


def class_axis_back(gradient, ndim):
    """A class-last gradient in the input's own layout again."""
    return gradient if ndim <= 2 else np.moveaxis(gradient, -1, 1)


def keyword_arguments(kwargs, vocab_size, convention):
    """The contract's keyword arguments of a call, as the implementation takes them: torch's label smoothing
    ε (the oracle's) becomes Megatron's α = ε (V - 1) / V under the "megatron" convention, which spreads α / (V - 1)
    over the classes other than the target; (1 - α V / (V - 1)) and α V / (V - 1) of its loss are then torch's
    (1 - ε) and ε. Any other non-default keyword is beyond the contract: ShardingError."""
    beyond = sorted(name for name, value in kwargs.items() if name not in KEYWORDS and value not in (None, 0, 0.0, ()))
    if beyond:
        raise ShardingError(f"keyword arguments beyond the vocab-parallel contract: {', '.join(beyond)}")
    arguments = {name: kwargs.get(name, default) for name, default in KEYWORDS.items()}
    smoothing = arguments["label_smoothing"]
    if convention == "megatron" and isinstance(smoothing, numbers.Real) and not isinstance(smoothing, bool) \
            and vocab_size > 1:
        arguments["label_smoothing"] = float(smoothing) * (vocab_size - 1) / vocab_size
    return arguments


def check_weight(call_arrays, vocab_size):
    """ShardingError for class weights that are not one per class (they cannot be sharded like the logits)."""
    weight = call_arrays.get("weight")
    if weight is not None and weight.shape != (vocab_size,):
        raise ShardingError(f"a weight of shape {weight.shape} is not one of V = {vocab_size} classes")


def shard_request(call_arrays, shard, dtype, kwargs, grad_output):
    """What one rank is sent: its columns of the class-last logits and of the weight (padding added by the rank),
    the whole target, the keywords and the upstream gradient."""
    logits, weight = class_last(call_arrays["input"]), call_arrays.get("weight")
    return {"dtype": dtype, "shard": shard, "logits": np.ascontiguousarray(logits[..., shard.start:shard.stop]),
            "target": call_arrays["target"], "kwargs": kwargs, "grad_output": grad_output,
            "weight": None if weight is None else weight[shard.start:shard.stop].copy()}


def load_implementation(spec):
    """The vocab-parallel implementation a spec names: an entry point of ``loss_conformance.vocab_parallel``, or
    ``module.path[:attr]`` (imported as --backend imports it) naming an object with ``cross_entropy`` (a class or
    factory is called first)."""
    from .. import _import

    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == spec:
            return _instance(entry_point.load(), spec)
    obj = _import(spec)
    if ":" not in spec and callable(getattr(obj, "vocab_parallel", None)):
        obj = obj.vocab_parallel  # a module's default implementation
    return _instance(obj, spec)


def _instance(obj, spec):
    if callable(getattr(obj, "cross_entropy", None)) and not isinstance(obj, type):
        return obj
    if callable(obj):
        return _instance(obj(), spec)
    raise TypeError(f"{spec!r} offers no vocab-parallel cross_entropy(logits, target, *, shard, group, ...)")
