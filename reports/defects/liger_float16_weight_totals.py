"""Liger-Kernel: in float16 with class weights and label smoothing, the input gradient is up to 16 u of float16 off
relative to its value, where a kernel that rounds once is within 1 u (the suite: cross_entropy/NC-mean-w=pos-
ii=-100-ls=1.0 and NC-sum-w=pos-ii=-100-ls=0.1, grad_input.relative in float16: 16.2 u and 2.2 u of a 2.02 u budget).

cross_entropy_forward (liger_kernel/ops/cross_entropy.py, lines 401-402) sums the class weights with torch in the
weights' dtype, `weight.sum().item()` and `gather(weight, ...).sum().item()`, so both totals are rounded to float16
before the kernel uses them in float32. The smoothing term of the gradient, eps * (-w_c + p_c * weight_sum), cancels
where p_c is near w_c / weight_sum, and the rounded total's error is then amplified relative to the result.
On a GPU the kernel runs natively; on the CPU, Triton's interpreter (TRITON_INTERPRET=1, set below) runs it, with
the suite's interpreter shims (Python float arguments as float32 scalars, as a GPU launch passes them).
"""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")
if os.environ["TRITON_INTERPRET"] == "1":
    from conformance.backends._triton_interpreter import install

    install()
import importlib.metadata  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from liger_kernel.ops.cross_entropy import LigerCrossEntropyFunction  # noqa: E402

print("liger-kernel", importlib.metadata.version("liger-kernel"), "torch", torch.__version__)
generator = torch.Generator().manual_seed(0)
N, C = 64, 37
logits = torch.randn(N, C, generator=generator).half()
weight = (torch.rand(C, generator=generator) * 2 + 0.1).half()
target = torch.randint(0, C, (N,), generator=generator)
print(f"sum of the weights: float16 {weight.sum().item():.6f}, exact {weight.double().sum().item():.6f}")
exact = logits.double().requires_grad_()
F.cross_entropy(exact, target, weight.double(), label_smoothing=1.0).backward()
mine = logits.clone().requires_grad_()
LigerCrossEntropyFunction.apply(mine, target, weight, -100, 0.0, 1.0, "mean", None, False)[0].backward()
rounded_once = exact.grad.half().double()  # what a kernel that rounds once returns
u, normal = 2.0 ** -11, 2.0 ** -14  # float16's unit roundoff and its smallest normal number
for label, got in (("liger", mine.grad.double()), ("rounded once", rounded_once)):
    relative = ((got - exact.grad).abs() / (exact.grad.abs() * u))[exact.grad.abs() >= normal].max().item()
    print(f"{label:13} largest error relative to the value (normal gradients): {relative:.2f} u of float16")
