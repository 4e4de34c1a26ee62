"""The number type under the formulas: an engine, chosen per call, that the formula code computes with.

The formulas (oracle/*.py) are written once. They take every decision on the exact inputs and do their
arithmetic with the operators of the engine's numbers and with the engine's helpers: exact conversion of inputs,
exp, log, sums and dot products, the IEEE rules of a division by zero, and the special values NaN and +/-inf.

- "mpmath" is the reference engine (docs/spec-notes.md describes its results): mpf numbers at the working
  precision; certification repeats an evaluation at doubled precision.
- "arb" computes with Arb balls (python-flint): each number is an interval that encloses the exact value of the
  formula, so one evaluation proves how many bits its midpoint has.

A ball can hold neither NaN nor a signed infinity, and a ball that contains 0 cannot say whether a denominator
is 0. The formulas place NaN and infinities by decisions on the exact inputs; the arb engine keeps those as
exact special values, propagates NaN as mpmath does, and raises ``Undecided`` wherever an infinity would enter
arithmetic, an input is not finite, or a denominator may be 0: the whole call then runs again on the mpmath
engine, so non-finite values and the 0 log 0 = 0 convention keep exactly the reference decisions.
Selection, strongest first: the ``engine=`` keyword, ``using_engine()``, the environment variable
LOSS_CONFORMANCE_ENGINE, then "auto" (arb where python-flint is installed, else mpmath). docs/oracle-engines.md.
"""
import os
from contextlib import contextmanager
from contextvars import ContextVar

from ._engine_signals import EngineUnavailableError, Undecided  # noqa: F401 -- re-exported

ENGINES = ("mpmath", "arb")
ENGINE_ENVIRONMENT_VARIABLE = "LOSS_CONFORMANCE_ENGINE"
AUTO = "auto"


_instances = {}  # name -> engine, created on first use: importing python-flint is no import-time side effect
_unavailable = {}  # name -> why it could not be created
_selected = ContextVar("oracle_selected_engine", default=None)  # set by using_engine()
_current = ContextVar("oracle_current_engine", default=None)  # the engine of the evaluation in progress
_usage = {}  # engine name -> evaluations it ran in this process (certification may run several per call)
_fallbacks = {"count": 0}  # calls that the arb engine left to mpmath


def _create(name):
    if name == "mpmath":
        from ._engine_mpmath import MpmathEngine
        return MpmathEngine()
    from ._engine_arb import ArbEngine
    return ArbEngine()


def get_engine(name):
    """The engine object of that name; EngineUnavailableError if its library is missing."""
    if name not in ENGINES:
        raise ValueError(f"unknown oracle engine {name!r}; expected one of {', '.join(ENGINES + (AUTO,))}")
    if name not in _instances and name not in _unavailable:
        try:
            _instances[name] = _create(name)
        except EngineUnavailableError as error:
            _unavailable[name] = str(error)
    if name in _unavailable:
        raise EngineUnavailableError(_unavailable[name])
    return _instances[name]


def is_available(name):
    """True if the engine's library is installed and usable."""
    try:
        get_engine(name)
    except EngineUnavailableError:
        return False
    return True


def requested_engine(engine=None):
    """The name asked for (possibly "auto"): the keyword, else using_engine(), else the environment, else auto."""
    for choice in (engine, _selected.get(), os.environ.get(ENGINE_ENVIRONMENT_VARIABLE) or None):
        if choice is not None:
            choice = str(choice).strip().lower()
            if choice not in ENGINES + (AUTO,):
                raise ValueError(f"unknown oracle engine {choice!r} (from the engine keyword, using_engine or "
                                 f"{ENGINE_ENVIRONMENT_VARIABLE}); expected one of {', '.join(ENGINES + (AUTO,))}")
            return choice
    return AUTO


def resolve_engine(engine=None):
    """The engine object that a call with this ``engine`` keyword runs on."""
    name = requested_engine(engine)
    if name == AUTO:
        name = "arb" if is_available("arb") else "mpmath"
    return get_engine(name)


def engine_name(engine=None):
    """The name of the engine a call would run on now: "arb" or "mpmath" (a call may still fall back to mpmath)."""
    return resolve_engine(engine).name


def engine_version(engine=None):
    """The libraries behind an engine and their versions: they key cached results."""
    return resolve_engine(engine).version


def engine_label(engine=None):
    """One line for a run summary, e.g. 'arb (python-flint 0.9.0; mpmath 1.3.0 for non-finite values)'."""
    chosen = resolve_engine(engine)
    return f"{chosen.name} ({chosen.description})"


def engine_usage():
    """{engine name: evaluations it ran in this process, "fallbacks": calls the arb engine left to mpmath}."""
    return {**_usage, "fallbacks": _fallbacks["count"]}


def record_fallback():
    _fallbacks["count"] += 1


@contextmanager
def using_engine(name):
    """Scope the default engine (by name, or "auto") for the oracle calls inside the block."""
    requested_engine(name)  # validates the name
    if name != AUTO:
        get_engine(name)  # fail here, not inside a formula, when the library is missing
    token = _selected.set(name)
    try:
        yield
    finally:
        _selected.reset(token)


@contextmanager
def evaluating(engine, prec):
    """Make ``engine`` the one the formulas use, at ``prec`` bits, for the duration of one evaluation."""
    token = _current.set(engine)
    _usage[engine.name] = _usage.get(engine.name, 0) + 1
    try:
        with engine.precision(prec):
            yield engine
    finally:
        _current.reset(token)


def current_engine():
    """The engine of the evaluation in progress (mpmath outside any, so that helpers keep working alone)."""
    engine = _current.get()
    return engine if engine is not None else get_engine("mpmath")
