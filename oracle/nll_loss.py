"""The negative log likelihood loss over class-index targets, with its vector-Jacobian product."""
import numpy as np

from ._dispatch import oracle_function
from ._engine import current_engine
from ._exact import exact_array, isnan
from ._mp import Evaluation, Gradients, object_array
from ._reduction import LOSS_REDUCTIONS, reduce_losses, reduction_factor, resolve_reduction
from ._rows import class_rows, rows_to_class_layout
from ._targets import class_weights, index_targets


class LossRows:
    """Rows over the class dimension of a loss input, and how per-row results become the loss's results.

    Subclasses set ``engine``, ``values`` (the exact input), ``rows`` (M, C), ``out_shape``, ``n_classes``,
    ``weights`` (numbers), ``zero_weights`` (exact decisions) and ``denominator`` (the documented 'mean' divisor).
    """

    def finish(self, losses, scales, reduction):
        shaped = object_array(losses, self.out_shape), object_array(scales, self.out_shape)
        return Evaluation(*reduce_losses(self.engine, *shaped, reduction, self.denominator))

    def upstream(self, grad_output, reduction):
        """Per row, the gradient flowing into its unreduced loss (grad_output, or divided by the mean's divisor)."""
        grads = exact_array(grad_output, "grad_output")
        return reduction_factor(self.engine, grads, reduction, self.out_shape, self.denominator)

    def gradient_array(self, grad_rows):
        array = np.empty(self.rows.shape, dtype=object)
        for n, row in enumerate(grad_rows):
            array[n, :] = row
        return rows_to_class_layout(array, self.values.shape)


class IndexProblem(LossRows):
    """Rows of a loss input with class-index targets: per row its target class, or None when ignored.

    ``denominator`` is the documented 'mean' divisor, sum_n w_{y_n} * 1{y_n != ignore_index}.
    """

    def __init__(self, engine, input, target, weight, ignore_index):
        self.engine = engine
        self.values = exact_array(input)
        self.rows, self.out_shape = class_rows(self.values)
        self.n_classes = self.rows.shape[1]
        self.weights, self.zero_weights = class_weights(engine, weight, self.n_classes)
        self.targets = index_targets(target, self.out_shape, self.n_classes, ignore_index)
        self.denominator = engine.fsum([self.weights[t] for t in self.targets if t is not None])

    def weighted_entry(self, n, c):
        """w_c x_{n,c}, exactly 0 where w_c is exactly 0 and x_{n,c} is not NaN (spec-notes, "Zero coefficients")."""
        x = self.rows[n, c : c + 1]
        if self.zero_weights[c] and not isnan(x)[0]:
            return self.engine.zero
        return self.weights[c] * self.engine.numbers(x)[0]


@oracle_function
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log likelihood loss, as documented for torch.nn.NLLLoss.

    l_n = -w_{y_n} x_{n, y_n},  w_c = weight[c] * 1{c != ignore_index};
    'mean': sum_n l_n / sum_n w_{y_n};  'sum': sum_n l_n;  'none': L = {l_1, ..., l_N}.

    input (C), (N, C) or (N, C, d1, ..., dK) of log-probabilities; target (), (N) or (N, d1, ..., dK) of int64
    class indices. The weight enters the mean once (docs/spec-notes.md, "Mean denominator").
    Keywords of every oracle function: prec (bits), return_scale, engine (oracle/_engine.py).
    """
    engine = current_engine()
    reduction = resolve_reduction(reduction, size_average, reduce, LOSS_REDUCTIONS)
    problem = IndexProblem(engine, input, target, weight, ignore_index)
    losses, scales = [], []
    for n, y in enumerate(problem.targets):
        term = engine.zero if y is None else problem.weighted_entry(n, y)
        losses.append(-term)
        scales.append(abs(term))
    return problem.finish(losses, scales, reduction)


@oracle_function
def nll_loss_vjp(input, target, grad_output, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
    """d loss / d input contracted with grad_output g: -w_{y_n} g_n at (n, y_n), 0 elsewhere and on ignored rows.

    g_n is grad_output (reduction 'none'), the scalar grad_output ('sum'), or grad_output / sum_n w_{y_n}
    ('mean'; NaN or inf when that sum is 0). Returns Gradients(input); the target is not differentiable.
    """
    engine = current_engine()
    reduction = resolve_reduction(reduction, size_average, reduce, LOSS_REDUCTIONS)
    problem = IndexProblem(engine, input, target, weight, ignore_index)
    upstream = problem.upstream(grad_output, reduction)
    zero, n_classes = engine.zero, problem.n_classes
    grad_rows, scale_rows = [], []
    for y, g in zip(problem.targets, upstream):
        grad, scale = [zero] * n_classes, [zero] * n_classes
        if y is not None:
            grad[y] = -problem.weights[y] * g
            scale[y] = abs(grad[y])
        grad_rows.append(grad)
        scale_rows.append(scale)
    return Gradients(Evaluation(problem.gradient_array(grad_rows), problem.gradient_array(scale_rows)))
