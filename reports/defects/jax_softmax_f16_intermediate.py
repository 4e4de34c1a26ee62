"""JAX CPU: jax.nn.softmax in float16 rounds exp(x - max) to float16 before dividing by the sum.

Probabilities below float16's smallest normal (6.1e-5) then come out double-rounded: off by more than half a
float16 subnormal step (2**-24) from the exact value. Reference: the float64 formula rounded once to float16, and
the same formula computed in float32 and rounded once (what a float32-accumulating kernel returns).
"""
import jax
import jax.numpy as jnp
import numpy as np

STEP = 2.0 ** -24  # float16 subnormal spacing
rng = np.random.default_rng(7)
x = (rng.normal(size=(2000, 65)) * 3).astype(np.float16)

got = np.asarray(jax.nn.softmax(jnp.asarray(x), axis=-1)).astype(np.float64)
x64 = x.astype(np.float64)
exact = np.exp(x64 - x64.max(-1, keepdims=True))
exact /= exact.sum(-1, keepdims=True)
x32 = x.astype(np.float32)
once = np.exp(x32 - x32.max(-1, keepdims=True))
once = (once / once.sum(-1, keepdims=True)).astype(np.float16).astype(np.float64)

sub = exact < 2.0 ** -14
err_jax = np.abs(got - exact)[sub] / STEP
err_once = np.abs(once - exact)[sub] / STEP
print("jax", jax.__version__, "| elements below float16's smallest normal:", int(sub.sum()))
print(f"jax.nn.softmax float16: max error {err_jax.max():.3f} subnormal steps; "
      f"{int((err_jax > 0.5).sum())} elements beyond correct rounding (0.5 step)")
print(f"float32 compute, one rounding: max error {err_once.max():.3f} steps; {int((err_once > 0.5).sum())} beyond 0.5")
i = np.unravel_index(np.argmax(np.where(sub, np.abs(got - exact), 0)), got.shape)
print(f"worst element {i}: jax {got[i]!r}  exact {exact[i]!r}  exact rounded to float16 "
      f"{float(np.float16(exact[i]))!r}")
normal = ~sub
rel = np.abs(got - exact)[normal] / (exact[normal] * 2.0 ** -11)
print(f"normal range: max relative error {rel.max():.3f} u of float16 (float32-compute: "
      f"{(np.abs(once - exact)[normal] / (exact[normal] * 2.0 ** -11)).max():.3f} u)")
