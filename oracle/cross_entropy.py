"""Cross entropy over logits, with class-index or class-probability targets, and its vector-Jacobian product.

Both target kinds reduce to one per-row form, l_n = -sum_c a_{n,c} log_softmax(x_n)_c, with coefficients
  index targets:        a_c = (1 - e) w_{y_n} 1{c = y_n} + (e / C) w_c   (0 for an ignored row)
  probability targets:  a_c = w_c ((1 - e) y_{n,c} + e / C)
where e is label_smoothing. Its gradient is d l_n / d x_{n,c} = p_{n,c} sum_k a_{n,k} - a_{n,c} (p = softmax).
"""
import numpy as np

from ._dispatch import oracle_function
from ._engine import current_engine
from ._exact import RowStates, exact_array
from ._extensions import Extensions, entropy, z_gradient, z_terms
from ._mp import Evaluation, Gradients, Outputs, as_numpy, object_array
from ._reduction import LOSS_REDUCTIONS, reduce_losses, reduction_factor, resolve_reduction
from ._rows import RowSoftmax, class_rows
from ._targets import check_ignore_index, class_weights, is_probability_target, smoothing_factor
from .errors import ExtensionArgumentError, IgnoreIndexWithProbabilitiesError, TargetDtypeError
from .nll_loss import IndexProblem, LossRows


class ProbabilityProblem(LossRows):
    """Rows of logits with a class-probability target of the same shape; the 'mean' divisor is N * d1 * ... * dK."""

    def __init__(self, engine, input, target, weight, ignore_index):
        check_ignore_index(ignore_index)
        if ignore_index >= 0:
            raise IgnoreIndexWithProbabilitiesError(
                f"ignore_index={ignore_index} names a class, but class-probability targets have no ignored class")
        self.engine = engine
        self.values = exact_array(input)
        self.rows, self.out_shape = class_rows(self.values)
        self.n_classes = self.rows.shape[1]
        self.weights, self.zero_weights = class_weights(engine, weight, self.n_classes)
        self.weighted = weight is not None
        self.target_rows, _ = class_rows(exact_array(target, "target"), "target")
        self.denominator = engine.number(self.rows.shape[0])


class RowCoefficients:
    """The a_{n,c} of one row: at ``classes`` (None: every class, in order) the numbers ``values``; 0 elsewhere."""

    __slots__ = ("classes", "values")

    def __init__(self, classes, values):
        self.classes, self.values = classes, values

    def active(self, engine):
        """(classes, values) of the coefficients that are not exactly 0: only those terms are formed."""
        classes = range(len(self.values)) if self.classes is None else self.classes
        pairs = [(c, a) for c, a in zip(classes, self.values) if not engine.is_exact_zero(a)]
        return [c for c, _ in pairs], [a for _, a in pairs]


def _problem(engine, input, target, weight, ignore_index):
    target_array, input_shape = as_numpy(target), np.shape(input)
    if not is_probability_target(target_array, input_shape):
        return IndexProblem(engine, input, target, weight, ignore_index)
    if target_array.dtype == object and any(isinstance(v, (bool, np.bool_)) for v in target_array.flat):
        raise TargetDtypeError("class-probability target must be floating point, got booleans")
    if target_array.dtype != object and target_array.dtype.kind not in "fV":
        raise TargetDtypeError(f"class-probability target (the input's shape) must be floating, got {target_array.dtype}")
    return ProbabilityProblem(engine, input, target, weight, ignore_index)


class Setup:
    """What every row of one call shares: the problem, the reduction, e, and e/C times each class weight; the
    extended arguments (oracle/_extensions.py) and, for computed logits, the scale of each (``value_scales``:
    rows of numbers in the problem's row order, or None)."""

    def __init__(self, input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing,
                 extensions=None, value_scales=None):
        self.engine = engine = current_engine()
        self.reduction = resolve_reduction(reduction, size_average, reduce, LOSS_REDUCTIONS)
        self.smoothing_value = smoothing_factor(label_smoothing)  # an exact float: decisions use it
        self.extensions = Extensions(engine, **(extensions or {}))
        self.problem = problem = _problem(engine, input, target, weight, ignore_index)
        if "target_logprob" in self.extensions.outputs and not isinstance(problem, IndexProblem):
            raise ExtensionArgumentError("target_logprob is defined for class-index targets only")
        self.smoothing = engine.number(self.smoothing_value)
        self.uniform = self.smoothing / problem.n_classes
        self.uniform_terms = [self.uniform * w for w in problem.weights] if self.smoothing_value else None
        self.states = RowStates(problem.rows)
        self.value_scales = value_scales
        self._softmaxes = {}

    def coefficients(self, n):
        """RowCoefficients of row n, or None for an ignored row."""
        problem, smoothing = self.problem, self.smoothing
        if isinstance(problem, IndexProblem):
            y = problem.targets[n]
            if y is None:
                return None
            target_term = (1 - smoothing) * problem.weights[y]
            if self.uniform_terms is None:
                return RowCoefficients([y], [target_term])
            values = list(self.uniform_terms)
            values[y] = values[y] + target_term
            return RowCoefficients(None, values)
        probabilities = self.engine.numbers(problem.target_rows[n])
        if self.smoothing_value:
            probabilities = [(1 - smoothing) * y + self.uniform for y in probabilities]
        if problem.weighted:
            probabilities = [w * q for w, q in zip(problem.weights, probabilities)]
        return RowCoefficients(None, probabilities)

    def softmax(self, n):
        """The row's softmax (of its softcapped logits where softcap is set), made once per row."""
        if n not in self._softmaxes:
            scales = None if self.value_scales is None else self.value_scales[n]
            if self.extensions.softcap is not None:
                self._softmaxes[n] = self.extensions.softmax(self.problem.rows[n], scales)
            elif scales is not None:
                self._softmaxes[n] = (_computed_row(self.engine, self.problem.rows[n], self.states, n, scales), None)
            else:
                self._softmaxes[n] = (RowSoftmax(self.engine, self.problem.rows[n], self.states, n), None)
        return self._softmaxes[n][0]

    def derivatives(self, n):
        """d y / d x of each entry of row n under softcap, else None."""
        self.softmax(n)
        return self._softmaxes[n][1]

    def counted(self, n):
        """Whether row n counts (its target is not ignored)."""
        problem = self.problem
        return not isinstance(problem, IndexProblem) or problem.targets[n] is not None

    def z_denominator(self):
        """The z-loss 'mean' divisor: the counted rows, or the loss's own divisor when weighted by class."""
        problem, engine = self.problem, self.engine
        if self.extensions.weighting == "class" or not isinstance(problem, IndexProblem):
            return problem.denominator
        return engine.number(sum(1 for t in problem.targets if t is not None))

    def z_weight(self, n):
        problem = self.problem
        if self.extensions.weighting != "class" or not isinstance(problem, IndexProblem):
            return None
        return problem.weights[problem.targets[n]]


def _computed_row(engine, row, states, n, scales):
    """The softmax of a row of computed logits (exact values, each with the scale of the terms that formed it)."""
    if states.undefined[n]:
        return RowSoftmax.undefined(engine, len(row))
    values = engine.numbers(row)
    return RowSoftmax.of_numbers(engine, values, values[int(np.argmax(np.asarray(row, dtype=np.float64)))], scales)


def _row_loss(engine, softmax, coefficients):
    """(l_n, its scale) for a row whose softmax is defined. Zero coefficients contribute exactly 0 (spec-notes,
    "Zero coefficients"), so only the active terms are formed."""
    classes, values = coefficients.active(engine)
    if coefficients.classes is None and len(classes) == softmax.size:
        log_probs, log_prob_scales = softmax.log_probs(), softmax.log_prob_scales()
    else:
        log_probs = [softmax.log_prob(c) for c in classes]
        log_prob_scales = [softmax.log_prob_scale(c) for c in classes]
    return -engine.fdot(values, log_probs), engine.fdot([abs(a) for a in values], log_prob_scales)


@oracle_function
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0, softcap=None, z_loss_scale=0.0, z_loss_weighting="count", return_outputs=()):
    """Cross entropy between logits and targets, as documented for torch.nn.CrossEntropyLoss.

    Class indices:  l_n = -w_{y_n} log(exp(x_{n,y_n}) / sum_c exp(x_{n,c})) * 1{y_n != ignore_index},
                    'mean' = sum_n l_n / sum_n w_{y_n} * 1{y_n != ignore_index}.
    Probabilities:  l_n = -sum_c w_c log(exp(x_{n,c}) / sum_i exp(x_{n,i})) y_{n,c},  'mean' = sum_n l_n / N.
    label_smoothing e: "The targets become a mixture of the original ground truth and a uniform distribution",
    y -> (1 - e) y + e / C (for indices, y = one-hot of y_n; the index 'mean' divisor is kept).
    Input (C), (N, C) or (N, C, d1, ..., dK); target of the input's shape is read as probabilities.
    The extended contract of fused kernels (softcap, z_loss_scale, z_loss_weighting, return_outputs) is in
    docs/extensions.md; with return_outputs the result is Outputs(loss=..., <name>=...).
    """
    setup = Setup(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing,
                  dict(softcap=softcap, z_loss_scale=z_loss_scale, z_loss_weighting=z_loss_weighting,
                       return_outputs=return_outputs))
    return forward(setup)


def forward(setup):
    """The loss of a Setup, with the outputs it asks for (Outputs), else an Evaluation."""
    engine, extensions = setup.engine, setup.extensions
    losses, scales = [], []
    for n in range(setup.problem.rows.shape[0]):
        coefficients = setup.coefficients(n)
        if coefficients is None:
            loss = scale = engine.zero
        else:
            softmax = setup.softmax(n)
            if softmax.is_nan:  # NaN reaches every term, zero coefficients included
                loss = scale = engine.nan
            else:
                loss, scale = _row_loss(engine, softmax, coefficients)
        losses.append(loss)
        scales.append(scale)
    loss = setup.problem.finish(losses, scales, setup.reduction)
    if extensions.z_value:
        loss = _add(engine, loss, _z_loss(setup))
    if not extensions.outputs:
        return loss
    return Outputs(loss=loss, **{name: _output(setup, name) for name in extensions.outputs})


def _z_loss(setup):
    """The reduced z-loss (Evaluation), ignored rows contributing 0."""
    engine, problem = setup.engine, setup.problem
    values, scales = [], []
    for n in range(problem.rows.shape[0]):
        if not setup.counted(n):
            values.append(engine.zero)
            scales.append(engine.zero)
            continue
        softmax = setup.softmax(n)
        z, scale = (engine.nan, engine.nan) if softmax.is_nan else z_terms(engine, setup.extensions, softmax,
                                                                         setup.z_weight(n))
        values.append(z)
        scales.append(scale)
    shaped = object_array(values, problem.out_shape), object_array(scales, problem.out_shape)
    return Evaluation(*reduce_losses(engine, *shaped, setup.reduction, setup.z_denominator()))


def _add(engine, first, second):
    add = np.frompyfunc(lambda a, b: a + b, 2, 1)
    return Evaluation(np.asarray(add(first.value, second.value), dtype=object).reshape(first.value.shape),
                      np.asarray(add(first.scale, second.scale), dtype=object).reshape(first.value.shape))


def _output(setup, name):
    """One named output as an Evaluation of the loss's shape ('none' shape for the per-row ones)."""
    if name == "z_loss":
        return _z_loss(setup) if setup.extensions.z_value else _zeros(setup)
    engine, problem = setup.engine, setup.problem
    values, scales = [], []
    for n in range(problem.rows.shape[0]):
        softmax = setup.softmax(n)
        if name == "lse":
            pair = (engine.nan, engine.nan) if softmax.is_nan else (softmax.log_sum_exp, softmax.lse_scale())
        elif name == "entropy":
            pair = entropy(engine, softmax)
        else:  # target_logprob: class indices (Setup checks), 0 on an ignored row
            y = problem.targets[n]
            pair = (engine.zero, engine.zero) if y is None else \
                (engine.nan, engine.nan) if softmax.is_nan else (softmax.log_prob(y), softmax.log_prob_scale(y))
        values.append(pair[0])
        scales.append(pair[1])
    return Evaluation(object_array(values, problem.out_shape), object_array(scales, problem.out_shape))


def _zeros(setup):
    """z_loss of a call without a z-loss: exactly 0, in the loss's shape."""
    engine, problem = setup.engine, setup.problem
    shape = problem.out_shape if setup.reduction == "none" else ()
    count = int(np.prod(shape, dtype=np.int64))
    return Evaluation(object_array([engine.zero] * count, shape), object_array([engine.zero] * count, shape))


def _input_gradient_row(engine, softmax, coefficients, g):
    """g (p_c A - a_c) and its scale |g| (s_c sum_k |a_k| + |a_c|), s_c the scale of p_c, A = sum_k a_k."""
    probs, prob_scales = softmax.probs(), softmax.prob_scales()
    abs_values = [abs(a) for a in coefficients.values]
    total, abs_total, abs_g = engine.fsum(coefficients.values), engine.fsum(abs_values), abs(g)
    if coefficients.classes is None:
        values = [g * (p * total - a) for p, a in zip(probs, coefficients.values)]
        scales = [abs_g * (s * abs_total + b) for s, b in zip(prob_scales, abs_values)]
        return values, scales
    g_total, g_abs_total = g * total, abs_g * abs_total  # a_c = 0 off the listed classes
    values, scales = [g_total * p for p in probs], [g_abs_total * s for s in prob_scales]
    for c, a, b in zip(coefficients.classes, coefficients.values, abs_values):
        values[c] = g * (probs[c] * total - a)
        scales[c] = abs_g * (prob_scales[c] * abs_total + b)
    return values, scales


def _target_gradient_row(engine, softmax, factors, zero_factors, g):
    """-g (1 - e) w_c log p_c, exactly 0 times g where (1 - e) w_c is exactly 0 (the 0 log 0 = 0 convention);
    NaN throughout a row without a softmax (NaN is not an extended real: the convention does not apply)."""
    if softmax.is_nan:
        return softmax.log_probs(), softmax.log_probs()
    zero = engine.zero
    log_probs, log_prob_scales = softmax.log_probs(), softmax.log_prob_scales()
    values = [-g * (zero if z else f * lp) for f, z, lp in zip(factors, zero_factors, log_probs)]
    scales = [abs(g * (zero if z else f * s)) for f, z, s in zip(factors, zero_factors, log_prob_scales)]
    return values, scales


@oracle_function
def cross_entropy_vjp(input, target, grad_output, weight=None, size_average=None, ignore_index=-100, reduce=None,
                      reduction="mean", label_smoothing=0.0, softcap=None, z_loss_scale=0.0, z_loss_weighting="count",
                      return_outputs=()):
    """Gradients of cross_entropy contracted with grad_output g (g_n as in nll_loss_vjp):

    d/dx_{n,c} = g_n (p_{n,c} sum_k a_{n,k} - a_{n,c}), zero on ignored rows;
    d/dy_{n,c} = -g_n (1 - e) w_c log_softmax(x_n)_c for probability targets (index targets: target=None).
    With the extended contract (docs/extensions.md): the z-loss adds 2 s lse_n p_{n,c} times its own upstream
    gradient, and softcap multiplies d/dx_{n,c} by 1 - tanh^2(x_{n,c} / c). return_outputs changes nothing: the
    gradients are those of the loss.
    """
    setup = Setup(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing,
                  dict(softcap=softcap, z_loss_scale=z_loss_scale, z_loss_weighting=z_loss_weighting,
                       return_outputs=return_outputs))
    return backward(setup, grad_output)


def backward(setup, grad_output):
    """Gradients of a Setup's loss (the logits' rows, and probability targets) contracted with grad_output."""
    engine, problem = setup.engine, setup.problem
    upstream = problem.upstream(grad_output, setup.reduction)
    z_upstream = reduction_factor(engine, exact_array(grad_output, "grad_output"), setup.reduction, problem.out_shape,
                                  setup.z_denominator()) if setup.extensions.z_value else None
    wants_target = isinstance(problem, ProbabilityProblem)
    factors = [(1 - setup.smoothing) * w for w in problem.weights]  # d a_{n,c} / d y_{n,c}
    zero_factors = problem.zero_weights | (setup.smoothing_value == 1.0)  # exact: (1 - e) w_c == 0
    parts = {"input": ([], []), "target": ([], [])}
    for n in range(problem.rows.shape[0]):
        coefficients = setup.coefficients(n)
        if coefficients is None:
            zeros = [engine.zero] * problem.n_classes
            _append(parts["input"], zeros, zeros)
            continue
        softmax, g = setup.softmax(n), upstream[n]
        values, scales = _input_gradient_row(engine, softmax, coefficients, g)
        if z_upstream is not None and not softmax.is_nan:
            weight = setup.z_weight(n)
            z_values, z_scales = z_gradient(engine, setup.extensions, softmax,
                                            z_upstream[n] if weight is None else z_upstream[n] * weight)
            values = [a + b for a, b in zip(values, z_values)]
            scales = [a + b for a, b in zip(scales, z_scales)]
        derivatives = setup.derivatives(n)
        if derivatives is not None:  # softcap's chain rule; |1 - t^2| <= 1 keeps the scale (_extensions.py)
            values = [v * d for v, d in zip(values, derivatives)]
        _append(parts["input"], values, scales)
        if wants_target:
            _append(parts["target"], *_target_gradient_row(engine, softmax, factors, zero_factors, g))
    grad_input = Evaluation(*(problem.gradient_array(rows) for rows in parts["input"]))
    grad_target = Evaluation(*(problem.gradient_array(rows) for rows in parts["target"])) if wants_target else None
    return Gradients(grad_input, grad_target)


def _append(pair, values, scales):
    pair[0].append(values)
    pair[1].append(scales)
