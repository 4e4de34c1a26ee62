"""Vocab-parallel cross-entropy on torch.distributed (docs/vocab-parallel.md): the logits' vocabulary sharded over
R ranks, each rank's result put together and checked against the unsharded oracle with the usual budgets.

contract.py  the shards and what each rank is handed (pure numpy)
rank.py      one rank: ``python -m conformance.backends.distributed.rank`` under torchrun's variables
world.py     the coordinator: starts (or awaits) the ranks, sends each call to all, notices a hung or dead rank
backend.py   the Backend the run loop sees: shards a Call, gathers an Outcome, insists that the ranks agree
"""
