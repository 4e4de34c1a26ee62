"""Deliberately broken backends: each wraps torch.nn.functional and changes one thing, the way real loss kernels
have been wrong. They prove the suite's power: the default corpus must fail every one of them, and pass torch.

Each family is a module with a ``CATALOG`` of zero-argument factories; a mutant is usable as a backend spec,
``--backend conformance.mutants.<family>:<name>``. ``catalog()`` lists them all (importing torch).

Not in the catalog: "negative label_smoothing not rejected". torch 2.13 itself accepts negative values (a
declared deviation, docs/spec-notes.md "label_smoothing range"), and mutants inherit torch's declared
deviations, so such a mutant could not be told from torch. The case cross_entropy/error-label_smoothing=-0.1
fails every backend that has the bug, torch included (reported there as its declared deviation).
Nor are the families that other runs kill: vocab_parallel (on ranks, tests/test_vocab_parallel.py) and offsets
(32-bit offsets, past 2**31 elements: the huge tier, tests/test_huge.py).
"""
import importlib
from typing import NamedTuple

FAMILIES = ("numerics", "ignore_index", "weights", "reductions", "smoothing", "kl", "dims", "gradients", "errors", "layout",
            "fused", "extensions")


class Mutant(NamedTuple):
    name: str
    family: str
    factory: object

    @property
    def spec(self):
        return f"conformance.mutants.{self.family}:{self.name}"

    def build(self):
        return self.factory()


def catalog():
    """{name: Mutant} over every family that is present, in family order."""
    mutants = {}
    for family in FAMILIES:
        try:
            module = importlib.import_module(f"{__name__}.{family}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{family}":
                raise
            continue
        for name, factory in module.CATALOG.items():
            if name in mutants:
                raise ValueError(f"mutant {name!r} is defined in {family} and in {mutants[name].family}")
            mutants[name] = Mutant(name, family, factory)
    return mutants
