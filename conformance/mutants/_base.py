"""A namespace that behaves like torch.nn.functional except for the functions a mutant replaces."""
from types import SimpleNamespace

from ..spec.names import FUNCTIONS


def mutant(description, **replacements):
    """torch.nn.functional's five functions, with ``replacements`` swapped in.

    ``REPLACED`` names the functions the mutant changes: the mutation run checks only those.
    """
    import torch.nn.functional as F

    unknown = set(replacements) - set(FUNCTIONS)
    if unknown:
        raise ValueError(f"a mutant replaces only {', '.join(FUNCTIONS)}; got {sorted(unknown)}")
    functions = {name: getattr(F, name) for name in FUNCTIONS}
    functions.update(replacements)
    return SimpleNamespace(__doc__=description, REPLACED=tuple(sorted(replacements)), **functions)
