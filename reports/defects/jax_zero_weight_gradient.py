"""JAX: the gradient of a weighted 'mean' whose total weight is 0 is NaN where it is +-inf (the suite:
cross_entropy/NC-mean-w=zeros-ii=-100-ls=0.1-zero-target-weight, float64 and float32, grad_input.nonfinite).

With label smoothing the numerator (the smoothing term of classes of nonzero weight) is positive while the total
target weight is 0, so the loss is +inf (JAX agrees) and its derivative in each logit is (d numerator) / 0, an
infinity of the numerator's slope's sign. Reverse mode pushes the infinite cotangent 1/0 through optax's softmax
cross-entropy backward, g * (p_c * sum_k w_k q_k - w_c q_c), and inf - inf = NaN in every element.
"""
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

x = jnp.array([[0.5, -1.0, 2.0, 0.0], [1.0, 0.0, -0.5, 0.3]])
target = jnp.array([0, 0])
weight = jnp.array([0.0, 1.0, 2.0, 0.5])  # the target class has weight 0: total target weight 0


def loss(x):
    labels = optax.losses.smooth_labels(jax.nn.one_hot(target, 4), 0.1)
    rows = optax.losses.softmax_cross_entropy(x, weight * labels)
    return jnp.sum(rows) / jnp.sum(weight[target])


numerator_slope = jax.grad(lambda x: jnp.sum(optax.losses.softmax_cross_entropy(
    x, weight * optax.losses.smooth_labels(jax.nn.one_hot(target, 4), 0.1))))(x)
print("jax", jax.__version__, "| loss", float(loss(x)))
print("gradient       :", jax.grad(loss)(x).tolist())
print("expected (sign of the numerator's slope) * inf:", jnp.where(numerator_slope > 0, jnp.inf,
                                                                    jnp.where(numerator_slope < 0, -jnp.inf, jnp.nan)).tolist())
