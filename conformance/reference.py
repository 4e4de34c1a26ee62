"""What the oracle says a case should give, for one dtype, with an on-disk cache of certified results.

The oracle computes on the exact values of the inputs rounded to the dtype under test, so only the backend's
own arithmetic is measured. Each certified value is stored as a float64 pair (hi, lo) with hi + lo within
2**-106 of it, beside its scale: a float64 difference then measures errors far below float64's roundoff.
Cache entries are keyed by the content (function, arguments, exact input bytes, precision, oracle version) and
written atomically, so parallel workers can share one cache directory.
"""
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

import oracle

from .inputs import make_grad_output

DIFFERENTIABLE_TARGETS = ("kl_div", "cross_entropy")  # floating targets of these functions carry a gradient


class Wanted(NamedTuple):
    """A certified oracle array as float64: value = hi + lo, and the scale its error is measured against."""

    hi: np.ndarray
    lo: np.ndarray
    scale: np.ndarray


class Expected(NamedTuple):
    error: str = None  # the oracle's error class name for an input the docs rule out
    value: Wanted = None
    grad_output: np.ndarray = None
    grad_input: Wanted = None
    grad_target: Wanted = None


def _split(evaluation):
    def to_pair(v):
        hi = float(v)
        return (hi, float(v - hi)) if np.isfinite(hi) else (hi, 0.0)

    flat = [to_pair(v) for v in evaluation.value.flat]
    shape = evaluation.value.shape
    hi = np.array([p[0] for p in flat], dtype=np.float64).reshape(shape)
    lo = np.array([p[1] for p in flat], dtype=np.float64).reshape(shape)
    scale = np.array([float(s) for s in evaluation.scale.flat], dtype=np.float64).reshape(shape)
    return Wanted(hi, lo, scale)


def oracle_arguments(function, arrays):
    """(positional, keyword) arrays for the oracle, in the torch.nn.functional signature order."""
    positional = [arrays["input"]] + ([arrays["target"]] if "target" in arrays else [])
    keyword = {"weight": arrays["weight"]} if "weight" in arrays else {}
    return positional, keyword


def compute_expected(function, arrays, kwargs, dtype, seed, grad, prec=None):
    """The certified forward value (or the typed error) and, when grad is set, the vector-Jacobian products."""
    positional, keyword = oracle_arguments(function, arrays)
    try:
        forward = oracle.certify(getattr(oracle, function), *positional, prec=prec, **keyword, **kwargs)
    except oracle.OracleError as error:
        return Expected(error=type(error).__name__)
    if not grad:
        return Expected(value=_split(forward))
    grad_output = make_grad_output(seed, forward.value.shape, dtype)
    gradients = oracle.certify(getattr(oracle, function + "_vjp"), *positional, grad_output, prec=prec,
                               **keyword, **kwargs)
    grad_target = None
    if gradients.target is not None and arrays["target"].dtype.kind == "f":
        grad_target = _split(gradients.target)
    return Expected(value=_split(forward), grad_output=grad_output, grad_input=_split(gradients.input),
                    grad_target=grad_target)


def cache_key(function, arrays, kwargs, dtype, seed, grad, prec):
    digest = hashlib.sha256()
    header = {"oracle": oracle.__version__, "function": function, "kwargs": kwargs, "dtype": dtype,
              "seed": seed if grad else None, "grad": grad, "prec": prec or oracle.DEFAULT_PREC}
    digest.update(json.dumps(header, sort_keys=True, default=repr).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def default_cache_dir():
    if os.environ.get("LOSS_CONFORMANCE_CACHE"):
        return Path(os.environ["LOSS_CONFORMANCE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loss-conformance" / "oracle"


def _to_npz(expected):
    fields = {"error": np.array(expected.error or "")}
    for name in ("value", "grad_input", "grad_target"):
        wanted = getattr(expected, name)
        if wanted is not None:
            fields.update({f"{name}.{part}": array for part, array in zip(Wanted._fields, wanted)})
    if expected.grad_output is not None:
        fields["grad_output"] = expected.grad_output
    return fields


def _from_npz(stored):
    def wanted(name):
        return Wanted(*(stored[f"{name}.{part}"] for part in Wanted._fields)) if f"{name}.hi" in stored else None

    return Expected(error=str(stored["error"]) or None, value=wanted("value"),
                    grad_output=stored.get("grad_output"),
                    grad_input=wanted("grad_input"), grad_target=wanted("grad_target"))


class OracleCache:
    """Content-addressed store of Expected results; ``directory=None`` disables it."""

    def __init__(self, directory=None):
        self.directory = Path(directory) if directory else None
        self.hits = self.misses = 0

    def _path(self, key):
        return self.directory / key[:2] / f"{key}.npz"

    def get(self, key):
        if self.directory is None:
            return None
        try:
            with np.load(self._path(key), allow_pickle=False) as stored:
                result = _from_npz(dict(stored))
        except (OSError, ValueError, KeyError):  # absent, or a damaged entry: recompute and overwrite
            return None
        self.hits += 1
        return result

    def put(self, key, expected):
        if self.directory is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **_to_npz(expected))
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(buffer.getvalue())
            os.replace(temporary, path)  # atomic: a reader sees the old entry or the new, never half of one
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def expected(self, function, arrays, kwargs, dtype, seed, grad, prec=None):
        key = cache_key(function, arrays, kwargs, dtype, seed, grad, prec)
        cached = self.get(key)
        if cached is not None:
            return cached
        self.misses += 1
        result = compute_expected(function, arrays, kwargs, dtype, seed, grad, prec)
        self.put(key, result)
        return result

