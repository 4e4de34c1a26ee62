"""JAX (with optax) as a backend: ``pip install "loss-conformance[jax]"``, ``--backend jax``.

jax.nn and optax where they offer the function, jax.numpy otherwise: softmax and log_softmax are jax.nn's;
cross_entropy is optax's softmax cross-entropy (integer labels, or probabilities with optax.smooth_labels), with
the class weights and the weighted mean in jax.numpy; nll_loss is jax.numpy alone (optax has none); kl_div is
optax's pointwise divergence. No JAX loss takes a reduction, so none/mean/sum/batchmean are jax.numpy sums here,
and a reduction name outside those is unsupported rather than validated by this adapter. Gradients are
jax.vjp's; float64 needs jax_enable_x64, which the backend turns on. Eager (op by op), as a user calls them.

XLA compiles every operation for each shape and dtype it meets, which is most of a run's time. The backend turns on
jax's own persistent compilation cache (keyed by jax on the computation, the compile options, the jax and jaxlib
versions and the device: what is run is unchanged), in ``$LOSS_CONFORMANCE_JAX_CACHE`` or
``~/.cache/loss-conformance/jax-compilation``, unless jax is already given one (JAX_COMPILATION_CACHE_DIR);
``LOSS_CONFORMANCE_JAX_CACHE=off`` turns it off. softmax, 558 pairs on 2 cores: 159 s without it, 172 s filling it,
53 s warm, with identical records. A warm run still lowers each operation to MLIR once per process (to find its
cache entry); reusing MLIR contexts for that (``_reused_ir_contexts``) took the warm corpus from 158 s to 66-73 s.
"""
import os
import threading
from pathlib import Path

from . import Capabilities, Unsupported
from ._adapter import class_axis, cpu_only, float64, import_framework, option, run_functional

jax = jnp = optax = None  # imported when the backend is instantiated: this module imports without JAX
REDUCTIONS = ("none", "mean", "sum")


def _load():
    global jax, jnp, optax
    jax, jnp, optax = import_framework(("jax", "jax.numpy", "optax"), "jax")
    jax.config.update("jax_enable_x64", True)  # float64 cases need it; float32 inputs stay float32
    _persistent_compilation_cache()
    _reused_ir_contexts()


def _persistent_compilation_cache():
    """jax's on-disk compilation cache for every compiled operation, however small or quick to compile (the
    default thresholds would keep none of an eager run's)."""
    where = os.environ.get("LOSS_CONFORMANCE_JAX_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loss-conformance" / "jax-compilation")
    if where == "off" or jax.config.jax_compilation_cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


LOWERINGS_PER_CONTEXT = 1024  # bounds what one MLIR context keeps (its uniqued types and attributes)


def _reused_ir_contexts():
    """Let jax lower up to LOWERINGS_PER_CONTEXT operations into one MLIR context instead of a new one each.

    jax makes a fresh context for every lowering, loading every dialect into it: about half of a warm run (an
    eager operation met for the first time in a process is lowered to find its compilation-cache entry). The
    module lowered is the same text in a reused context (tests/test_adapters.py compares them), so the
    compiled program and its cache key are unchanged. One context per thread; process-wide (with ``--jobs 0``
    the caller's process too); skipped where jax's private module has no ``make_ir_context``."""
    try:
        from jax._src.interpreters import mlir
    except ImportError:  # a private module: a jax that moved it keeps its own behaviour
        return
    make = getattr(mlir, "make_ir_context", None)
    if make is None or getattr(make, "reused", False):
        return
    local = threading.local()

    def reused_context():
        if getattr(local, "uses", LOWERINGS_PER_CONTEXT) >= LOWERINGS_PER_CONTEXT:
            local.context, local.uses = make(), 0
        local.uses += 1
        return local.context

    reused_context.reused = True
    mlir.make_ir_context = reused_context


def _reduce(loss, reduction, denominator):
    if reduction not in REDUCTIONS:
        raise Unsupported(f"JAX losses take no reduction argument; reduction={reduction!r} has no JAX counterpart")
    if reduction == "none":
        return loss
    total = jnp.sum(loss)
    return total if reduction == "sum" else total / denominator


def _class_weights(weight, x, axis):
    """The weight vector shaped to broadcast along the class axis, or None."""
    if weight is None:
        return None
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return weight.reshape(shape)


def _soft_cross_entropy(x, target, weight, axis, smoothing, reduction):
    """Probability targets: -sum_c w_c q_c log p_c per row, 'mean' over the rows (not weighted)."""
    labels = optax.losses.smooth_labels(target, smoothing, axis=axis) if smoothing else target
    w = _class_weights(weight, x, axis)
    loss = optax.losses.softmax_cross_entropy(x, labels if w is None else w * labels, axis=axis)
    return _reduce(loss, reduction, loss.size)


def _cross_entropy(x, target, weight, kwargs, probabilities):
    axis, smoothing, reduction = class_axis(x), option(kwargs, "label_smoothing"), option(kwargs, "reduction")
    if probabilities:
        return _soft_cross_entropy(x, target, weight, axis, smoothing, reduction)
    valid = target != option(kwargs, "ignore_index")
    safe = jnp.where(valid, target, jnp.zeros_like(target))  # an ignored row reads class 0, masked below
    if smoothing:  # optax smooths one-hot labels: (1 - e) onehot + e / C, weighted per class
        labels = optax.losses.smooth_labels(jax.nn.one_hot(safe, x.shape[axis], dtype=x.dtype, axis=axis),
                                            smoothing, axis=axis)
        w = _class_weights(weight, x, axis)
        loss = optax.losses.softmax_cross_entropy(x, labels if w is None else w * labels, axis=axis, where=valid)
    else:
        loss = optax.losses.softmax_cross_entropy_with_integer_labels(x, safe, axis=axis, where=valid)
    coefficient = jnp.where(valid, 1 if weight is None else weight[safe], 0).astype(x.dtype)
    if weight is not None and not smoothing:
        loss = loss * coefficient
    return _reduce(loss, reduction, jnp.sum(coefficient))


def _nll_loss(x, target, weight, kwargs):
    axis = class_axis(x)
    valid = target != option(kwargs, "ignore_index")
    safe = jnp.where(valid, target, jnp.zeros_like(target))
    picked = -jnp.take_along_axis(x, jnp.expand_dims(safe, axis), axis=axis).squeeze(axis)
    coefficient = jnp.where(valid, 1 if weight is None else weight[safe], 0).astype(x.dtype)
    return _reduce(jnp.where(valid, picked * coefficient, 0), option(kwargs, "reduction"), jnp.sum(coefficient))


def _kl_div(x, target, kwargs):
    divergence = optax.losses.kl_divergence_with_log_targets if option(kwargs, "log_target") \
        else optax.losses.kl_divergence
    loss = divergence(x[..., None], target[..., None], axis=-1)  # a trailing axis of 1: torch's pointwise terms
    reduction = option(kwargs, "reduction")
    if reduction == "batchmean":
        return jnp.sum(loss) / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction, loss.size)


def _function(call):
    """f(input[, target][, weight]) in JAX arrays for this call."""
    kwargs = call.kwargs
    if call.function in ("softmax", "log_softmax"):
        softmax = getattr(jax.nn, call.function)
        return lambda x: softmax(x, axis=kwargs["dim"])
    if call.function == "kl_div":
        return lambda x, t: _kl_div(x, t, kwargs)
    if call.function == "nll_loss":
        return lambda x, t, w=None: _nll_loss(x, t, w, kwargs)
    probabilities = "probability_targets" in call.features
    if probabilities and "ignore_index" in kwargs:
        raise Unsupported("optax's softmax_cross_entropy has no ignore_index for probability targets")
    return lambda x, t, w=None: _cross_entropy(x, t, w, kwargs, probabilities)


class JaxBackend:
    name = "jax"
    capabilities = Capabilities(
        functions=("softmax", "log_softmax", "nll_loss", "cross_entropy", "kl_div"),
        dtypes=("float64", "float32", "float16", "bfloat16"), unsupported=frozenset(), api="array",
        differentiable=("input", "target"))

    def __init__(self, device="cpu"):
        cpu_only(self.name, device)
        _load()
        self._device = jax.devices("cpu")[0]
        self._dtypes = {"float64": jnp.float64, "float32": jnp.float32, "float16": jnp.float16,
                        "bfloat16": jnp.bfloat16}

    def describe(self):
        import jaxlib

        return {"name": self.name, "framework": "jax", "version": jax.__version__, "jaxlib": jaxlib.__version__,
                "optax": optax.__version__, "device": str(self._device), "x64": True}

    def _array(self, array, dtype):
        if array.dtype.kind == "f":  # the values are of `dtype` already: the cast is exact
            array = array.astype(self._dtypes[dtype])
        return jax.device_put(array, self._device)

    def run(self, call):
        def forward(f, primals):
            value, pullback = jax.vjp(f, *primals)
            value.block_until_ready()
            return value, pullback

        def backward(f, primals, pullback, value, cotangent):
            return pullback(cotangent.astype(value.dtype).reshape(value.shape))

        return run_functional(call, _function(call), self._array, forward, backward, float64,
                              lambda array: str(array.dtype))
