"""An arbitrary-precision reference for PyTorch's loss functions, encoding their documented formulas.

Every input value is converted exactly to an mpmath mpf; results are numpy object arrays of mpf with the shape
torch returns (shape () for a reduced loss). No framework is imported here: the oracle judges frameworks.
Ambiguities of the documentation are decided once, in docs/spec-notes.md.
"""
from ._mp import DEFAULT_PREC, Evaluation, Gradients
from .certify import certify
from .cross_entropy import cross_entropy, cross_entropy_vjp
from .errors import (ArgumentTypeError, CertificationError, DimensionError, IgnoreIndexWithProbabilitiesError,
                     InputDtypeError, LabelSmoothingRangeError, OracleError, ShapeMismatchError, TargetDtypeError,
                     TargetOutOfRangeError, UnknownReductionError, WeightSizeError)
from .kl_div import kl_div, kl_div_vjp
from .nll_loss import nll_loss, nll_loss_vjp
from .softmax import implicit_dim, log_softmax, log_softmax_vjp, softmax, softmax_vjp

__version__ = "0.1.1"  # bump when any result can change: it keys cached oracle results

__all__ = [
    "softmax", "log_softmax", "nll_loss", "cross_entropy", "kl_div",
    "softmax_vjp", "log_softmax_vjp", "nll_loss_vjp", "cross_entropy_vjp", "kl_div_vjp",
    "certify", "implicit_dim", "Evaluation", "Gradients", "DEFAULT_PREC",
    "OracleError", "TargetOutOfRangeError", "ShapeMismatchError", "WeightSizeError", "LabelSmoothingRangeError",
    "IgnoreIndexWithProbabilitiesError", "UnknownReductionError", "TargetDtypeError", "InputDtypeError",
    "DimensionError", "ArgumentTypeError", "CertificationError",
]
