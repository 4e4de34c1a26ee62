"""PaddlePaddle CPU: softmax / log_softmax clip the shifted logits x - max at -64 (ValueClip, kThreshold = -64 in
paddle/phi/kernels/funcs/softmax_impl.h and cpu/log_softmax_kernel.cc). Probabilities below e**-64 = 1.6e-28
become 1.6e-28 (also for -inf logits, whose probability is exactly 0), log-probabilities stop near -64, and
cross_entropy (whose softmax uses the same clip) caps the loss of a very wrong prediction near 64 + log C.
Reference: the documented formulas in numpy float64.
"""
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import paddle
    import paddle.nn.functional as F

x = np.array([[0.0, -10.0, -80.0, -np.inf], [0.0, 1.0, -1000.0, 2.0]])
m = x.max(1, keepdims=True)
lse = m + np.log(np.exp(x - m).sum(1, keepdims=True))
print("paddle", paddle.__version__)
for dt in ("float64", "float32"):
    t = paddle.to_tensor(x.astype(dt))
    print(f"[{dt}] softmax     paddle", F.softmax(t, axis=1).numpy().tolist())
    print(f"[{dt}] log_softmax paddle", F.log_softmax(t, axis=1).numpy().tolist())
print("reference softmax    ", np.exp(x - lse).tolist())
print("reference log_softmax", (x - lse).tolist())
logits = np.array([[0.0, 200.0, 0.0], [0.0, 0.0, -np.inf]])
target = np.array([0, 2])
print("cross_entropy rows (target 0 with logit 200 elsewhere; target logit -inf): paddle",
      F.cross_entropy(paddle.to_tensor(logits), paddle.to_tensor(target), reduction="none").numpy().ravel().tolist(),
      " reference", [200 + np.log(2 + np.exp(-200.0)), float("inf")])
