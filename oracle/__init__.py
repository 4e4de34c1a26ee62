"""An arbitrary-precision reference for PyTorch's loss functions, encoding their documented formulas.

Every input value is taken exactly; results are numpy object arrays of mpmath mpf with the shape torch returns
(shape () for a reduced loss). The formulas are written once and compute with an engine's numbers: mpmath (the
reference) or Arb balls through python-flint (fast, and each result proves its own accuracy); see
docs/oracle-engines.md. No framework is imported here: the oracle judges frameworks.
Ambiguities of the documentation are decided once, in docs/spec-notes.md.
"""
from ._engine import (ENGINE_ENVIRONMENT_VARIABLE, ENGINES, EngineUnavailableError, engine_label, engine_name,
                      engine_usage, engine_version, is_available, using_engine)
from ._canonical import GRID_BITS as CANONICAL_GRID_BITS
from ._float64 import Float64Evaluation
from ._mp import DEFAULT_PREC, Evaluation, Gradients, Outputs
from .certify import certify, certify_float64
from .cross_entropy import cross_entropy, cross_entropy_vjp
from .errors import (ArgumentTypeError, CertificationError, DimensionError, ExtensionArgumentError,
                     IgnoreIndexWithProbabilitiesError, InputDtypeError, LabelSmoothingRangeError, OracleError,
                     ShapeMismatchError, TargetDtypeError, TargetOutOfRangeError, UnknownReductionError,
                     WeightSizeError)
from .kl_div import kl_div, kl_div_vjp
from .linear_cross_entropy import linear_cross_entropy, linear_cross_entropy_vjp
from .nll_loss import nll_loss, nll_loss_vjp
from .softmax import implicit_dim, log_softmax, log_softmax_vjp, softmax, softmax_vjp

__version__ = "0.2.0"  # bump when any result can change: it keys cached oracle results (with the engine)

__all__ = [
    "softmax", "log_softmax", "nll_loss", "cross_entropy", "kl_div", "linear_cross_entropy",
    "softmax_vjp", "log_softmax_vjp", "nll_loss_vjp", "cross_entropy_vjp", "kl_div_vjp", "linear_cross_entropy_vjp",
    "certify", "certify_float64", "implicit_dim", "Evaluation", "Gradients", "Outputs", "Float64Evaluation",
    "DEFAULT_PREC", "CANONICAL_GRID_BITS",
    "ENGINES", "ENGINE_ENVIRONMENT_VARIABLE", "engine_name", "engine_label", "engine_version", "engine_usage",
    "is_available", "using_engine", "EngineUnavailableError",
    "OracleError", "TargetOutOfRangeError", "ShapeMismatchError", "WeightSizeError", "LabelSmoothingRangeError",
    "IgnoreIndexWithProbabilitiesError", "UnknownReductionError", "TargetDtypeError", "InputDtypeError",
    "DimensionError", "ArgumentTypeError", "ExtensionArgumentError", "CertificationError",
]
