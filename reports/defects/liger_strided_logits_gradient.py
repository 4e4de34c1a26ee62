"""Liger-Kernel: cross entropy of (N, C) logits whose columns are not adjacent (a transposed view, a column
slice with a step) returns the right loss and a wrong input gradient (the suite: cross_entropy/layout-transposed-*
and layout-sliced-*, grad_input.value, float32 and float16: every element wrong, up to 1.2e15 u of float32).

liger_kernel/ops/cross_entropy.py (cross_entropy_forward) copies logits whose last stride is not 1 with
`_input = _input.contiguous()`; inside the autograd Function's forward grad mode is off, so the copy does not
require grad, and `HAS_GRADIENTS=_input.requires_grad` then tells the kernel not to store the gradient. The
backward returns the copy, which still holds the logits: the "gradient" is the logits themselves (shown below).
The same class of bug: TransformerEngine#2734. On a GPU the kernel runs natively; on the CPU, Triton's
interpreter (TRITON_INTERPRET=1, set below) runs the same kernel.
"""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")
import importlib.metadata  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from liger_kernel.ops.cross_entropy import LigerCrossEntropyFunction  # noqa: E402

print("liger-kernel", importlib.metadata.version("liger-kernel"), "torch", torch.__version__)
N, C = 8, 13
target = torch.randint(0, C, (N,), generator=torch.Generator().manual_seed(0))
storages = {"contiguous": (lambda s: s, torch.randn(N, C, generator=torch.Generator().manual_seed(1))),
            "transposed": (lambda s: s.t(), torch.randn(C, N, generator=torch.Generator().manual_seed(1))),
            "sliced": (lambda s: s[:, ::2], torch.randn(N, 2 * C, generator=torch.Generator().manual_seed(1)))}
for name, (view_of, storage) in storages.items():
    mine, torchs = storage.clone().requires_grad_(), storage.clone().requires_grad_()
    liger_loss = LigerCrossEntropyFunction.apply(view_of(mine), target, None, -100, 0.0, 0.0, "mean", None, False)[0]
    torch_loss = F.cross_entropy(view_of(torchs), target)
    liger_loss.backward()
    torch_loss.backward()
    print(f"{name:10} strides {view_of(storage).stride()}: loss {liger_loss.item():.6f} (torch "
          f"{torch_loss.item():.6f}); max |input gradient - torch's| {(mine.grad - torchs.grad).abs().max().item():.3g}"
          f" (largest torch gradient {torchs.grad.abs().max().item():.3g}); gradient == logits: "
          f"{torch.equal(view_of(mine.grad), view_of(storage))}")
