"""One huge case in one dtype against a torch-API backend: build, certify the kinds, call, compare, free."""
import gc
import resource
import sys
import time
from dataclasses import dataclass, field

from ..backends import capabilities_of
from ..backends.torch_backend import TorchBackend
from ..verdict.checks import value_dtype
from ..verdict.compare import CheckResult
from ..verdict.tolerances import Tolerances
from . import cases as tier
from .compare import compare_losses, compare_rows
from .expected import budget, certify
from .tensors import build


class NotTorchAPI(Exception):
    """A backend the tier cannot hand a 2**31-element torch tensor to."""


@dataclass
class HugeResult:
    case: str
    dtype: str
    checks: list
    seconds: dict = field(default_factory=dict)  # oracle, inputs, forward, backward, compare
    peak_memory_gib: float | None = None  # the process's peak resident memory so far (CPU), or the device's


def torch_api(backend):
    if not isinstance(backend, TorchBackend):
        raise NotTorchAPI(f"the huge tier hands torch tensors to the functions: backend {backend.name!r} is not "
                          "torch, torch-compile or a namespace of torch callables")
    return backend


def _reset_peak(torch, device):
    """Start the case's peak memory afresh: the device's counter, or on Linux the process's resident peak
    (VmHWM, reset by writing 5 to /proc/self/clear_refs); elsewhere the peak stays the process's so far."""
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def _peak_gib(torch, device):
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**30
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 2**20
    except (OSError, StopIteration):
        scale = 2**30 if sys.platform == "darwin" else 2**20  # ru_maxrss: bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _memory_problem(case, geometry, dtype, device):
    """Why a case would not fit in the memory available now (Linux's MemAvailable, CPU only), or None: a case the
    machine cannot hold is skipped with the numbers, not killed halfway by the kernel's OOM killer."""
    if device != "cpu":
        return None
    try:
        with open("/proc/meminfo") as meminfo:
            available = next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable:")) / 2**20
    except (OSError, StopIteration):
        return None
    # 16-bit elements, and 0.5 GiB for the process itself and the comparison's float64 chunks (measured: 0.4 GiB)
    needed = case.peak_tensors * geometry.elements * 2 / 2**30 + 0.5
    if needed <= available:
        return None
    return (f"needs about {needed:.1f} GiB ({case.peak_tensors} tensors of {geometry.elements} {dtype} elements and "
            f"0.5 GiB), {available:.1f} GiB available")


def _call(backend, case, tensors):
    keyword = {"ignore_index": tier.IGNORE_INDEX} if case.function == "cross_entropy" else {}
    function = backend.callable_for(case.function, "functional", case.kwargs, keyword)
    arguments = [tensors["input"]] + ([tensors["target"]] if tensors["target"] is not None else [])
    return function(*arguments)


def _failed(check, error):
    return CheckResult(check, "failed", f"{type(error).__name__}: {str(error)[:2000]}", n=1, bad=1)


_CERTIFIED = {}  # (function, reduction, geometry, dtype) -> (kinds, wanted), the last few: layouts share kinds
_CERTIFIED_KEPT = 4  # a function's reductions in both dtypes: a case's other layout finds them


def _kinds_certified(case, geometry, dtype):
    """(the case's kinds, the oracle's answers on them): the same for both layouts of a function and reduction,
    so certified once for the two."""
    key = (case.function, case.kwargs.get("reduction"), geometry, dtype)
    if key not in _CERTIFIED:
        if len(_CERTIFIED) >= _CERTIFIED_KEPT:
            del _CERTIFIED[next(iter(_CERTIFIED))]
        kinds = tier.make_kinds(case, geometry, dtype)
        _CERTIFIED[key] = kinds, certify(case, kinds)
    return _CERTIFIED[key]


def _judged(backend, case, geometry, dtype, tolerances):
    """(the loss's result dtype, the value's budget, the input gradient's budget) for this backend's declared
    choices: its loss dtype, summation order and roundings to the dtype."""
    capabilities = capabilities_of(backend)
    result_dtype, judged_in = value_dtype(case.function, dtype, capabilities)
    declared = (capabilities.summation_order, capabilities.dtype_roundings, tolerances or Tolerances.load())
    return (result_dtype, judged_in, budget(case, geometry, "value", judged_in, *declared),
            budget(case, geometry, "grad_input", dtype, *declared))


def _forward_checks(torch, case, geometry, output, tensors, wanted, kinds, dtype, judged):
    result_dtype, judged_in, value_budget, _ = judged
    if not isinstance(output, torch.Tensor):
        return [CheckResult("value", "failed", f"returned {type(output).__name__}, not a torch.Tensor", n=1, bad=1)]
    if case.function == "log_softmax":
        return compare_rows(torch, output, case.shape(geometry), case.class_dim, wanted["value"], kinds, dtype,
                            value_budget)
    loss_shape = tensors["target"].shape if case.kwargs["reduction"] == "none" else ()
    return compare_losses(torch, output, wanted["value"], kinds, loss_shape, judged_in, value_budget, result_dtype)


def run_case(backend, case, dtype, geometry, tolerances=None):
    """HugeResult of a case in a dtype: the value's checks and the input gradient's ("grad_input." ...)."""
    torch, backend = backend.torch, torch_api(backend)
    problem = _memory_problem(case, geometry, dtype, backend.device)
    if problem:
        return HugeResult(case.id, dtype, [CheckResult("value", "skipped", problem)])
    _reset_peak(torch, backend.device)
    seconds, clock, tensors = {}, [time.perf_counter()], {}

    def lap(name):
        now = time.perf_counter()
        seconds[name] = round(seconds.get(name, 0.0) + now - clock[0], 3)
        clock[0] = now

    def result(checks):
        tensors.clear()
        gc.collect()  # a reference cycle (an autograd context, a compiled graph's) must not hold 4 GiB into the next
        return HugeResult(case.id, dtype, checks, seconds, _peak_gib(torch, backend.device))

    (kinds, wanted), judged = _kinds_certified(case, geometry, dtype), _judged(backend, case, geometry, dtype,
                                                                                tolerances)
    lap("oracle")
    tensors.update(build(torch, case, geometry, kinds, dtype, backend.device))
    lap("inputs")
    try:
        output = _call(backend, case, tensors)
    except Exception as error:  # noqa: BLE001 -- the implementation under test failed: a result
        return result([_failed("value", error)])
    lap("forward")
    checks = _forward_checks(torch, case, geometry, output, tensors, wanted, kinds, dtype, judged)
    lap("compare")
    try:
        grad, = torch.autograd.grad(output, tensors["input"], tensors["upstream"].reshape(output.shape))
    except Exception as error:  # noqa: BLE001
        return result(checks + [_failed("grad_input.value", error)])
    del output
    lap("backward")
    checks += compare_rows(torch, grad, case.shape(geometry), case.class_dim, wanted["grad_input"], kinds, dtype,
                           judged[3], prefix="grad_input.")
    lap("compare")
    return result(checks)
