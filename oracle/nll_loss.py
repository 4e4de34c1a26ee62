"""The negative log likelihood loss over class-index targets, with its vector-Jacobian product."""
import numpy as np

from ._mp import ZERO, Gradients, fsum, object_array, to_mpf_array, weighted, working_precision, wrap
from ._reduction import LOSS_REDUCTIONS, reduce_losses, reduction_factor, resolve_reduction
from ._rows import class_rows, rows_to_class_layout
from ._targets import class_weights, index_targets


class LossRows:
    """Rows over the class dimension of a loss input, and how per-row results become the loss's results.

    Subclasses set ``values``, ``rows`` (M, C), ``out_shape``, ``n_classes``, ``weights`` and ``denominator``
    (the documented 'mean' divisor).
    """

    def finish(self, losses, scales, reduction):
        shaped = object_array(losses, self.out_shape), object_array(scales, self.out_shape)
        return reduce_losses(*shaped, reduction, self.denominator)

    def upstream(self, grad_output, reduction):
        """Per row, the gradient flowing into its unreduced loss (grad_output, or divided by the mean's divisor)."""
        grads = to_mpf_array(grad_output, "grad_output")
        return list(reduction_factor(grads, reduction, self.out_shape, self.denominator).flat)

    def gradient_array(self, grad_rows):
        return rows_to_class_layout(np.asarray(grad_rows, dtype=object).reshape(self.rows.shape), self.values.shape)


class IndexProblem(LossRows):
    """Rows of a loss input with class-index targets: per row its target class, or None when ignored.

    ``denominator`` is the documented 'mean' divisor, sum_n w_{y_n} * 1{y_n != ignore_index}.
    """

    def __init__(self, input, target, weight, ignore_index):
        self.values = to_mpf_array(input)
        self.rows, self.out_shape = class_rows(self.values)
        self.n_classes = self.rows.shape[1]
        self.weights = class_weights(weight, self.n_classes)
        self.targets = index_targets(target, self.out_shape, self.n_classes, ignore_index)
        self.denominator = fsum(self.weights[t] for t in self.targets if t is not None)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
             *, prec=None, return_scale=False):
    """Negative log likelihood loss, as documented for torch.nn.NLLLoss.

    l_n = -w_{y_n} x_{n, y_n},  w_c = weight[c] * 1{c != ignore_index};
    'mean': sum_n l_n / sum_n w_{y_n};  'sum': sum_n l_n;  'none': L = {l_1, ..., l_N}.

    input (C), (N, C) or (N, C, d1, ..., dK) of log-probabilities; target (), (N) or (N, d1, ..., dK) of int64
    class indices. The weight enters the mean once (docs/spec-notes.md, "Mean denominator").
    """
    with working_precision(prec):
        reduction = resolve_reduction(reduction, size_average, reduce, LOSS_REDUCTIONS)
        problem = IndexProblem(input, target, weight, ignore_index)
        losses, scales = [], []
        for row, y in zip(problem.rows, problem.targets):
            term = ZERO if y is None else weighted(problem.weights[y], row[y])
            losses.append(-term)
            scales.append(abs(term))
        value, scale = problem.finish(losses, scales, reduction)
    return wrap(value, scale, return_scale)


def nll_loss_vjp(input, target, grad_output, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", *, prec=None, return_scale=False):
    """d loss / d input contracted with grad_output g: -w_{y_n} g_n at (n, y_n), 0 elsewhere and on ignored rows.

    g_n is grad_output (reduction 'none'), the scalar grad_output ('sum'), or grad_output / sum_n w_{y_n}
    ('mean'; NaN or inf when that sum is 0). Returns Gradients(input); the target is not differentiable.
    """
    with working_precision(prec):
        reduction = resolve_reduction(reduction, size_average, reduce, LOSS_REDUCTIONS)
        problem = IndexProblem(input, target, weight, ignore_index)
        upstream = problem.upstream(grad_output, reduction)
        grad_rows, scale_rows = [], []
        for y, g in zip(problem.targets, upstream):
            grad, scale = [ZERO] * problem.n_classes, [ZERO] * problem.n_classes
            if y is not None:
                grad[y] = -problem.weights[y] * g
                scale[y] = abs(grad[y])
            grad_rows.append(grad)
            scale_rows.append(scale)
        value, scale = problem.gradient_array(grad_rows), problem.gradient_array(scale_rows)
    return Gradients(wrap(value, scale, return_scale))
