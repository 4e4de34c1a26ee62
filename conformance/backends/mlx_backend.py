"""MLX (CPU) as a backend: ``pip install "loss-conformance[mlx]"`` (mlx with its CPU library, mlx-cpu, on Linux),
``--backend mlx``.

mlx.core.softmax and mlx.nn.log_softmax, and mlx.nn.losses' cross_entropy (class indices or probabilities, label
smoothing), nll_loss and kl_div_loss; gradients by mx.vjp, target gradients included. MLX has no weight per class
(its ``weights`` are per element of the loss, and its 'mean' is not the weighted mean), no ignore_index, no
'batchmean', and kl_div_loss takes log-probability targets only: those are declared unsupported. softmax runs
with MLX's default precise=False, which accumulates half-precision rows in their own dtype, as documented.
"""
import numpy as np

from . import Capabilities, Unsupported
from ._adapter import class_axis, cpu_only, float64, import_framework, option, run_functional

mx = nn = None  # imported when the backend is instantiated: this module imports without MLX


def _function(call):
    """f(input[, target]) in MLX arrays for this call."""
    kwargs = call.kwargs
    if call.function == "softmax":
        return lambda x: mx.softmax(x, axis=kwargs["dim"])
    if call.function == "log_softmax":
        return lambda x: nn.log_softmax(x, axis=kwargs["dim"])
    reduction = option(kwargs, "reduction")
    if call.function == "kl_div":
        if not option(kwargs, "log_target"):
            raise Unsupported("mlx.nn.losses.kl_div_loss takes log-probability targets only (log_target=True)")
        # MLX sums the divergence over `axis`; a trailing axis of size 1 leaves torch's pointwise terms.
        return lambda x, t: nn.losses.kl_div_loss(x[..., None], t[..., None], axis=-1, reduction=reduction)
    if call.function == "nll_loss":
        return lambda x, t: nn.losses.nll_loss(x, t, axis=class_axis(x), reduction=reduction)
    if "ignore_index" in kwargs and "probability_targets" in call.features:
        raise Unsupported("mlx.nn.losses.cross_entropy has no ignore_index")  # nothing to drop it to
    smoothing = option(kwargs, "label_smoothing")
    return lambda x, t: nn.losses.cross_entropy(x, t, axis=class_axis(x), label_smoothing=smoothing,
                                                reduction=reduction)


def _numpy(array):
    if array.dtype in (mx.float16, mx.bfloat16):
        array = array.astype(mx.float32)  # exact; numpy cannot read MLX's bfloat16 buffers
    return float64(np.array(array))


def _mlx_dtype(array):
    return str(array.dtype)  # "mlx.core.float32": the runner reads the last word


class MlxBackend:
    name = "mlx"
    capabilities = Capabilities(
        functions=("softmax", "log_softmax", "nll_loss", "cross_entropy", "kl_div"),
        dtypes=("float64", "float32", "float16", "bfloat16"),  # float64: CPU only, which this runs on
        unsupported=frozenset({"weight", "ignore_index", "ignore_index_class", "reduction:batchmean"}),
        api="array", differentiable=("input", "target"))

    def __init__(self, device="cpu"):
        global mx, nn
        cpu_only(self.name, device)
        mx, nn = import_framework(("mlx.core", "mlx.nn"), "mlx")
        mx.set_default_device(mx.cpu)

    def describe(self):
        return {"name": self.name, "framework": "mlx", "version": mx.__version__, "device": str(mx.default_device())}

    def _array(self, array, dtype):
        if array.dtype.kind != "f":
            return mx.array(array)
        # dtype= is needed: mx.array of a float64 numpy array is float32 otherwise (its low bits lost).
        # float16 / bfloat16 values are exact in float32, and the cast from there is exact too.
        return mx.array(array, dtype=mx.float64 if dtype == "float64" else mx.float32).astype(getattr(mx, dtype))

    def run(self, call):
        def forward(f, primals):
            value = f(*primals)
            mx.eval(value)  # MLX is lazy: errors surface when the graph is evaluated
            return value, None

        def backward(f, primals, _, value, cotangent):
            _, grads = mx.vjp(f, primals, [cotangent.reshape(value.shape)])
            mx.eval(grads)
            return grads

        return run_functional(call, _function(call), self._array, forward, backward, _numpy, _mlx_dtype)
