"""PaddlePaddle (paddle.nn.functional.kl_div, log_target=True): the element is exp(t) * (t - x) (kernel:
`std::exp(target) * (target - input)`); for t = -1024 and x = -inf, float64 exp(t) underflows to 0 before it meets
t - x = +inf, and 0 * inf = NaN where the element is +inf. The suite: kl_div/fuzz-2x3-lt=true-d9e6eb6f1d, float64;
torch has the same accuracy defect (declared in cases/xfails/torch.yaml)."""
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import paddle
    import paddle.nn.functional as F

paddle.set_device("cpu")
value = F.kl_div(paddle.to_tensor(np.array([[-np.inf]])), paddle.to_tensor(np.array([[-1024.0]])), reduction="sum",
                 log_target=True)
print("paddle", paddle.__version__, "| kl_div(x=-inf, t=-1024, log_target=True):", float(value), "| exact: +inf")
