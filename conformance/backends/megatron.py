"""Megatron-LM's vocab-parallel cross-entropy (megatron-core: ``tensor_parallel.vocab_parallel_cross_entropy``), run
on the ranks of a vocab-parallel world: ``--backend megatron-core --world-size R`` (docs/vocab-parallel.md).

What the adapter says, and why, from megatron-core's own source (tensor_parallel/cross_entropy.py):
- it takes the tensor-parallel group of ``parallel_state``, initialised here with the world's R ranks;
- every rank's shard must be equally wide (VocabUtility derives the range from the width): padded shards;
- it returns the loss of each token, computes in float32 (``.float()``) and returns float32 losses of 16-bit logits;
  it has no class weights and no ignore_index (a target outside the vocabulary is masked on every rank, giving the
  log-sum-exp, not 0). Megatron's training loop (pretrain_gpt.py's loss_func) gives ignored tokens a loss mask
  and averages ``sum(losses * mask) / sum(mask)``; the adapter does the same for ignore_index and the reductions
  (its ignored tokens get target 0, and a where() rather than a product, so that a non-finite loss of an ignored
  token is not the adapter's NaN). Those few lines are the adapter's, not megatron-core's;
- label smoothing in Megatron's form (α / (V - 1) to the classes but the target);
- float32 logits are overwritten with the softmax, and then the gradient, in place, by design ("In-place
  subtraction reduces memory pressure"): the inputs.unchanged check does not apply.
"""
from importlib.metadata import PackageNotFoundError, version

from . import BackendLoadError, Capabilities, Unsupported


class MegatronCore:
    name = "megatron-core"
    shardings = ("padded",)
    label_smoothing = "megatron"
    capabilities = Capabilities(functions=("cross_entropy",), differentiable=("input",), loss_dtype="float32",
                                in_place_gradient=True,
                                unsupported=frozenset({"weight"}))

    def __init__(self):
        try:
            from megatron.core import parallel_state, tensor_parallel
        except ImportError as error:
            raise BackendLoadError(f"megatron-core cannot be imported ({error}); install it with: pip install "
                                   "--no-deps megatron-core (it depends on torch)") from None
        self._parallel_state, self._tensor_parallel = parallel_state, tensor_parallel

    def describe(self):
        import torch

        try:
            own = version("megatron-core")
        except PackageNotFoundError:
            own = None
        return {"name": self.name, "framework": "torch", "version": own, "framework_version": torch.__version__}

    def setup(self, group, rank, world_size):
        self._parallel_state.initialize_model_parallel(tensor_model_parallel_size=world_size)

    def cross_entropy(self, logits, target, *, shard, group, weight=None, ignore_index=-100, reduction="mean",
                      label_smoothing=0.0):
        import torch

        if weight is not None:
            raise Unsupported("megatron-core's vocab_parallel_cross_entropy has no class weights")
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"{reduction} is not a valid value for reduction")
        mask = target != ignore_index
        losses = self._tensor_parallel.vocab_parallel_cross_entropy(
            logits, torch.where(mask, target, torch.zeros_like(target)), label_smoothing)
        losses = torch.where(mask, losses, torch.zeros_like(losses))
        if reduction == "none":
            return losses
        return losses.sum() if reduction == "sum" else losses.sum() / mask.sum()
