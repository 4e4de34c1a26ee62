"""Known deviations of torch as the fuzzer meets them: narrow rules over a drawn call and a failing check.

Generated case ids cannot match the id globs of cases/xfails/torch.yaml, so each deviation documented in
docs/spec-notes.md that the fuzzer's inputs can reach has a rule here: the checks it may fail, and a predicate
over the call's exact values that holds only where that deviation applies (a zero coefficient meeting an
infinite logarithm, a float16 intermediate beyond 65504, ...). A failure that no rule explains is a finding.
The rules are torch's; they apply to torch-based backends (torch, torch-compile, the mutants), see
``rules_for``.
"""
import math
from dataclasses import dataclass
from fnmatch import fnmatchcase

import numpy as np

from ..spec.dtypes import float_format
from ..spec.classes import class_dim
from ..spec.features import effective_reduction

SPEC = "docs/spec-notes.md#"


@dataclass(frozen=True)
class KnownDeviation:
    name: str
    functions: tuple
    checks: tuple  # fnmatch patterns over check names
    reason: str
    spec: str
    applies: object  # predicate(call) -> bool
    dtypes: tuple | None = None  # None: every dtype

    def matches(self, call, record):
        return (call.function in self.functions and (self.dtypes is None or call.dtype in self.dtypes)
                and any(fnmatchcase(record["check"], p) for p in self.checks) and bool(self.applies(call)))


# ---- views of a loss call -------------------------------------------------------------------------------------


def class_rows(array):
    """(rows, C): the input as one row of C logits per sample (class dim moved last), or None when 0-dim."""
    if array.ndim == 0:
        return None
    moved = np.moveaxis(array, class_dim(array.ndim), -1)
    return moved.reshape(-1, moved.shape[-1])


def index_rows(call):
    """(rows, targets, counted mask) of a class-index call, or None for probability targets."""
    x, target = call.arrays["input"], call.arrays["target"]
    if target.shape == x.shape or target.dtype.kind == "f":
        return None
    rows = class_rows(x)
    targets = target.reshape(-1).astype(np.int64)
    return rows, targets, targets != call.kwargs.get("ignore_index", -100)


def weights(call, n_classes):
    return call.arrays["weight"] if "weight" in call.arrays else np.ones(n_classes)


def log_probabilities(rows):
    """The exact log-softmax of each row where its value is -inf or finite (rows with +inf/NaN give NaN)."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        top = np.max(rows, axis=1, keepdims=True) if rows.size else rows
        finite_top = np.where(np.isfinite(top), top, 0.0)
        shifted = rows - finite_top
        log_total = np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        return np.where(np.isfinite(top), shifted - log_total, np.nan)


# ---- predicates -------------------------------------------------------------------------------------------------


def smoothing(call):
    value = call.kwargs.get("label_smoothing", 0.0)
    return value if 0.0 < value <= 1.0 else 0.0  # torch smooths only for 0 < e <= 1


def torch_coefficients(call):
    """(log p, the factor torch multiplies each log p by) over every row torch reads, or None (0-dim input)."""
    if call.arrays["input"].ndim == 0:
        return None
    if call.function == "nll_loss":
        indexed = index_rows(call)
        rows, targets, counted = indexed
        w = weights(call, rows.shape[1])
        picked = rows[counted, np.clip(targets[counted], 0, rows.shape[1] - 1)]
        return picked, w[np.clip(targets[counted], 0, rows.shape[1] - 1)]
    e = smoothing(call)
    rows = class_rows(call.arrays["input"])
    n_classes = rows.shape[1]
    w = weights(call, n_classes)
    indexed = index_rows(call)
    if indexed is None:  # probabilities: sum_c w_c ((1 - e) y_c + e / C) log p_c
        targets = class_rows(call.arrays["target"])
        return log_probabilities(rows), w * ((1.0 - e) * targets + e / n_classes)
    rows, targets, counted = indexed
    log_p = log_probabilities(rows[counted])
    onehot = np.eye(n_classes)[np.clip(targets[counted], 0, n_classes - 1)]
    # The nll part and the smoothing part are separate products in torch: either factor may be exactly 0.
    nll_factor = np.where(onehot > 0, (1.0 - e) * w, np.inf)
    smooth_factor = np.broadcast_to(w * e / n_classes if e > 0 else np.full(n_classes, np.inf), log_p.shape)
    return np.concatenate([log_p, log_p]), np.concatenate([nll_factor, smooth_factor])


def zero_times_infinite_log(call):
    """torch multiplies an infinite log-probability by an exactly zero factor (0 * inf = NaN in torch)."""
    pair = torch_coefficients(call)
    if pair is None:
        return False
    log_p, factor = pair
    return bool(np.any(np.isinf(log_p) & (factor == 0)))


def zero_target_gradient_coefficient(call):
    """Probability targets: d l / d y_c = -(1 - e) w_c log p_c, and torch forms 0 * inf where (1 - e) w_c = 0."""
    if call.arrays["input"].ndim == 0 or index_rows(call) is not None:
        return False
    rows = class_rows(call.arrays["input"])
    factor = (1.0 - smoothing(call)) * weights(call, rows.shape[1])
    return bool(np.any(np.isinf(log_probabilities(rows)) & (factor == 0)))


def ignored_row_without_softmax(call):
    """An ignored row whose softmax is undefined (all -inf, or a +inf or NaN logit)."""
    indexed = index_rows(call)
    if indexed is None or indexed[0].size == 0:
        return False
    rows, _, counted = indexed
    undefined = ~np.all(np.isfinite(rows) | (rows == -np.inf), axis=1) | np.all(rows == -np.inf, axis=1)
    return bool(np.any(undefined & ~counted))


def zero_mean_denominator(call):
    """(class indices, 'mean', sum of the counted rows' weights exactly 0, some counted weight nonzero)."""
    indexed = index_rows(call)
    if indexed is None or effective_reduction(call.kwargs) != "mean":
        return None
    rows, targets, counted = indexed
    w = weights(call, rows.shape[1])[np.clip(targets[counted], 0, rows.shape[1] - 1)]
    if not w.size or math.fsum(w) != 0.0:
        return None
    return bool(np.any(w != 0))


def zero_denominator_with_smoothing(call):
    return zero_mean_denominator(call) is not None and smoothing(call) > 0


def weights_summing_to_zero(call):
    return bool(zero_mean_denominator(call))


def intermediate_overflow(call):
    """An intermediate torch keeps in the dtype (log p, w * log p, their sums over classes and rows) exceeds the
    dtype's largest value, although the result may be representable."""
    pair = torch_coefficients(call)
    if pair is None:
        return False
    log_p, factor = pair
    largest = float_format(call.dtype).largest
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(log_p) & np.isfinite(factor)
        products = np.abs(np.where(finite, log_p, 0.0) * np.where(finite, factor, 0.0))
    finite_log_p = np.abs(np.where(np.isfinite(log_p), log_p, 0.0))
    try:
        total = math.fsum(products.reshape(-1))
    except OverflowError:  # the exact sum is beyond float64 itself
        total = math.inf
    return bool(np.any(finite_log_p > largest) or total > largest)


def kl_zero_target_infinite_input(call):
    x, y = call.arrays["input"], call.arrays["target"]
    return not call.kwargs.get("log_target") and bool(np.any((y == 0) & np.isinf(x)))


def kl_log_target_neg_inf(call):
    return bool(call.kwargs.get("log_target")) and bool(np.any(call.arrays["target"] == -np.inf))


def kl_batchmean_with_legacy(call):
    legacy = any(call.kwargs.get(name) is not None for name in ("size_average", "reduce"))
    return call.form == "functional" and call.kwargs.get("reduction") == "batchmean" and legacy


def upstream_per_element(call):
    """|the upstream gradient| each kl_div element receives, from the case's seeded grad_output."""
    from ..inputs.generate import make_grad_output

    x = call.arrays["input"]
    reduction = effective_reduction(call.kwargs)
    grad_output = np.abs(make_grad_output(call.seed, x.shape if reduction == "none" else (), call.dtype))
    divisor = {"mean": max(x.size, 1), "batchmean": x.shape[0] if x.ndim and x.shape[0] else 1}.get(reduction, 1)
    return np.broadcast_to(grad_output / divisor, x.shape)


def kl_subnormal_product(call):
    """A positive target y with g * y below the dtype's smallest normal: torch's xlogy backward loses its bits."""
    if call.kwargs.get("log_target"):
        return False
    y = call.arrays["target"]
    product = y * upstream_per_element(call)
    return bool(np.any((y > 0) & (product < float_format(call.dtype).smallest_normal)))


def kl_log_target_exp_below_normal(call):
    """log_target: some finite exp(t) falls below the dtype's smallest normal, where torch rounds it (losing bits,
    or to 0) before multiplying by t - x."""
    if not call.kwargs.get("log_target"):
        return False
    t = call.arrays["target"]
    with np.errstate(under="ignore"):
        return bool(np.any(np.isfinite(t) & (np.exp(np.where(np.isfinite(t), t, 0.0))
                                             < float_format(call.dtype).smallest_normal)))


def kl_intermediate_overflow(call):
    """log_target=False: y log y or y x beyond the dtype's largest value, although the result may be finite."""
    if call.kwargs.get("log_target"):
        return False
    x, y = call.arrays["input"], call.arrays["target"]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        terms = np.abs(np.concatenate([(y * np.log(y)).reshape(-1), (y * x).reshape(-1)]))
    return bool(np.any(np.isfinite(terms) & (terms > float_format(call.dtype).largest)))


def weight_of_c_elements_for_k_dim(call):
    """A K-dim input with a weight of C elements that is not 1-D: torch checks only the element count."""
    x, weight = call.arrays["input"], call.arrays.get("weight")
    return (weight is not None and x.ndim >= 3 and weight.ndim != 1 and weight.size == x.shape[1])


def negative_or_nan_smoothing(call):
    value = call.kwargs.get("label_smoothing", 0.0)
    return math.isnan(value) or value < 0


def legacy_not_bool(call):
    return any(not isinstance(call.kwargs.get(n), (bool, type(None))) for n in ("size_average", "reduce"))


LOSSES = ("nll_loss", "cross_entropy", "kl_div")
NONFINITE = ("nonfinite", "grad_input.nonfinite", "grad_target.nonfinite")
TORCH_RULES = (
    KnownDeviation("label-smoothing-below-zero", ("cross_entropy",), ("raises",),
                   "torch accepts a negative (or NaN) label_smoothing and computes the unsmoothed loss",
                   SPEC + "label_smoothing-range", negative_or_nan_smoothing),
    KnownDeviation("legacy-not-bool", LOSSES, ("raises",),
                   "torch accepts any value for size_average / reduce and uses its truth; the docs type them bool",
                   SPEC + "deprecated-size_average--reduce", legacy_not_bool),
    KnownDeviation("kl-batchmean-with-legacy", ("kl_div",), ("value", "grad_*.value") + NONFINITE,
                   "F.kl_div with reduction='batchmean' and size_average/reduce: torch takes the legacy "
                   "reduction but still divides by input.size(0)", SPEC + "deprecated-size_average--reduce",
                   kl_batchmean_with_legacy),
    KnownDeviation("kl-zero-target-infinite-input", ("kl_div",), ("nonfinite",),
                   "torch returns NaN for target 0 with input +-inf; the convention 0 log(0/q) = 0 gives 0",
                   SPEC + "zero-coefficients-0--log-0--0", kl_zero_target_infinite_input),
    KnownDeviation("kl-log-target-neg-inf", ("kl_div",), ("nonfinite", "grad_target.nonfinite"),
                   "log_target=True with target -inf: torch computes 0 * -inf = NaN; the oracle gives 0",
                   SPEC + "zero-coefficients-0--log-0--0", kl_log_target_neg_inf),
    KnownDeviation("kl-tiny-target-gradient", ("kl_div",), ("grad_target.value",),
                   "torch accuracy defect: xlogy's target gradient forms grad * y, which loses bits below the "
                   "smallest normal", SPEC + "known-torch-accuracy-defects", kl_subnormal_product),
    KnownDeviation("zero-coefficient-on-infinite-log", ("nll_loss", "cross_entropy"), NONFINITE,
                   "a zero weight, target or (1 - label_smoothing) on a -inf log-probability contributes 0 (0 log 0 = "
                   "0); torch computes 0 * inf = NaN", SPEC + "zero-coefficients-0--log-0--0",
                   zero_times_infinite_log),
    KnownDeviation("zero-coefficient-target-gradient", ("cross_entropy",), ("grad_target.nonfinite",),
                   "probability targets: the target gradient -(1 - e) w_c log p_c has coefficient 0 (label_smoothing 1 "
                   "or a zero weight) on a -inf log-probability: 0 by the zero-coefficient rule, NaN in torch",
                   SPEC + "cross-entropy-as-one-coefficient-form", zero_target_gradient_coefficient),
    KnownDeviation("ignored-row-undefined-softmax", ("cross_entropy",), ("grad_input.nonfinite",),
                   "an ignored row whose softmax is undefined is not read (gradient 0); torch returns NaN",
                   SPEC + "ignored-rows-and-entries-the-loss-does-not-read", ignored_row_without_softmax),
    KnownDeviation("zero-total-weight-with-smoothing", ("cross_entropy",), ("nonfinite", "grad_input.nonfinite"),
                   "label_smoothing > 0, 'mean', zero total target weight: the oracle gives an infinity, torch "
                   "takes the unsmoothed part as 0/0 = NaN", SPEC + "all-targets-ignored-zero-total-weight-00",
                   zero_denominator_with_smoothing),
    KnownDeviation("weights-summing-to-zero", ("cross_entropy",), ("grad_input.nonfinite",),
                   "weights summing to zero: the target entry's gradient is an infinity, torch forms inf - inf",
                   SPEC + "zero-denominator-all-ignored-zero-total-weight", weights_summing_to_zero),
    KnownDeviation("intermediate-overflow", ("nll_loss", "cross_entropy"), NONFINITE,
                   "torch accuracy defect: an intermediate kept in the dtype (log-probabilities, weighted terms, the "
                   "smoothing sum, the sum of row losses) exceeds its largest value although the result may be "
                   "representable", SPEC + "known-torch-accuracy-defects", intermediate_overflow),
    KnownDeviation("kl-intermediate-overflow", ("kl_div",), NONFINITE,
                   "torch accuracy defect: y log y or y x is kept in the dtype and overflows although the result "
                   "may be representable", SPEC + "known-torch-accuracy-defects", kl_intermediate_overflow),
    KnownDeviation("kl-log-target-exp-below-normal", ("kl_div",), ("value", "grad_*.value") + NONFINITE,
                   "torch accuracy defect: log_target=True rounds exp(t) to the dtype before multiplying by t - x, "
                   "losing bits below the smallest normal (or all of them: 0 * inf = NaN against an infinite "
                   "input)", SPEC + "known-torch-accuracy-defects", kl_log_target_exp_below_normal),
    KnownDeviation("weight-any-shape-k-dim", ("nll_loss", "cross_entropy"), ("raises",),
                   "for K-dim inputs torch checks only that the weight has C elements, so a (1, C) or (C, 1) "
                   "weight is accepted; the docs require a tensor of size C", SPEC + "weight-shape",
                   weight_of_c_elements_for_k_dim),
)


def rules_for(spec, choice="auto"):
    """The rules in force: torch's for torch-based backends under 'auto' (torch, torch-compile, the mutants)."""
    if choice == "none":
        return ()
    if choice == "torch":
        return TORCH_RULES
    torch_based = spec.split(":")[0] in ("torch", "torch-compile") or spec.startswith("conformance.mutants.")
    return TORCH_RULES if torch_based else ()


def explain(rules, call, record):
    """The first rule that explains this failing record of this call, or None."""
    return next((rule for rule in rules if rule.matches(call, record)), None)
