"""PaddlePaddle: (1) kl_div accepts any reduction string and silently returns the unreduced loss (the docs list
'none' | 'batchmean' | 'mean' | 'sum'; the code falls through every `elif` and returns `out`); (2) cross_entropy
on an input with C = 0 classes returns a number; (3) float32 softmax of a row holding +inf returns a uniform row
(float64 gives NaN, the documented exp(inf)/sum = inf/inf). Reference: what each call should do (comment).
"""
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import paddle
    import paddle.nn.functional as F


def show(label, thunk, want):
    try:
        got = thunk()
        got = got.numpy().tolist() if hasattr(got, "numpy") else got
    except Exception as err:  # noqa: BLE001
        got = f"raised {type(err).__name__}: {str(err).strip().splitlines()[0][:100]}"
    print(f"{label}: paddle -> {got}\n    reference: {want}")


logp = np.log(np.full((2, 3), 1 / 3)); t = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
print("paddle", paddle.__version__)
for red in ("avg", "Mean", "elementwise_mean"):
    show(f"kl_div reduction={red!r}", lambda: F.kl_div(paddle.to_tensor(logp), paddle.to_tensor(t), reduction=red),
         "ValueError (unknown reduction)")
show("cross_entropy on a (3, 0) input", lambda: F.cross_entropy(paddle.to_tensor(np.zeros((3, 0))),
                                                               paddle.to_tensor(np.zeros(3, np.int64))),
     "an error: no class index is valid for C = 0")
row = np.array([[1.0, np.inf, 2.0, 0.5, -1.0, 0.0, 3.0, 2.5]])
for dt in ("float32", "float64"):
    show(f"softmax {dt} of a row holding +inf", lambda: F.softmax(paddle.to_tensor(row.astype(dt)), axis=1),
         "NaN in every element (inf / inf)")
