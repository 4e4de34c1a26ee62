"""Where the classes are in a loss input: the one rule that every oracle-independent part of the suite shares
(inputs, fuzz strategies and rules, mutants). The oracle keeps its own copy: it must not import the runner.

A loss input is (C) unbatched, (N, C), or (N, C, d1, ..., dK): the class dimension is 0 for a 1-dim input and
1 otherwise; the unreduced loss has the input's shape without it.
"""


def class_dim(ndim):
    """The class dimension of a loss input of ``ndim`` dimensions: 0 for (C) (and 0-dim), 1 for (N, C, ...)."""
    return 0 if ndim <= 1 else 1


def class_layout(shape):
    """(class dim, C, shape of the unreduced loss) of a loss input of ``shape`` (at least 1-dim)."""
    dim = class_dim(len(shape))
    return dim, shape[dim], tuple(s for i, s in enumerate(shape) if i != dim)
