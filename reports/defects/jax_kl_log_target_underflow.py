"""JAX (optax.losses.kl_divergence_with_log_targets): with log_target=True the element is exp(t) * (t - x); for
t = -1024 and x = -inf, float64 exp(t) = 2**-1477 underflows to 0 before it meets t - x = +inf, and 0 * inf = NaN
where the element is +inf (exp(t) > 0). The suite: kl_div/fuzz-2x3-lt=true-d9e6eb6f1d, float64 (value and target
gradient); torch has the same accuracy defect (declared in cases/xfails/torch.yaml). Computing exp(t) * (t - x)
as exp(t + log(t - x)) keeps it +inf."""
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

t, x = jnp.array([[-1024.0]]), jnp.array([[-jnp.inf]])
print("jax", jax.__version__)
print("kl_divergence_with_log_targets:", float(optax.losses.kl_divergence_with_log_targets(x, t)[0]),
      "| exact: +inf (exp(-1024) > 0 times +inf)")
