"""A namespace that behaves like torch.nn.functional except for the functions a mutant replaces."""
from types import SimpleNamespace


def mutant(description, **replacements):
    """torch.nn.functional's five functions, with ``replacements`` swapped in; torch is imported on first use."""
    import torch.nn.functional as F

    functions = {name: getattr(F, name) for name in ("softmax", "log_softmax", "nll_loss", "cross_entropy", "kl_div")}
    functions.update(replacements)
    return SimpleNamespace(__doc__=description, **functions)
