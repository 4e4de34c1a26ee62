"""torch (CPU): the unweighted 'mean' of nll_loss and cross_entropy holds the sum of the row losses in the 16-bit
dtype, so in float16 it overflows to inf once the sum passes 65504, where the mean is representable (and in
bfloat16 the sum loses accuracy). The exact mean of N rows of loss log(1 + e**10) is 10.0000454 for every N.
Found by the huge tier (`loss-conformance huge`, docs/huge-tier.md): 16384 rows of about 11.6 give inf.

Printed: N, then the mean in float16, in bfloat16, and in float32 (logits [10, 0], target 1, each row alike).
"""
import torch
import torch.nn.functional as F

print(f"torch {torch.__version__}")
for rows in (4096, 6552, 6554, 8192, 16384):
    target = torch.ones(rows, dtype=torch.long)
    means = []
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        logits = torch.zeros(rows, 2, dtype=dtype)
        logits[:, 0] = 10
        means.append(F.cross_entropy(logits, target).item())
    nll = F.nll_loss(torch.full((rows, 2), -10.0, dtype=torch.float16), target).item()
    print(f"N={rows:6d}  cross_entropy float16 {means[0]:<9g} bfloat16 {means[1]:<9g} float32 {means[2]:.7f}"
          f"   nll_loss(float16 log-probabilities -10) {nll:g}")
