"""What the oracle says a case should give, for one dtype: the calls it certifies and their results.

The oracle computes on the exact values of the inputs rounded to the dtype under test, so only the backend's
own arithmetic is measured. Each certified value is kept as a float64 pair (hi, lo), the value rounded to its
canonical grid (2**-90 of its scale's binade: the same bytes from either engine), beside its scale: a float64
difference then measures errors far below float64's roundoff. Results are named
as the function's record names them: its outputs (the primary one first) and the gradient of each differentiable
argument. The engine is the oracle's default (LOSS_CONFORMANCE_ENGINE=mpmath|arb|auto selects it; auto takes arb
where python-flint is installed) unless ``engine=`` is given; see docs/oracle-engines.md.
"""
import hashlib
import json
from typing import NamedTuple

import numpy as np

import oracle

from .. import spec
from ..inputs.generate import make_grad_output, make_inputs, rounded_inputs


class Wanted(NamedTuple):
    """A certified oracle array as float64: value = hi + lo, and the scale its error is measured against."""

    hi: np.ndarray
    lo: np.ndarray
    scale: np.ndarray


class Expected(NamedTuple):
    """The oracle's answer for one call: its error class name (an input the docs rule out), or its ``outputs``
    ({output name: Wanted}, the primary one first) and, for a differentiable case, the upstream gradient it was
    contracted with and the ``gradients`` ({argument name: Wanted})."""

    error: str = None
    outputs: dict = None
    grad_output: np.ndarray = None
    gradients: dict = None

    @property
    def value(self):
        """The primary output's Wanted."""
        return next(iter(self.outputs.values())) if self.outputs else None


def oracle_calls(case, dtype):
    """(label, oracle function, positional args, kwargs) of the forward and, for a differentiable case, the VJP
    with the case's upstream gradient, on the dtype-rounded inputs: the calls compute_expected certifies, for
    tools that evaluate them another way (the engines' cross-validation)."""
    record = spec.get(case.function)
    forward, vjp = record.oracle_functions()
    positional, keyword = record.call_arguments(rounded_inputs(make_inputs(case), dtype))
    kwargs = {**keyword, **case.kwargs}
    calls = [("forward", forward, positional, kwargs)]
    if case.grad:
        try:
            result = oracle.certify_float64(forward, *positional, **kwargs)
            shape = (next(iter(result.values())) if isinstance(result, dict) else result).hi.shape  # primary output
        except oracle.OracleError:
            return calls  # an error has no VJP; the caller compares the forward's errors
        grad_output = make_grad_output(case.seed, shape, dtype, case.grad_output)
        calls.append(("vjp", vjp, positional + [grad_output], kwargs))
    return calls


def compute_expected(function, arrays, kwargs, dtype, seed, grad, prec=None, grad_output_kind="random",
                     engine=None):
    """The certified forward value (or the typed error) and, when grad is set, the vector-Jacobian products
    contracted with the case's upstream gradient (inputs.make_grad_output, of ``grad_output_kind``), for the
    arguments whose values are floating.

    ``engine`` is the oracle engine ("mpmath", "arb", "auto"; None: oracle's default, which honours
    LOSS_CONFORMANCE_ENGINE). Results come as float64 arrays straight from the engine (oracle.certify_float64)."""
    record = spec.get(function)
    forward_function, vjp = record.oracle_functions()
    positional, keyword = record.call_arguments(arrays)
    try:
        forward = oracle.certify_float64(forward_function, *positional, prec=prec, engine=engine, **keyword,
                                         **kwargs)
    except oracle.OracleError as error:
        return Expected(error=type(error).__name__)
    # a function of several outputs returns them by name (an oracle.Gradients-like mapping); else the primary one
    named = forward.items() if isinstance(forward, dict) else [(record.outputs[0], forward)]
    outputs = {name: Wanted(*certified) for name, certified in named}
    if not grad:
        return Expected(outputs=outputs)
    grad_output = make_grad_output(seed, next(iter(outputs.values())).hi.shape, dtype, grad_output_kind)
    gradients = oracle.certify_float64(vjp, *positional, grad_output, prec=prec, engine=engine, **keyword, **kwargs)
    return Expected(outputs=outputs, grad_output=grad_output,
                    gradients={name: Wanted(*certified) for name, certified in gradients.items()
                               if arrays[name].dtype.kind == "f"})


def cache_key(function, arrays, kwargs, dtype, seed, grad, prec, grad_output_kind="random", engine=None):
    """The content address of a result: what is computed, on which exact inputs, by which engine and version."""
    return cache_keys(function, arrays, kwargs, dtype, seed, grad, prec, grad_output_kind, engine)[0]


def cache_keys(function, arrays, kwargs, dtype, seed, grad, prec, grad_output_kind="random", engine=None):
    """(the store's key, the engine-neutral key of the committed manifest, expected/manifest.py: its results are
    the same bytes from either engine), the input bytes hashed once for both."""
    inputs = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        inputs.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        inputs.update(array.tobytes())
    header = {"oracle": oracle.__version__, "function": function, "kwargs": kwargs, "dtype": dtype,
              "seed": seed if grad else None, "grad": grad, "prec": prec or oracle.DEFAULT_PREC,
              "values": f"canonical-{oracle.CANONICAL_GRID_BITS}", "inputs": inputs.hexdigest()}  # _canonical.py
    if grad and grad_output_kind != "random":
        header["grad_output"] = grad_output_kind
    engine_fields = {"engine": oracle.engine_name(engine), "engine_version": oracle.engine_version(engine)}
    return tuple(hashlib.sha256(json.dumps(fields, sort_keys=True, default=repr).encode()).hexdigest()
                 for fields in ({**header, **engine_fields}, header))
