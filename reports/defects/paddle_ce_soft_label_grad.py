"""PaddlePaddle: the gradient of cross_entropy(soft_label=True) with respect to the label. Without `weight`,
paddle.grad returns None (the label is not differentiated); with `weight`, it returns only the part that flows
through paddle's per-sample weight `label @ weight`, not d/dlabel of the cross-entropy itself, so it disagrees
with a finite difference of paddle's own forward. Reference: central differences of paddle's forward (float64).
"""
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import paddle
    import paddle.nn.functional as F

rng = np.random.default_rng(3)
x = rng.normal(size=(2, 3))
q = rng.uniform(0.1, 1, size=(2, 3)); q /= q.sum(1, keepdims=True)
w = np.array([0.5, 1.0, 2.0])


def loss(qv, weight):
    X, Q = paddle.to_tensor(x), paddle.to_tensor(qv)
    Q.stop_gradient = False
    out = F.cross_entropy(X, Q, soft_label=True, reduction="sum",
                          weight=None if weight is None else paddle.to_tensor(weight))
    return out, Q


print("paddle", paddle.__version__)
for weight in (None, w):
    out, Q = loss(q, weight)
    (g,) = paddle.grad([out], [Q], allow_unused=True)
    fd = np.zeros_like(q)
    for i in np.ndindex(q.shape):
        d = np.zeros_like(q); d[i] = 1e-6
        fd[i] = (float(loss(q + d, weight)[0]) - float(loss(q - d, weight)[0])) / 2e-6
    print(f"weight={weight}: paddle.grad wrt label = {None if g is None else g.numpy().round(6).tolist()}")
    print(f"   finite difference of paddle's forward = {fd.round(6).tolist()}")
