"""JAX (CPU, eager): in float16 / bfloat16, jax.nn.softmax, jax.nn.log_softmax, optax's cross-entropy and
kl_divergence round their intermediates to the input dtype before steps that cancel, so results small relative to
their scale lose their relative accuracy (the suite's `relative` checks: cross_entropy grad_input.relative fails
in 526 of its float16/bfloat16 pairs, kl_div grad_target.relative 313, softmax 410, log_softmax 301). The same
functions evaluated in float32 and rounded once to the dtype stay within about 1 u.

Printed: the largest error relative to each element's own value (in units of the dtype's last place, elements whose
exact value is at least 2**-10 of the largest), for JAX in the dtype and for the float32-then-round kernel.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

jax.config.update("jax_enable_x64", True)


def worst_relative(got, exact, dtype):
    got, exact = np.asarray(got, np.float64), np.asarray(exact, np.float64)
    keep = np.abs(exact) >= np.abs(exact).max() * 2.0 ** -10
    ulp = np.asarray(jnp.finfo(dtype).eps, np.float64)
    return float(np.max(np.abs(got - exact)[keep] / np.abs(exact)[keep]) / ulp)


def ce(x, y):
    return optax.losses.softmax_cross_entropy_with_integer_labels(x, y).mean()


def kl(x, t):
    return optax.losses.kl_divergence(x[..., None], t[..., None], axis=-1).sum()


rng = np.random.default_rng(0)
print("jax", jax.__version__, "optax", optax.__version__)
for dtype in (jnp.bfloat16, jnp.float16):
    name = jnp.dtype(dtype).name
    x = jnp.asarray(rng.normal(scale=3, size=(8, 64))).astype(dtype)
    y = jnp.asarray(rng.integers(0, 64, 8))
    t = jnp.asarray(rng.dirichlet(np.ones(64), 8)).astype(dtype)
    g = jnp.asarray(rng.normal(size=(8, 64))).astype(dtype)
    x64, t64, g64 = x.astype(jnp.float64), t.astype(jnp.float64), g.astype(jnp.float64)
    checks = {
        "softmax input gradient": lambda d: jax.vjp(lambda a: jax.nn.softmax(a, axis=1), x.astype(d))[1](g.astype(d))[0],
        "log_softmax value": lambda d: jax.nn.log_softmax(x.astype(d), axis=1),
        "cross_entropy input gradient": lambda d: jax.grad(ce)(x.astype(d), y),
        "kl_div target gradient": lambda d: jax.grad(kl, argnums=1)(x.astype(d), t.astype(d)),
    }
    for label, f in checks.items():
        exact = f(jnp.float64)
        in_dtype = worst_relative(f(dtype), exact, dtype)
        once = worst_relative(f(jnp.float32).astype(dtype), exact, dtype)
        print(f"{name:8} {label:29}: JAX in {name} {in_dtype:7.1f} u; float32 then rounded once {once:4.1f} u")
