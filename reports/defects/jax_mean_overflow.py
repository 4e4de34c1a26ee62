"""JAX: the 'mean' of optax's per-row cross-entropy (jnp.mean) sums before dividing, so two float64 losses near
the top of the range overflow to inf where the mean is representable (the suite: cross_entropy/
fuzz-3x5-2bf8260e90, float64; torch has the same accuracy defect, declared in cases/xfails/torch.yaml)."""
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

x = jnp.array([[0.0, 1.6e308], [0.0, 1.6e308], [0.0, 0.0]])
y = jnp.array([0, 0, 0])
rows = optax.losses.softmax_cross_entropy_with_integer_labels(x, y)
print("jax", jax.__version__, "| row losses", np.asarray(rows))
print("jnp.mean:", float(jnp.mean(rows)), "| exact", float(rows[0] / 3 + rows[1] / 3 + rows[2] / 3))
