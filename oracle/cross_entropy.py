"""Cross entropy over logits, with class-index or class-probability targets, and its vector-Jacobian product.

Both target kinds reduce to one per-row form, l_n = -sum_c a_{n,c} log_softmax(x_n)_c, with coefficients
  index targets:        a_c = (1 - e) w_{y_n} 1{c = y_n} + (e / C) w_c   (0 for an ignored row)
  probability targets:  a_c = w_c ((1 - e) y_{n,c} + e / C)
where e is label_smoothing. Its gradient is d l_n / d x_{n,c} = p_{n,c} sum_k a_{n,k} - a_{n,c} (p = softmax).
"""
import mpmath
import numpy as np

from ._mp import NAN, ZERO, Gradients, as_numpy, fsum, to_mpf_array, weighted, working_precision, wrap
from ._reduction import LOSS_REDUCTIONS, resolve_reduction
from ._rows import RowSoftmax, class_rows
from ._targets import check_ignore_index, class_weights, is_probability_target, smoothing_factor
from .errors import IgnoreIndexWithProbabilitiesError, TargetDtypeError
from .nll_loss import IndexProblem, LossRows


class ProbabilityProblem(LossRows):
    """Rows of logits with a class-probability target of the same shape; the 'mean' divisor is N * d1 * ... * dK."""

    def __init__(self, input, target, weight, ignore_index):
        check_ignore_index(ignore_index)
        if ignore_index >= 0:
            raise IgnoreIndexWithProbabilitiesError(
                f"ignore_index={ignore_index} names a class, but class-probability targets have no ignored class")
        self.values = to_mpf_array(input)
        self.rows, self.out_shape = class_rows(self.values)
        self.n_classes = self.rows.shape[1]
        self.weights = class_weights(weight, self.n_classes)
        self.target_rows, _ = class_rows(to_mpf_array(target, "target"), "target")
        self.denominator = mpmath.mpf(self.rows.shape[0])


def _problem(input, target, weight, ignore_index):
    target_array, input_shape = as_numpy(target), np.shape(input)
    if not is_probability_target(target_array, input_shape):
        return IndexProblem(input, target, weight, ignore_index)
    if target_array.dtype == object and any(isinstance(v, (bool, np.bool_)) for v in target_array.flat):
        raise TargetDtypeError("class-probability target must be floating point, got booleans")
    if target_array.dtype != object and target_array.dtype.kind not in "fV":
        raise TargetDtypeError(f"class-probability target (the input's shape) must be floating, got {target_array.dtype}")
    return ProbabilityProblem(input, target, weight, ignore_index)


def _coefficients(problem, n, smoothing):
    """a_{n,c} for row n (None for an ignored row) and the factor (1 - e) w_c of d l_n / d y_{n,c}."""
    weights, n_classes = problem.weights, problem.n_classes
    uniform = smoothing / n_classes
    if isinstance(problem, IndexProblem):
        y = problem.targets[n]
        if y is None:
            return None
        coefficients = [uniform * w for w in weights] if smoothing else [ZERO] * n_classes
        coefficients[y] += (1 - smoothing) * weights[y]
        return coefficients
    probabilities = problem.target_rows[n]
    if smoothing:
        probabilities = [(1 - smoothing) * y + uniform for y in probabilities]
    return [w * q for w, q in zip(weights, probabilities)]


def _setup(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing):
    reduction = resolve_reduction(reduction, size_average, reduce, LOSS_REDUCTIONS)
    smoothing = smoothing_factor(label_smoothing)
    return reduction, smoothing, _problem(input, target, weight, ignore_index)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0, *, prec=None, return_scale=False):
    """Cross entropy between logits and targets, as documented for torch.nn.CrossEntropyLoss.

    Class indices:  l_n = -w_{y_n} log(exp(x_{n,y_n}) / sum_c exp(x_{n,c})) * 1{y_n != ignore_index},
                    'mean' = sum_n l_n / sum_n w_{y_n} * 1{y_n != ignore_index}.
    Probabilities:  l_n = -sum_c w_c log(exp(x_{n,c}) / sum_i exp(x_{n,i})) y_{n,c},  'mean' = sum_n l_n / N.
    label_smoothing e: "The targets become a mixture of the original ground truth and a uniform distribution",
    y -> (1 - e) y + e / C (for indices, y = one-hot of y_n; the index 'mean' divisor is kept).
    Input (C), (N, C) or (N, C, d1, ..., dK); target of the input's shape is read as probabilities.
    """
    with working_precision(prec):
        reduction, smoothing, problem = _setup(input, target, weight, size_average, ignore_index, reduce,
                                               reduction, label_smoothing)
        losses, scales = [], []
        for n, row in enumerate(problem.rows):
            coefficients = _coefficients(problem, n, smoothing)
            if coefficients is None:
                losses.append(ZERO)
                scales.append(ZERO)
                continue
            softmax = RowSoftmax(list(row))
            if softmax.is_nan:  # NaN reaches every term, zero coefficients included
                losses.append(NAN)
                scales.append(NAN)
                continue
            # Zero coefficients contribute exactly 0 (spec-notes, "Zero coefficients"): skip them.
            active = [c for c, a in enumerate(coefficients) if a != 0]
            log_probs, log_prob_scales = softmax.log_probs, softmax.log_prob_scales()
            losses.append(-fsum(coefficients[c] * log_probs[c] for c in active))
            scales.append(fsum(abs(coefficients[c]) * log_prob_scales[c] for c in active))
        value, scale = problem.finish(losses, scales, reduction)
    return wrap(value, scale, return_scale)


def cross_entropy_vjp(input, target, grad_output, weight=None, size_average=None, ignore_index=-100, reduce=None,
                      reduction="mean", label_smoothing=0.0, *, prec=None, return_scale=False):
    """Gradients of cross_entropy contracted with grad_output g (g_n as in nll_loss_vjp):

    d/dx_{n,c} = g_n (p_{n,c} sum_k a_{n,k} - a_{n,c}), zero on ignored rows;
    d/dy_{n,c} = -g_n (1 - e) w_c log_softmax(x_n)_c for probability targets (index targets: target=None).
    """
    with working_precision(prec):
        reduction, smoothing, problem = _setup(input, target, weight, size_average, ignore_index, reduce,
                                               reduction, label_smoothing)
        upstream = problem.upstream(grad_output, reduction)
        wants_target = isinstance(problem, ProbabilityProblem)
        target_factors = [(1 - smoothing) * w for w in problem.weights]  # d a_{n,c} / d y_{n,c}
        rows = {"input": ([], []), "target": ([], [])}
        for n, row in enumerate(problem.rows):
            coefficients = _coefficients(problem, n, smoothing)
            if coefficients is None:
                _append(rows["input"], [ZERO] * problem.n_classes, [ZERO] * problem.n_classes)
                continue
            softmax, g = RowSoftmax(list(row)), upstream[n]
            total, total_scale = fsum(coefficients), fsum(abs(a) for a in coefficients)
            _append(rows["input"], [g * (p * total - a) for p, a in zip(softmax.probs, coefficients)],
                    [abs(g) * (s * total_scale + abs(a)) for s, a in zip(softmax.prob_scales(), coefficients)])
            if wants_target:
                _append(rows["target"], [-g * weighted(f, lp) for f, lp in zip(target_factors, softmax.log_probs)],
                        [abs(g * weighted(f, s)) for f, s in zip(target_factors, softmax.log_prob_scales())])
        grad_input = wrap(problem.gradient_array(rows["input"][0]), problem.gradient_array(rows["input"][1]),
                          return_scale)
        grad_target = None
        if wants_target:
            grad_target = wrap(problem.gradient_array(rows["target"][0]), problem.gradient_array(rows["target"][1]),
                               return_scale)
    return Gradients(grad_input, grad_target)


def _append(pair, values, scales):
    pair[0].append(values)
    pair[1].append(scales)
