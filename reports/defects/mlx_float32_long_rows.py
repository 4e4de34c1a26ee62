"""MLX CPU: float32 softmax / log_softmax over long rows sum the exponentials with an error that grows with the
row length (the suite: softmax/blocks-L=*-confident-dim=1 and log_softmax/blocks-L=*-confident-dim=1, float32,
up to 32 u of an 8 u budget on the value and 59 u on the gradient for L = 8193; rows of L <= 512 pass).

A "confident" row: normal(0, 3) entries and one entry 10 above the rest, so the sum of exp(x - max) is about 1 plus
many small terms. Printed: the relative error of the normaliser sum(exp(x - max)) and of the outputs, in units of
float32's last place, for mx.softmax / nn.log_softmax and for numpy doing the same float32 steps (exp of the
float32 difference, numpy's pairwise float32 sum, one division); the exact reference is float64 math.fsum.
"""
import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np

U = 2.0 ** -24
mx.set_default_device(mx.cpu)
print("mlx", mx.__version__)
rng = np.random.default_rng(0)
for length in (256, 1023, 4097, 8193):
    x = rng.normal(scale=3, size=length).astype(np.float32)
    x[0] = x.max() + 10
    shifted = x.astype(np.float64) - float(x.max())
    total = math.fsum(np.exp(shifted))
    exact_p, exact_logp = np.exp(shifted) / total, shifted - math.log(total)
    e32 = np.exp(x - x.max())  # float32 steps, as a kernel would take them
    mlx_total = float(np.array(mx.sum(mx.exp(mx.array(x) - mx.max(mx.array(x))))))
    mlx_p = np.array(mx.softmax(mx.array(x), axis=-1)).astype(np.float64)
    mlx_logp = np.array(nn.log_softmax(mx.array(x), axis=-1)).astype(np.float64)
    numpy_p = (e32 / e32.sum()).astype(np.float64)
    print(f"L={length:5}: sum(exp) error mlx {abs(mlx_total - total) / total / U:6.1f} u, numpy float32 "
          f"{abs(float(e32.sum()) - total) / total / U:4.1f} u | softmax[0] error mlx "
          f"{abs(mlx_p[0] - exact_p[0]) / U:6.1f} u, numpy float32 {abs(numpy_p[0] - exact_p[0]) / U:4.1f} u | "
          f"log_softmax max abs error mlx {np.max(np.abs(mlx_logp - exact_logp)) / U:6.1f} u")
