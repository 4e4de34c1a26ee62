"""PaddlePaddle: cross_entropy(axis=1) on K-dim inputs (N, C, d1) breaks with label_smoothing or with weight +
soft labels, although the docs allow `axis` and `label_smoothing`/`weight` together. python/paddle/nn/functional/
loss.py: label_smoothing one-hot encodes with `input.shape[-1]` classes (not input.shape[axis]), and the weighted
soft-label path multiplies `label @ weight` over the last dimension. Reference: the documented formula
(-sum_c q_c log softmax(x)_c, q = (1 - e) onehot + e / C) in numpy float64, with the class axis moved last.
"""
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import paddle
    import paddle.nn.functional as F

rng = np.random.default_rng(0)
x = rng.normal(size=(2, 4, 3))   # N=2, C=4, d1=3; classes on axis 1
y = np.array([[0, 3, 1], [2, 2, 0]])
e = 0.1
xl = np.moveaxis(x, 1, -1)       # (N, d1, C)
logp = xl - np.log(np.exp(xl).sum(-1, keepdims=True))
q = (1 - e) * np.eye(4)[y] + e / 4
print("paddle", paddle.__version__)


def call(**kw):
    try:
        return F.cross_entropy(paddle.to_tensor(x), paddle.to_tensor(kw.pop("label", y)), axis=1, reduction="sum",
                               **kw).numpy()
    except Exception as err:  # noqa: BLE001
        return f"raised {type(err).__name__}: {str(err).strip().splitlines()[0][:150]}"


print("label_smoothing=0.1, axis=1, class indices: paddle", call(label_smoothing=e),
      " reference", -(q * logp).sum())
print("same with the classes moved last (axis=-1):  paddle",
      F.cross_entropy(paddle.to_tensor(xl), paddle.to_tensor(y), axis=-1, reduction="sum", label_smoothing=e).numpy())
soft = np.moveaxis(q, -1, 1)
w = np.array([0.5, 1.0, 1.5, 2.0])
print("soft labels + weight, axis=1: paddle", call(label=soft, soft_label=True, weight=paddle.to_tensor(w)))
print("soft labels, no weight, axis=1: paddle", call(label=soft, soft_label=True), " reference", -(q * logp).sum())
