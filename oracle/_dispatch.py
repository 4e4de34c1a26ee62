"""From a formula kernel to a public oracle function: the engine, the precision, the fallback, and mpf results.

A kernel takes the documented arguments and returns an Evaluation (or Gradients of Evaluations) whose arrays
hold numbers of the engine in force (oracle/_engine.py). The public function adds the keywords ``prec``,
``return_scale`` and ``engine``, runs the kernel (on mpmath again if the arb engine raised Undecided), and
converts at the boundary: object arrays of mpf, each scale at least |value|.
"""
import functools
from typing import NamedTuple

import numpy as np

from ._engine import Undecided, evaluating, get_engine, record_fallback, resolve_engine
from ._mp import Gradients, resolve_prec, wrap


class Outcome(NamedTuple):
    """A kernel's result and the engine whose numbers it holds."""

    engine: object
    result: object


def run_kernel(kernel, engine, prec, args, kwargs, finish=None):
    """kernel(*args, **kwargs) on ``engine`` at ``prec`` bits; finish(result), if given, runs in the same scope."""
    with evaluating(engine, prec):
        result = kernel(*args, **kwargs)
        return finish(result) if finish is not None else result


def evaluate(kernel, args, kwargs, prec, engine=None, finish=None):
    """Outcome of one evaluation on the chosen engine, moved to mpmath where the arb engine is Undecided."""
    chosen = resolve_engine(engine)
    try:
        return Outcome(chosen, run_kernel(kernel, chosen, prec, args, kwargs, finish))
    except Undecided:
        if chosen.name == "mpmath":  # cannot happen: mpmath holds every value; never hide it if it does
            raise
        reference = get_engine("mpmath")
        record_fallback()
        return Outcome(reference, run_kernel(kernel, reference, prec, args, kwargs, finish))


def fields(result):
    """The Evaluations of a result, in order (a Gradients' in its names' order)."""
    return list(result.values()) if isinstance(result, Gradients) else [result]


def rebuild(result, parts):
    """A result like ``result`` holding ``parts`` (fields' order)."""
    return type(result)(**dict(zip(result, parts))) if isinstance(result, Gradients) else parts[0]


def publish(outcome, return_scale):
    """The public form of an Outcome: mpf values (and, with return_scale, an Evaluation with floored scales)."""
    engine = outcome.engine
    convert = np.frompyfunc(engine.to_mpf, 1, 1)

    def public(evaluation):
        if evaluation is None:
            return None
        value, scale = evaluation
        if engine.name != "mpmath":
            with np.errstate(invalid="ignore"):  # NaN results are values here
                value = _as_object(convert(value), value.shape) if value.size else value
                scale = _as_object(convert(scale), scale.shape) if (return_scale and scale.size) else scale
        return wrap(value, scale, return_scale)

    return rebuild(outcome.result, [public(field) for field in fields(outcome.result)])


def _as_object(converted, shape):
    return np.asarray(converted, dtype=object).reshape(shape)


def oracle_function(kernel):
    """Wrap a kernel as a public oracle function (the kernel stays reachable as ``function.kernel``)."""

    @functools.wraps(kernel)
    def public(*args, prec=None, return_scale=False, engine=None, **kwargs):
        outcome = evaluate(kernel, args, kwargs, resolve_prec(prec), engine)
        return publish(outcome, return_scale)

    public.kernel = kernel
    return public
