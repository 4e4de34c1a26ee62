"""Vocab-parallel mutants: the reference (conformance/backends/vocab_parallel.py) with one distributed bug each,
the bugs of public vocab-parallel losses (Megatron-LM's label smoothing over the local vocabulary and its local
mean of the log-probabilities, both in megatron-core 0.16.1's tensor_parallel/cross_entropy.py). Run on a world:
``--backend conformance.mutants.vocab_parallel:<name> --world-size 2`` (``padded_sentinel``: ``--sharding padded``).
They are not in the torch mutants' catalog (they are not torch namespaces); tests/test_vocab_parallel.py scores them.
"""
import os
import time

import torch

from ..backends.vocab_parallel import Reference


class _Mutant(Reference):
    sharding_needed = "uneven"  # the sharding that exposes the bug


class LocalVocabularySmoothing(_Mutant):
    """label smoothing divides by the local shard's V, not the global V"""

    def smoothing_classes(self, shard):
        return shard.classes


class LocalMeanSmoothing(_Mutant):
    """label smoothing takes the mean of the log-probabilities over the local shard (neither summed over the
    ranks nor divided by the global V)"""

    def smoothing_classes(self, shard):
        return shard.classes

    def all_reduce_sum(self, values, group, what):
        if what != "smoothing":
            super().all_reduce_sum(values, group, what)


class LocalMaximum(_Mutant):
    """the row maximum is not all-reduced: each rank shifts its exponentials by its own maximum"""

    def all_reduce_max(self, values, group):
        pass


class PaddedSentinel(_Mutant):
    """ignored rows gather the last padded column as a sentinel and are masked by a multiplication: the -inf of
    the padding makes 0 * inf = NaN"""

    sharding_needed = "padded"

    def gather_index(self, target, valid, shard):
        sentinel = shard.width * shard.world_size - 1
        return torch.where(valid, target, torch.full_like(target, sentinel))

    def mask(self, rows, valid):
        return rows * valid


class RankZeroGradientScale(_Mutant):
    """the gradient of a 'mean' is divided by the total weight on rank 0 only"""

    def gradient_scale(self, shard, denominator):
        return 1.0 / denominator if shard.rank == 0 else 1.0


CATALOG = {"local_vocabulary_smoothing": LocalVocabularySmoothing, "local_mean_smoothing": LocalMeanSmoothing,
           "local_maximum": LocalMaximum, "padded_sentinel": PaddedSentinel,
           "rank_zero_gradient_scale": RankZeroGradientScale}


class HungRank(Reference):
    """not a bug of the numbers: rank 1 never returns from a 'sum' call (a collective it skipped, a deadlock); the
    call must fail as that case's timeout and the run go on (tests/test_vocab_parallel.py)"""

    def cross_entropy(self, logits, target, *, shard, group, reduction="mean", **kwargs):
        if reduction == "sum" and shard.rank == 1:
            time.sleep(3600)
        return super().cross_entropy(logits, target, shard=shard, group=group, reduction=reduction, **kwargs)


class DeadRank(Reference):
    """rank 1 dies (exit code 7) in a 'sum' call: that call fails and the next starts a fresh world"""

    def cross_entropy(self, logits, target, *, shard, group, reduction="mean", **kwargs):
        if reduction == "sum" and shard.rank == 1:
            os._exit(7)
        return super().cross_entropy(logits, target, shard=shard, group=group, reduction=reduction, **kwargs)
