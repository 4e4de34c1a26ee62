"""PaddlePaddle CPU: cross_entropy calls that its own documentation rules out return a value (the suite:
cross_entropy/error-label_smoothing=-0.1 and =nan, error-NC-target-dtype=bool, error-NC-prob-target-ii=0,
error-C-target-shape=1, fuzz-1x1x1x1-w-weight-size-*; float64 and float32).

- label_smoothing: documented "A float in [0.0, 1.0]", but -0.1 and NaN are used (`if label_smoothing > 0.0`
  is false for both, so the unsmoothed loss comes back);
- hard labels are documented as "int32, int64, float32, float64": bool labels are accepted too;
- ignore_index with soft labels: the check is `if ignore_index > 0 and soft_label`, so ignore_index=0 passes;
- a (1,) label for an unbatched (C) input (the label of a (C) input is 0-dim) and, for a K-dim input with C = 1,
  a (1, 1) weight (documented as a 1-D tensor of size C) are accepted.
"""
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import paddle
    import paddle.nn.functional as F


def call(description, *args, **kwargs):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = F.cross_entropy(*args, **kwargs).numpy()
        print(f"{description}: returned {value.tolist()}")
    except Exception as error:  # noqa: BLE001
        print(f"{description}: raised {type(error).__name__}: {str(error).splitlines()[0][:100]}")


paddle.set_device("cpu")
print("paddle", paddle.__version__)
x = paddle.to_tensor(np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]]))
labels = paddle.to_tensor(np.array([0, 2]))
for smoothing in (-0.1, float("nan"), 1.5):
    call(f"label_smoothing={smoothing}", x, labels, label_smoothing=smoothing)
call("bool labels", x, paddle.to_tensor(np.array([True, False])))
soft = paddle.to_tensor(np.full((2, 3), 1 / 3))
call("soft labels, ignore_index=0", x, soft, soft_label=True, ignore_index=0)
call("soft labels, ignore_index=1", x, soft, soft_label=True, ignore_index=1)
call("(C) input, (1,) label", paddle.to_tensor(np.array([0.5, -1.0, 2.0])), paddle.to_tensor(np.array([1])), axis=0)
call("(1, 1, 1, 1) input, (1, 1) weight (C = 1)", paddle.to_tensor(np.full((1, 1, 1, 1), 0.5)),
     paddle.to_tensor(np.zeros((1, 1, 1), np.int64)), axis=1, weight=paddle.to_tensor(np.ones((1, 1))))
