"""PaddlePaddle: cross_entropy 'mean' with rows at the default ignore_index (-100). The rows' losses are 0 (the
kernel ignores them), but without `weight` the mean still divides by all N rows (`_C_ops.mean_all(out)`, taken
when ignore_index < 0), while with `weight` (even all ones) it divides by the weight of the non-ignored rows.
The same inputs give two different means. Reference: the documented weighted mean over non-ignored rows.
"""
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import paddle
    import paddle.nn.functional as F

rng = np.random.default_rng(1)
x = rng.normal(size=(4, 5))
y = np.array([1, -100, 3, 0])
logp = x - np.log(np.exp(x).sum(1, keepdims=True))
keep = y != -100
ref = -logp[np.arange(4)[keep], y[keep]].mean()
X, Y = paddle.to_tensor(x), paddle.to_tensor(y)
print("paddle", paddle.__version__)
print("mean, weight=None       :", float(F.cross_entropy(X, Y, reduction="mean")))
print("mean, weight=ones(5)    :", float(F.cross_entropy(X, Y, weight=paddle.ones([5], "float64"), reduction="mean")))
print("reference (3 kept rows) :", ref, "  sum/4 =", -logp[np.arange(4)[keep], y[keep]].sum() / 4)
print("per-row 'none'          :", F.cross_entropy(X, Y, reduction="none").numpy().ravel())
