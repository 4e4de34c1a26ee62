"""Typed errors for inputs the documentation rules out.

One class per kind of invalid input, so that a conformance runner can check that a backend rejects the same
inputs (whatever exception type the backend itself uses). All derive from ``OracleError``, a ``ValueError``.
``CertificationError`` is different in kind: it says the oracle could not certify its own result, never that
the input was wrong.
"""


class OracleError(ValueError):
    """An input that the documentation of the function rules out."""


class TargetOutOfRangeError(OracleError):
    """A class-index target outside [0, C) that is not ``ignore_index``."""


class ShapeMismatchError(OracleError):
    """Input and target shapes that the documented shape table does not allow (batch size, rank, C = 0)."""


class WeightSizeError(OracleError):
    """A class ``weight`` that is not a 1-D tensor of exactly C entries."""


class LabelSmoothingRangeError(OracleError):
    """``label_smoothing`` outside the documented range [0.0, 1.0]."""


class IgnoreIndexWithProbabilitiesError(OracleError):
    """A non-negative ``ignore_index`` (one that could name a class) together with class-probability targets."""


class UnknownReductionError(OracleError):
    """A ``reduction`` the function does not document, or legacy ``size_average``/``reduce`` that are not bool."""


class TargetDtypeError(OracleError):
    """A target whose dtype fits neither documented kind: int64 class indices or floating class probabilities."""


class InputDtypeError(OracleError):
    """An ``input`` (or ``weight``) that is not floating point."""


class DimensionError(OracleError):
    """A ``dim`` outside [-ndim, ndim) (a 0-dim tensor accepts -1 and 0)."""


class ArgumentTypeError(OracleError):
    """A keyword argument of a type its documentation rules out, such as an ``ignore_index`` that is no int."""


class ExtensionArgumentError(OracleError):
    """An argument of the extended cross-entropy contract (docs/extensions.md) outside its range: a ``softcap``
    that is not a finite number > 0, a negative or non-finite ``z_loss_scale``, an unknown ``z_loss_weighting``
    or output name, ``target_logprob`` asked of class-probability targets."""


class CertificationError(ArithmeticError):
    """Two evaluations at increasing precision did not agree to the requested number of bits."""
