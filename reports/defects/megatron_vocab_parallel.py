"""megatron-core 0.16.1, tensor_parallel.vocab_parallel_cross_entropy, on 2 gloo ranks of one machine (the suite:
reports/megatron-core-0.16.1-cpu-gloo-r2/). Four logits rows of V = 6 classes, 3 per rank.

- Label smoothing over the shard: the forward takes `vocab_size = exp_logits.size(-1)` (the local width) and
  `log_probs.mean(dim=-1)` (the local mean), neither all-reduced, so each rank returns another loss and neither is
  the smoothed loss over V (cases ...-ls=0.1: "ranks disagree").
- float64 logits are computed and returned in float32 (`vocab_parallel_logits.float()`), 1e8 u of float64 off.
- A target outside the vocabulary is masked on every rank (no rank holds it) and gives the log-sum-exp: no error.
Megatron's formula with alpha is torch's with epsilon = alpha V / (V - 1), the reference each rank prints beside.
"""
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F


def rank_main(rank, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    from megatron.core import parallel_state, tensor_parallel

    parallel_state.initialize_model_parallel(tensor_model_parallel_size=2)
    logits = torch.arange(24, dtype=torch.float64).reshape(4, 6).sin() * 3
    target, alpha, vocab = torch.tensor([0, 4, 2, 5]), 0.1, 6
    shard = logits[:, 3 * rank:3 * rank + 3]
    smoothed = tensor_parallel.vocab_parallel_cross_entropy(shard.float().clone(), target, alpha)
    wanted = F.cross_entropy(logits, target, reduction="none", label_smoothing=alpha * vocab / (vocab - 1))
    print(f"rank {rank}: smoothed loss {smoothed.tolist()}\n        torch {wanted.tolist()}")
    plain = tensor_parallel.vocab_parallel_cross_entropy(shard.clone(), target, 0.0)
    print(f"rank {rank}: float64 logits give a {plain.dtype} loss, error "
          f"{(plain.double() - F.cross_entropy(logits, target, reduction='none')).abs().max().item():.3g}")
    high = tensor_parallel.vocab_parallel_cross_entropy(shard.float().clone(), torch.tensor([0, 4, 2, 6]), 0.0)
    print(f"rank {rank}: target 6 of V = 6 returns {high[3].item():.6f} (torch raises IndexError)")
    dist.destroy_process_group()


if __name__ == "__main__":
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    mp.spawn(rank_main, args=(free,), nprocs=2)
