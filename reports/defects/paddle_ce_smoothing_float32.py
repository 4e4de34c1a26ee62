"""PaddlePaddle: cross_entropy(label_smoothing>0) on float64 inputs builds the smoothed targets in float32
(paddle.nn.functional.one_hot returns float32; label_smooth runs on it; the result is cast to float64 after), so
e / C and 1 - e carry float32 rounding errors into a float64 loss: ~5e-8 relative error instead of ~1e-16.
Reference: the documented formula in numpy float64.
"""
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import paddle
    import paddle.nn.functional as F

rng = np.random.default_rng(2)
x = rng.normal(size=(4, 6)) * 2
y = np.array([0, 5, 2, 3])
e = 0.1
logp = x - np.log(np.exp(x).sum(1, keepdims=True))
q = (1 - e) * np.eye(6)[y] + e / 6
ref = -(q * logp).sum()
got = float(F.cross_entropy(paddle.to_tensor(x), paddle.to_tensor(y), reduction="sum", label_smoothing=e))
got_soft = float(F.cross_entropy(paddle.to_tensor(x), paddle.to_tensor(q), soft_label=True, reduction="sum"))
print("paddle", paddle.__version__)
print(f"label_smoothing=0.1, float64: paddle {got!r}  reference {ref!r}  relative error {abs(got - ref) / ref:.3g}"
      f" ({abs(got - ref) / ref / 2 ** -53:.3g} u of float64)")
print(f"same targets passed as float64 soft labels: paddle {got_soft!r}  relative error {abs(got_soft - ref) / ref:.3g}")
