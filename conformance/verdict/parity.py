"""Parity mode (``run --parity torch``): for kernels that aim at torch's behaviour, not only the documented one.

A check that fails against the oracle, on a (case, dtype, check) that torch's declared deviations cover,
passes when the kernel's result equals torch's own on the same call within the same budget (measured against
the oracle's scale). The record says so (``"parity": "torch"``, the deviation's reason); a kernel that agrees
with the oracle there passes as usual, never "xpassed". Torch runs in the same process, only for those checks.
"""
import numpy as np

from .compare import compare_array
from .deviations import DeviationSet, default_deviation_paths
from ..expected import Wanted

_TORCH = {}  # device -> TorchBackend, one per process


def parity_deviations(target):
    """The declared deviations of the parity target (torch's, cases/xfails/torch.yaml and what it includes)."""
    return DeviationSet.from_paths(default_deviation_paths(target))


def _torch(device):
    if device not in _TORCH:
        from ..backends.torch_backend import TorchBackend

        _TORCH[device] = TorchBackend(device=device)
    return _TORCH[device]


def _against_torch(check, outcome, theirs_outcome, expected, dtype, budget):
    """{check name: CheckResult} of the kernel's array that ``check`` is about, compared with torch's."""
    prefix = check.rpartition(".")[0] if check.startswith("grad_") else ""
    field = prefix.removeprefix("grad_")
    if prefix:
        got, got_dtype = outcome.grads.get(field), outcome.grad_dtypes.get(field)
        wanted = (expected.gradients or {}).get(field)
        theirs = theirs_outcome.grads.get(field)
    else:
        got, got_dtype, theirs, wanted = outcome.value, outcome.dtype, theirs_outcome.value, expected.value
    if got is None or theirs is None or theirs_outcome.error:
        return {}
    scale = wanted.scale if wanted is not None and wanted.hi.shape == theirs.shape else np.abs(theirs) + 1.0
    results = compare_array(got, got_dtype, Wanted(theirs, np.zeros_like(theirs), scale), dtype,
                            budget(prefix or "value"), prefix=f"{prefix}." if prefix else "")
    return {result.check: result for result in results}


def _agrees(check, against):
    if check == "raises":  # torch returned a value where the docs say raise: the kernel must return the same
        return bool(against) and all(against[name].status == "passed" for name in ("shape", "nonfinite", "value"))
    return check in against and against[check].status == "passed"


def apply_parity(parity, case, dtype, call, results, outcome, expected, budget, device):
    """The check results, with failures that torch shares on its declared deviations turned into parity passes."""
    failed = [r for r in results if r.status == "failed" and parity.deviation(case.full_id, dtype, r.check)]
    if not failed:
        return results
    theirs = _torch(device).run(call)
    for result in failed:
        if _agrees(result.check, _against_torch(result.check, outcome, theirs, expected, dtype, budget)):
            entry = parity.deviation(case.full_id, dtype, result.check)
            result.status, result.parity = "passed", "torch"
            result.message = f"matches torch's declared deviation: {entry.reason}"
    return results
