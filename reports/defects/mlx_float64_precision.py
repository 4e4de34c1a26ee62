"""MLX CPU: float64 softmax / logsumexp / log_softmax / cross_entropy return float64 arrays with about float32
accuracy. Reference: the same formulas in numpy float64 (max-shifted; correct to a few float64 ulps here).
"""
import mlx.core as mx
import mlx.nn as nn
import numpy as np

x = np.array([[0.5, -1.0, 2.0, 0.25], [1.0, 0.0, -0.5, 3.0]])
a = mx.array(x, dtype=mx.float64)
m = x.max(-1, keepdims=True)
lse = (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))
ref = {"softmax": np.exp(x - lse), "logsumexp": lse[:, 0], "log_softmax": x - lse,
       "exp": np.exp(x), "log": np.log(np.abs(x) + 0.3), "cross_entropy": lse[:, 0] - x[[0, 1], [2, 3]]}
got = {"softmax": mx.softmax(a, axis=-1), "logsumexp": mx.logsumexp(a, axis=-1), "log_softmax": nn.log_softmax(a),
       "exp": mx.exp(a), "log": mx.log(mx.abs(a) + 0.3), "cross_entropy": nn.losses.cross_entropy(a, mx.array([2, 3]))}
print("mlx", mx.__version__, "device", mx.default_device())
for name in ref:
    g = np.array(got[name])
    err = np.max(np.abs(g - ref[name]) / np.abs(ref[name])) / 2.0 ** -53
    print(f"{name:13s} dtype {got[name].dtype}: max relative error {err:.3g} u of float64 "
          f"(= {err * 2.0 ** -53 / 2.0 ** -24:.3g} u of float32); got {g.ravel()[0]!r} want {ref[name].ravel()[0]!r}")
# float64 exp also saturates at float32's limits (exp(88.7) ~ 3.4e38, exp(-103) ~ 1e-45):
big = np.array([100.0, 709.0, -200.0, -700.0])
print("exp float64 of", big.tolist(), "mlx:", np.array(mx.exp(mx.array(big, dtype=mx.float64))).tolist(),
      " numpy:", np.exp(big).tolist())
row = np.array([0.0, -120.0, -300.0])
print("softmax float64 of", row.tolist(), "mlx:", np.array(mx.softmax(mx.array(row, dtype=mx.float64))).tolist(),
      " numpy:", (np.exp(row) / np.exp(row).sum()).tolist())
# the same SIMD exp in float32 has no subnormal results: it returns 0 below about -88.4 (arithmetic keeps subnormals)
x32 = np.array([-87.0, -88.5, -90.0, -100.0], dtype=np.float32)
print("exp float32 of", x32.tolist(), "mlx:", np.array(mx.exp(mx.array(x32))).tolist(), " numpy:", np.exp(x32).tolist())
