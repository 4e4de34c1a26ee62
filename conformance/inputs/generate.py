"""Seeded, bit-reproducible inputs for a case, and their rounding to the dtype under test.

Only operations that IEEE 754 defines exactly are used on generated values (the bits of numpy's PCG64 stream,
+, -, *, /, frexp/ldexp, correctly rounded fsum); exp and log for probability transforms are evaluated in
MPFR (gmpy2), each operation correctly rounded at 96 bits, and rounded once to float64 (the mpmath evaluation
this replaced gave the same bits on every input of the corpus). So the same seed gives the same inputs on every
machine and platform libm. Each argument draws from its own stream, keyed by (case seed, argument), so adding an
argument or a modifier to one tensor does not change the others.
"""
import math

import gmpy2
import numpy as np

from ..spec import get as spec_of
from ..spec.dtypes import round_to
from ..spec.classes import class_dim
from .row_patterns import apply_row_patterns, ignored_positions, make_confident, place_targets

GENERATOR_VERSION = 1  # bump when any generated input can change: it keys the stored inputs (expected/store.py)
GRAD_OUTPUT_STREAM = 3  # the upstream gradient's seed stream; each tensor argument's is in its record
INDEX_DTYPES = {"int64": np.int64, "int32": np.int32, "uint8": np.uint8, "bool": np.bool_}
MODIFIERS = ("zeros", "negative", "neg_inf", "pos_inf", "nan")  # applied in this order
TRANSFORM_PREC = 96  # bits for exp/log in transforms: then one rounding to float64


def parse_number(value):
    """A literal: a YAML number, or a string holding a hex float, a round-trip decimal, inf or nan."""
    if isinstance(value, str):
        text = value.strip().lower()
        return float.fromhex(text) if "0x" in text else float(text)
    return float(value)


def _literal(values, integer):
    if integer:
        return np.array(values, dtype=np.int64)
    parse = np.frompyfunc(parse_number, 1, 1)
    return np.asarray(parse(np.array(values, dtype=object)), dtype=np.float64)


def normal(rng, shape):
    """Irwin-Hall: the sum of 12 uniforms minus 6, mean 0, variance 1, support [-6, 6]; adds in a fixed order."""
    uniforms = rng.random((12,) + tuple(shape))
    total = uniforms[0].copy()
    for k in range(1, 12):
        total += uniforms[k]
    return total - 6.0


def _distribution(spec, rng, shape):
    dist = spec.get("dist", "normal")
    if dist == "normal":
        return spec.get("loc", 0.0) + spec.get("scale", 1.0) * normal(rng, shape)
    if dist == "uniform":
        low, high = spec.get("low", 0.0), spec.get("high", 1.0)
        return low + (high - low) * rng.random(shape)
    if dist == "logspace":  # |x| = m * 2**e: m uniform in [1, 2), e an integer uniform in [low, high]
        exponents = rng.integers(int(spec.get("low", -10)), int(spec.get("high", 10)), endpoint=True, size=shape)
        magnitudes = np.ldexp(1.0 + rng.random(shape), exponents)
        sign = spec.get("sign", "any")
        if sign == "any":
            return np.where(rng.random(shape) < 0.5, -magnitudes, magnitudes)
        return -magnitudes if sign == "negative" else magnitudes
    return np.full(shape, parse_number(spec.get("value", 0.0)))  # constant


def _count(fraction, size):
    if fraction == "all":
        return size
    return min(size, max(1, round(fraction * size))) if fraction > 0 and size else 0


def _apply_modifiers(values, spec, rng):
    flat = values.reshape(-1)
    for name, replacement in zip(MODIFIERS, (0.0, None, -np.inf, np.inf, np.nan)):
        count = _count(spec.get(name, 0), flat.size)
        if count:
            positions = rng.permutation(flat.size)[:count]
            flat[positions] = -np.abs(flat[positions]) if replacement is None else replacement
    return flat.reshape(values.shape)


def _along_rows(values, dim, per_row):
    """Apply per_row(list of floats) -> list of floats along ``dim``."""
    if values.ndim == 0:
        return np.asarray(per_row([float(values)])[0])
    moved = np.moveaxis(values, dim, -1)
    rows = moved.reshape(-1, moved.shape[-1]) if moved.size else moved.reshape(0, moved.shape[-1])
    out = np.array([per_row([float(v) for v in row]) for row in rows], dtype=np.float64).reshape(moved.shape)
    return np.moveaxis(out, -1, dim)


def _log_softmax_row(row):
    """log_softmax of a row of floats, each element correctly rounded at TRANSFORM_PREC bits (MPFR), then once
    to float64."""
    top = max(row)
    if not math.isfinite(top):
        return [math.nan] * len(row)
    with gmpy2.context(precision=TRANSFORM_PREC):
        shifted = [gmpy2.mpfr(x) - top for x in row]
        log_total = gmpy2.log(gmpy2.fsum([gmpy2.exp(z) for z in shifted]))
        return [float(z - log_total) for z in shifted]


def _transform(values, name, dim):
    logs = _along_rows(values, dim, _log_softmax_row)
    if name == "log_softmax":
        return logs
    with gmpy2.context(precision=TRANSFORM_PREC):
        return np.vectorize(lambda v: float(gmpy2.exp(v)), otypes=[np.float64])(logs) if logs.size else logs


def _index_target(spec, rng, input_shape, kwargs):
    n_classes = input_shape[class_dim(len(input_shape))] if input_shape else 1
    shape = tuple(spec["shape"]) if "shape" in spec else tuple(
        s for k, s in enumerate(input_shape) if k != class_dim(len(input_shape)))
    ignore_index = kwargs.get("ignore_index", -100)
    target = place_targets(rng.integers(0, max(n_classes, 1), size=shape), spec, n_classes, ignore_index)
    flat = target.reshape(-1)
    count = _count(spec.get("ignore", 0), flat.size)
    if count:
        flat[ignored_positions(count, flat.size, spec, rng)] = ignore_index
    if "out_of_range" in spec and flat.size:
        bad = n_classes if spec["out_of_range"] == "high" else (-2 if ignore_index != -2 else -3)
        flat[rng.integers(0, flat.size)] = bad
    return flat.reshape(shape)


def _normalised_row(row):
    total = math.fsum(row)  # correctly rounded, once per row
    return [x / total for x in row]


def _probabilities(spec, rng, shape, dim):
    if spec.get("one_hot"):
        values = np.zeros(shape)
        if values.size:
            moved = np.moveaxis(values, dim, -1).reshape(-1, shape[dim] if shape else 1)
            moved[np.arange(moved.shape[0]), rng.integers(0, moved.shape[1], size=moved.shape[0])] = 1.0
            values = np.moveaxis(moved.reshape(np.moveaxis(values, dim, -1).shape), -1, dim)
        return values
    values = rng.random(shape)
    if spec.get("normalized", True):
        values = _along_rows(values, dim, _normalised_row)
    return values


def _default_shape(tensor, input_shape):
    """A tensor without a shape takes the input's, or (C,), one per class of the input (its record says which)."""
    if input_shape is None:
        return ()
    if tensor.default_shape == "classes":
        return (input_shape[class_dim(len(input_shape))],) if input_shape else ()
    return input_shape


def make_tensor(tensor, spec, seed, input_shape=None, kwargs=None):
    """The float64 (or integer) source values of one argument (a spec.Tensor), before rounding to a dtype."""
    rng = np.random.default_rng([seed, tensor.stream])
    kind = spec.get("kind", "float")
    integer = (kind == "index" and spec.get("dtype") != "float") or spec.get("dtype") in INDEX_DTYPES
    if "values" in spec:
        values = _literal(spec["values"], integer)
    elif kind == "index":
        values = _index_target(spec, rng, input_shape, kwargs or {})
    else:
        shape = tuple(spec.get("shape", _default_shape(tensor, input_shape)))
        dim = spec.get("dim", class_dim(len(shape)))
        if kind in ("probabilities", "log_probabilities"):
            values = _probabilities(spec, rng, shape, dim)
            if kind == "log_probabilities":
                values = _log_of(values)
        else:
            values = apply_row_patterns(_distribution(spec, rng, shape) + spec.get("shift", 0.0), spec)
            if "transform" in spec:
                values = _transform(values, spec["transform"], dim)
        values = _apply_modifiers(np.array(values, dtype=np.float64), spec, rng)
    if integer:
        return values.astype(INDEX_DTYPES.get(spec.get("dtype", "int64"), np.int64))
    return values.astype(np.float64)  # class indices written as floats (dtype: float) are float targets


def _log_of(values):
    with gmpy2.context(precision=TRANSFORM_PREC):
        return np.vectorize(lambda v: float(gmpy2.log(v)) if v > 0 else -math.inf, otypes=[np.float64])(values) \
            if values.size else values


def input_shape(spec):
    """The shape of a tensor spec without generating its values."""
    if "values" in spec:
        return np.shape(np.array(spec["values"], dtype=object))
    return tuple(spec.get("shape", ()))


def make_inputs(case, input_values=True):
    """{argument: source array} for every tensor argument of a case, in its record's order (input first: the
    others derive their shapes from it). input_values=False puts zeros of the input's shape in its place: enough
    to know what a case exercises."""
    record = spec_of(case.function)
    first, *others = [t for t in record.tensors if t.name in case.inputs]
    if input_values:
        arrays = {first.name: make_tensor(first, case.inputs[first.name], case.seed)}
    else:
        arrays = {first.name: np.zeros(input_shape(case.inputs[first.name]))}
    for tensor in others:
        arrays[tensor.name] = make_tensor(tensor, case.inputs[tensor.name], case.seed,
                                          record.shape_for_others(arrays), case.kwargs)
    if input_values and "confident" in case.inputs["input"] and "target" in arrays and record.kind == "loss" \
            and arrays["target"].dtype.kind in "iu":
        arrays["input"] = make_confident(arrays["input"], arrays["target"], case.inputs["input"]["confident"])
    return arrays


def rounded_inputs(arrays, dtype):
    """The arrays as the dtype under test holds them (float64 arrays of dtype values); integers unchanged."""
    return {name: round_to(a, dtype) if a.dtype.kind == "f" else a for name, a in arrays.items()}


def make_grad_output(seed, shape, dtype, kind="random"):
    """The upstream gradient of a case, already rounded to the dtype: seeded approximately normal values
    ("random"), exactly 1 or 0 everywhere, negative values (sign handling), random values with the first
    element exactly 1 (a fast path decided on the first element takes it wrongly for all), or random values
    constant along the last dim ("rows": a per-row gradient broadcast along it, for layout expanded_rows)."""
    if kind in ("one", "zero"):
        return np.full(shape, 1.0 if kind == "one" else 0.0)
    rng = np.random.default_rng([seed, GRAD_OUTPUT_STREAM])
    if kind == "rows" and len(shape):
        return np.repeat(round_to(normal(rng, tuple(shape[:-1]) + (1,)), dtype), shape[-1], axis=-1)
    values = round_to(normal(rng, shape), dtype)
    if kind == "negative":
        return -np.abs(values)
    if kind == "one-first" and values.size:
        values.reshape(-1)[0] = 1.0
    return values
