"""PaddlePaddle CPU: float32 log_softmax / softmax over long rows lose accuracy as the row grows (the suite:
log_softmax/blocks-L=*-confident-dim=1, float32, 8.9 u at L = 2047 up to 31 u at L = 8193 where the budget is
8 u; softmax's gradient 9.4 u at L = 8192; rows up to L = 1025 pass).

A "confident" row as in the suite: normal(0, 3) entries and one entry 10 above the rest. Printed: the largest
error of log_softmax relative to its largest magnitude, in units of float32's last place, for paddle and for numpy
taking the same float32 steps (x - max, exp, numpy's pairwise float32 sum, log, subtraction); the exact reference
is float64 with math.fsum.
"""
import math
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import paddle
    import paddle.nn.functional as F

U = 2.0 ** -24
paddle.set_device("cpu")
print("paddle", paddle.__version__)
rng = np.random.default_rng(0)
for length in (1025, 2047, 4097, 8193):
    x = rng.normal(scale=3, size=(2, length)).astype(np.float32)
    x[:, 0] = x.max(axis=1) + 10
    shifted = x.astype(np.float64) - x.max(axis=1, keepdims=True)
    exact = shifted - np.log([[math.fsum(row)] for row in np.exp(shifted)])
    scale = np.abs(exact).max()
    got = F.log_softmax(paddle.to_tensor(x), axis=1).numpy().astype(np.float64)
    s32 = x - x.max(axis=1, keepdims=True)
    numpy32 = (s32 - np.log(np.exp(s32).sum(axis=1, keepdims=True))).astype(np.float64)
    print(f"L={length:5}: log_softmax error paddle {np.max(np.abs(got - exact)) / scale / U:5.1f} u, numpy float32 "
          f"{np.max(np.abs(numpy32 - exact)) / scale / U:4.1f} u (of the largest |log p| = {scale:.1f})")
