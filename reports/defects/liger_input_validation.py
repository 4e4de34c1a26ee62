"""Liger-Kernel: inputs that torch's documentation makes errors are computed with (the suite: cross_entropy/
error-batch-mismatch-NC-target=N-1 and =N+1, linear_cross_entropy/error-target-high: `raises`), and an empty batch
crashes where torch returns 0 or NaN (cross_entropy/empty-N0C-{none,mean,sum}-ls=0.1, run in float16: `call`).

- Targets of another length than the batch: cross_entropy_forward launches one program per logits row and reads
  target[i] with no length check (liger_kernel/ops/cross_entropy.py), so N - 1 targets make the last row read past
  the targets' end and N + 1 targets drop the last one; torch raises "Expected input batch_size (N) to match target
  batch_size".
- The fused linear cross entropy checks no target bound (the cross entropy's `target.max() < V` assertion is not in
  fused_linear_cross_entropy_forward), so a target >= V reads past the row.
- An empty batch: the bounds assertion's `(target * target_mask).max()` (cross_entropy.py, line 390) reduces
  zero targets and raises, in every dtype.
On a GPU the kernels run natively; on the CPU, Triton's interpreter (TRITON_INTERPRET=1, set below) runs them.
"""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")
import importlib.metadata  # noqa: E402

import torch  # noqa: E402
from liger_kernel.ops.cross_entropy import LigerCrossEntropyFunction  # noqa: E402
from liger_kernel.ops.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyFunction  # noqa: E402


def attempt(label, call):
    try:
        print(f"{label}: returned {call().item():.6f} (torch raises)")
    except Exception as error:  # noqa: BLE001 - what Liger raises is what this shows
        print(f"{label}: raised {type(error).__name__}: {str(error).splitlines()[0][:100]}")


print("liger-kernel", importlib.metadata.version("liger-kernel"), "torch", torch.__version__)
generator = torch.Generator().manual_seed(0)
logits = torch.randn(6, 10, generator=generator)
for count in (5, 7):
    target = torch.randint(0, 10, (count,), generator=generator)
    attempt(f"cross_entropy, 6 rows, {count} targets",
            lambda: LigerCrossEntropyFunction.apply(logits, target, None, -100, 0.0, 0.0, "mean", None, False)[0])
hidden, weight = torch.randn(6, 8, generator=generator), torch.randn(10, 8, generator=generator)
attempt("linear_cross_entropy, V = 10, a target 10",
        lambda: LigerFusedLinearCrossEntropyFunction.apply(hidden, weight, torch.tensor([0, 1, 2, 3, 4, 10]))[0])
for dtype in (torch.float32, torch.float16):
    empty = torch.zeros(0, 10, dtype=dtype, requires_grad=True)
    try:
        loss = LigerCrossEntropyFunction.apply(empty, torch.zeros(0, dtype=torch.long), None, -100, 0.0, 0.1,
                                               "sum", None, False)[0]
        print(f"empty batch, {dtype}, label_smoothing 0.1: returned {loss.item()} (torch: 0.0)")
    except Exception as error:  # noqa: BLE001
        print(f"empty batch, {dtype}, label_smoothing 0.1: raised {type(error).__name__}: "
              f"{str(error).splitlines()[0][:90]} (torch: 0.0)")
