"""Deliberately broken backends: each wraps torch.nn.functional and changes one thing, the way real loss kernels
have been wrong. They prove the suite's power: the default corpus must fail every one of them, and pass torch.

Each mutant is a namespace object usable as ``--backend conformance.mutants.numerics:<name>``; ``CATALOG`` maps
the names to one-line descriptions of the bug.
"""
from .numerics import CATALOG

__all__ = ["CATALOG"]
