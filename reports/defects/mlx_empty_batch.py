"""MLX: cross_entropy on an empty batch (N = 0, C = 5) raises from logsumexp, although the class axis is not
empty (the loss over no rows is an empty array, 'sum' 0, 'mean' 0/0). Reference: numpy on the same shapes.
"""
import mlx.core as mx
import mlx.nn as nn
import numpy as np

x, y = np.zeros((0, 5), np.float32), np.zeros((0, 5), np.float32)
print("mlx", mx.__version__, "| numpy logsumexp over axis 1 of a (0, 5) array has shape",
      np.log(np.exp(x).sum(1)).shape)
for red in ("none", "sum", "mean"):
    for targets in (mx.array(y), mx.array(np.zeros(0, np.int64))):
        try:
            r = nn.losses.cross_entropy(mx.array(x), targets, reduction=red); mx.eval(r)
            print(red, targets.dtype, "->", r.shape, np.array(r).tolist())
        except Exception as e:  # noqa: BLE001
            print(red, targets.dtype, "-> raised", type(e).__name__, str(e)[:80])
try:
    print("mx.logsumexp((0, 5), axis=1) ->", mx.logsumexp(mx.array(x), axis=1).shape)
except Exception as e:  # noqa: BLE001
    print("mx.logsumexp((0, 5), axis=1) -> raised", type(e).__name__, e)
