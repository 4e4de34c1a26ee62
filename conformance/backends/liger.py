"""Liger-Kernel (the ``liger`` extra): its Triton cross entropy and fused linear cross entropy, with z-loss and
softcap, as a torch-API backend: ``--backend liger`` (an entry point) or ``conformance.backends.liger:backend``.

On CUDA the kernels run natively. On the CPU they run through Triton's interpreter (``TRITON_INTERPRET=1``, set
here before Liger is imported: triton reads it when a kernel is decorated) with the shims of
``_triton_interpreter.py``; the interpreter's bfloat16 arithmetic is not a GPU's even with them (unary operations
run on the uint16 storage), so bfloat16 is not offered there (docs/extensions.md, "Liger-Kernel").

What Liger's API cannot express is unsupported, never failed: probability targets, inputs other than (N, C) and
(N, H), the legacy reduction arguments, the z-loss weighted by class, and the outputs other than the z-loss.
Liger writes the logits' gradient into the logits, and its fused linear cross entropy returns float32 losses of
16-bit inputs: declared choices (IN_PLACE_GRADIENT, LOSS_DTYPE for linear_cross_entropy).
"""
import os
from types import SimpleNamespace

UNSUPPORTED_OUTPUTS = ("lse", "target_logprob", "entropy")


def _check(input, target, size_average, reduce, z_loss_weighting, return_outputs, ndim=2):
    if input.dim() != ndim or target.shape == input.shape:
        raise NotImplementedError(f"Liger takes ({'N, C' if ndim == 2 else 'N, H'}) inputs and class indices only")
    if size_average is not None or reduce is not None:
        raise NotImplementedError("Liger has no legacy size_average / reduce")
    if z_loss_weighting != "count":
        raise NotImplementedError("Liger's z-loss is not weighted by class")
    if any(name not in ("z_loss",) + UNSUPPORTED_OUTPUTS for name in return_outputs):
        raise ValueError(f"unknown output in {list(return_outputs)}")  # the contract's error, not Liger's choice
    if any(name in UNSUPPORTED_OUTPUTS for name in return_outputs):
        raise NotImplementedError(f"Liger returns the loss and the z-loss only, not {list(return_outputs)}")


def _result(outputs, return_outputs):
    loss, z_loss = outputs[0], outputs[1]
    if not return_outputs:
        return loss
    return {"loss": loss, "z_loss": z_loss}


def _functions():
    from liger_kernel.ops.cross_entropy import LigerCrossEntropyFunction
    from liger_kernel.ops.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyFunction

    def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                      reduction="mean", label_smoothing=0.0, softcap=None, z_loss_scale=0.0, z_loss_weighting="count",
                      return_outputs=()):
        _check(input, target, size_average, reduce, z_loss_weighting, return_outputs)
        outputs = LigerCrossEntropyFunction.apply(input, target, weight, ignore_index, float(z_loss_scale),
                                                  float(label_smoothing), reduction, softcap, bool(return_outputs))
        return _result(outputs, return_outputs)

    def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                             ignore_index=None, label_smoothing=0.0, softcap=None, z_loss_scale=0.0,
                             z_loss_weighting="count", return_outputs=()):
        _check(input, target, None, None, z_loss_weighting, return_outputs)
        if linear_weight.dim() != 2:
            raise NotImplementedError("Liger takes a (V, H) linear weight")
        outputs = LigerFusedLinearCrossEntropyFunction.apply(
            input, linear_weight, target, linear_bias, weight, -100 if ignore_index is None else ignore_index,
            float(z_loss_scale), float(label_smoothing), reduction, softcap, bool(return_outputs))
        return _result(outputs, return_outputs)

    return cross_entropy, linear_cross_entropy


def backend(device="cpu"):
    """The Liger backend on a device (the CPU through Triton's interpreter)."""
    import importlib.util

    from . import BackendLoadError

    if importlib.util.find_spec("liger_kernel") is None or importlib.util.find_spec("triton") is None:
        raise BackendLoadError('the liger backend needs Liger-Kernel and Triton: pip install "loss-conformance[liger]"'
                               " (both depend on torch: pin it, see requirements/constraints.txt)")
    if device == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"
        from ._triton_interpreter import install

        install()
    import importlib.metadata

    from ..spec.features import EXTENSION_FEATURES
    from .torch_backend import TorchBackend

    cross_entropy, linear_cross_entropy = _functions()
    namespace = SimpleNamespace(
        __name__="liger_kernel", cross_entropy=cross_entropy, linear_cross_entropy=linear_cross_entropy,
        __version__=importlib.metadata.version("liger-kernel"),
        SUPPORTED_DTYPES=("float32", "float16") if device == "cpu" else ("float32", "float16", "bfloat16"),
        SUPPORTED_FEATURES=tuple(f for f in EXTENSION_FEATURES if f in ("softcap", "z_loss", "output:z_loss")),
        UNSUPPORTED_FEATURES=("probability_targets", "shape:k-dim", "shape:1-dim", "module_form", "legacy_reduction"),
        IN_PLACE_GRADIENT=True, LOSS_DTYPE={"linear_cross_entropy": "float32"})
    return TorchBackend(namespace=namespace, device=device, name="liger")
