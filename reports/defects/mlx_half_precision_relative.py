"""MLX CPU: nn.log_softmax and nn.losses.kl_div_loss in float16 / bfloat16 round their intermediates to the
input dtype, so results small relative to their scale lose their relative accuracy (the suite's `relative` checks
of log_softmax and kl_div fail in 287 float16/bfloat16 checks). Unlike mx.softmax (`precise=`) and cross_entropy
("The CPU reduces in the dtype of the logits"), neither documents it, and neither offers a float32 accumulation.
The same functions computed in float32 and rounded once to the dtype stay within about 1 u.

Printed: the largest error relative to each element's own value (units of the dtype's last place, elements at
least 2**-10 of the largest), for MLX in the dtype and for MLX in float32 rounded once.
"""
import mlx.core as mx
import mlx.nn as nn
import numpy as np

mx.set_default_device(mx.cpu)
EPS = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}


def worst_relative(got, exact, name):
    got, exact = np.array(got.astype(mx.float32)).astype(np.float64), np.array(exact).astype(np.float64)
    keep = np.abs(exact) >= np.abs(exact).max() * 2.0 ** -10
    return float(np.max(np.abs(got - exact)[keep] / np.abs(exact)[keep]) / EPS[name])


def kl_target_grad(x, t):
    return mx.grad(lambda target: nn.losses.kl_div_loss(x[..., None], target[..., None], axis=-1).sum())(t)


rng = np.random.default_rng(0)
print("mlx", mx.__version__)
x = rng.normal(scale=3, size=(8, 256))
t = np.log(rng.dirichlet(np.ones(256), 8))
g = mx.array(rng.normal(size=(8, 256)), dtype=mx.float32).astype(mx.bfloat16).astype(mx.float32)
for name in ("bfloat16", "float16"):
    dtype = getattr(mx, name)
    xd, td = mx.array(x, dtype=mx.float32).astype(dtype), mx.array(t, dtype=mx.float32).astype(dtype)
    x64, t64 = mx.array(np.array(xd.astype(mx.float32)), dtype=mx.float64), mx.array(np.array(td.astype(mx.float32)), dtype=mx.float64)
    checks = {"log_softmax input gradient": lambda a, b: mx.vjp(lambda v: nn.log_softmax(v, axis=1), [a],
                                                               [mx.ones_like(a) * mx.array(g).astype(a.dtype)])[1][0],
              "kl_div (log_target) target gradient": kl_target_grad}
    for label, f in checks.items():
        with mx.stream(mx.cpu):
            exact = f(x64, t64)
            in_dtype = worst_relative(f(xd, td), exact, name)
            once = worst_relative(f(xd.astype(mx.float32), td.astype(mx.float32)).astype(dtype), exact, name)
        print(f"{name:8} {label:36}: MLX in {name} {in_dtype:6.1f} u; float32 then rounded once {once:4.1f} u")
