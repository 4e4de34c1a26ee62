"""What the oracle says a case should give, for one dtype, with an on-disk cache of certified results.

The oracle computes on the exact values of the inputs rounded to the dtype under test, so only the backend's
own arithmetic is measured. Each certified value is stored as a float64 pair (hi, lo) with hi + lo within
2**-106 of it, beside its scale: a float64 difference then measures errors far below float64's roundoff.
Cache entries are keyed by the content (function, arguments, exact input bytes, precision, oracle version, and
the oracle engine with its libraries' versions) and written atomically, so parallel workers can share one cache
directory; the generated inputs of each case are kept in its ``inputs/`` folder. The engine is the oracle's
default (LOSS_CONFORMANCE_ENGINE=mpmath|arb|auto selects it; auto takes arb where python-flint is installed)
unless ``engine=`` is given; see docs/oracle-engines.md.
"""
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

import oracle

from .inputs import GENERATOR_VERSION, make_grad_output, make_inputs, rounded_inputs


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


def _wanted(certified):
    """Wanted from an oracle.Float64Evaluation (the same three float64 arrays)."""
    return Wanted(*certified)


def oracle_arguments(function, arrays):
    """(positional, keyword) arrays for the oracle, in the torch.nn.functional signature order."""
    positional = [arrays["input"]] + ([arrays["target"]] if "target" in arrays else [])
    keyword = {"weight": arrays["weight"]} if "weight" in arrays else {}
    return positional, keyword


def oracle_calls(case, dtype):
    """(label, oracle function, positional args, kwargs) of the forward and, for a differentiable case, the VJP
    with the case's upstream gradient, on the dtype-rounded inputs: the calls compute_expected certifies, for
    tools that evaluate them another way (the engines' cross-validation)."""
    arrays = rounded_inputs(make_inputs(case), dtype)
    positional, keyword = oracle_arguments(case.function, arrays)
    kwargs = {**keyword, **case.kwargs}
    calls = [("forward", getattr(oracle, case.function), positional, kwargs)]
    if case.grad:
        try:
            shape = oracle.certify_float64(getattr(oracle, case.function), *positional, **kwargs).hi.shape
        except oracle.OracleError:
            return calls  # an error has no VJP; the caller compares the forward's errors
        grad_output = make_grad_output(case.seed, shape, dtype, case.grad_output)
        calls.append(("vjp", getattr(oracle, case.function + "_vjp"), positional + [grad_output], kwargs))
    return calls


def compute_expected(function, arrays, kwargs, dtype, seed, grad, prec=None, grad_output_kind="random",
                     engine=None):
    """The certified forward value (or the typed error) and, when grad is set, the vector-Jacobian products
    contracted with the case's upstream gradient (inputs.make_grad_output, of ``grad_output_kind``).

    ``engine`` is the oracle engine ("mpmath", "arb", "auto"; None: oracle's default, which honours
    LOSS_CONFORMANCE_ENGINE). Results come as float64 arrays straight from the engine (oracle.certify_float64)."""
    positional, keyword = oracle_arguments(function, arrays)
    try:
        forward = oracle.certify_float64(getattr(oracle, function), *positional, prec=prec, engine=engine,
                                         **keyword, **kwargs)
    except oracle.OracleError as error:
        return Expected(error=type(error).__name__)
    if not grad:
        return Expected(value=_wanted(forward))
    grad_output = make_grad_output(seed, forward.hi.shape, dtype, grad_output_kind)
    gradients = oracle.certify_float64(getattr(oracle, function + "_vjp"), *positional, grad_output, prec=prec,
                                       engine=engine, **keyword, **kwargs)
    grad_target = None
    if gradients.target is not None and arrays["target"].dtype.kind == "f":
        grad_target = _wanted(gradients.target)
    return Expected(value=_wanted(forward), grad_output=grad_output, grad_input=_wanted(gradients.input),
                    grad_target=grad_target)


def cache_key(function, arrays, kwargs, dtype, seed, grad, prec, grad_output_kind="random", engine=None):
    """The content address of a result: what is computed, on which exact inputs, by which engine and version."""
    digest = hashlib.sha256()
    header = {"oracle": oracle.__version__, "function": function, "kwargs": kwargs, "dtype": dtype,
              "seed": seed if grad else None, "grad": grad, "prec": prec or oracle.DEFAULT_PREC,
              "engine": oracle.engine_name(engine), "engine_version": oracle.engine_version(engine)}
    if grad and grad_output_kind != "random":  # random keeps the keys that earlier versions wrote
        header["grad_output"] = grad_output_kind
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


def _to_fields(expected):
    fields = {}
    for name in ("value", "grad_input", "grad_target"):
        wanted = getattr(expected, name)
        if wanted is not None:
            fields.update({f"{name}.{part}": array for part, array in zip(Wanted._fields, wanted)})
    if expected.grad_output is not None:
        fields["grad_output"] = expected.grad_output
    return fields


def _from_fields(stored, error):
    def wanted(name):
        return Wanted(*(stored[f"{name}.{part}"] for part in Wanted._fields)) if f"{name}.hi" in stored else None

    return Expected(error=error or None, value=wanted("value"), grad_output=stored.get("grad_output"),
                    grad_input=wanted("grad_input"), grad_target=wanted("grad_target"))


# A store entry: magic, header length, a JSON header naming each array's dtype, shape and offset, then the raw
# bytes, each array aligned to 64. Reading one is a file read and a json.loads; numpy's .npz (a zip of .npy
# files, a header parse per array) took a quarter of a warm run.
ENTRY_SUFFIX = ".entry"
_MAGIC = b"LCE1"
_ALIGN = 64


def _padded(size):
    return -(-size // _ALIGN) * _ALIGN


def pack_arrays(arrays, error=""):
    """The bytes of one store entry holding ``arrays`` (a dict of numeric numpy arrays) and a text ``error``."""
    contiguous = {name: np.asarray(array, order="C") for name, array in arrays.items()}  # keeps 0-d shapes
    layout, offset = [], 0
    for name, array in contiguous.items():
        layout.append([name, array.dtype.str, list(array.shape), offset])
        offset += _padded(array.nbytes)
    header = json.dumps({"error": error, "arrays": layout, "size": offset}).encode()
    head = _MAGIC + len(header).to_bytes(4, "little") + header
    body = bytearray(_padded(len(head)) + offset)
    body[:len(head)] = head
    start = _padded(len(head))
    for (_, _, _, at), array in zip(layout, contiguous.values()):
        body[start + at:start + at + array.nbytes] = array.tobytes()
    return bytes(body)


def unpack_arrays(data):
    """(arrays, error) from the bytes of a store entry; ValueError when they are not a whole entry."""
    if data[:4] != _MAGIC:
        raise ValueError("not a store entry")
    length = int.from_bytes(data[4:8], "little")
    header = json.loads(bytes(data[8:8 + length]))
    start = _padded(8 + length)
    if len(data) != start + header["size"]:
        raise ValueError("truncated store entry")
    arrays = {}
    for name, dtype, shape, at in header["arrays"]:
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        arrays[name] = np.frombuffer(data, dtype, count, start + at).reshape(tuple(shape))
    return arrays, header["error"]


def _read_entry(path):
    """A store entry's arrays (writable: they come from a bytearray) and error; None when absent or damaged."""
    try:
        return unpack_arrays(bytearray(path.read_bytes()))
    except (OSError, ValueError, KeyError, TypeError):  # absent or damaged: the caller recomputes and overwrites
        return None


def _write_atomic_bytes(path, data):
    """Write a store entry so that a reader (another worker) sees the old entry or the new, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=ENTRY_SUFFIX)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def inputs_key(case):
    """What a case's generated inputs depend on: the generator's version, the specs, keyword arguments, seed."""
    fields = {"generator": GENERATOR_VERSION, "function": case.function, "inputs": case.inputs,
              "kwargs": case.kwargs, "seed": case.seed}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=repr).encode()).hexdigest()


class OracleCache:
    """Content-addressed store of Expected results; ``directory=None`` disables it."""

    def __init__(self, directory=None):
        self.directory = Path(directory) if directory else None
        self.hits = self.misses = 0
        # The generated inputs of each case, beside the oracle's results (a warm run need not generate them).
        self.inputs_directory = self.directory / "inputs" if self.directory else None

    def inputs(self, case):
        """make_inputs(case), read from the inputs store when an identical case generated them before."""
        if self.inputs_directory is None:
            return make_inputs(case)
        path = self.inputs_directory / f"{inputs_key(case)}{ENTRY_SUFFIX}"
        stored = _read_entry(path)
        if stored is not None:
            return stored[0]
        arrays = make_inputs(case)
        _write_atomic_bytes(path, pack_arrays(arrays))
        return arrays

    def _path(self, key):
        return self.directory / key[:2] / f"{key}{ENTRY_SUFFIX}"

    def get(self, key):
        if self.directory is None:
            return None
        stored = _read_entry(self._path(key))
        if stored is None:
            return None
        self.hits += 1
        return _from_fields(*stored)

    def put(self, key, expected):
        if self.directory is None:
            return
        _write_atomic_bytes(self._path(key), pack_arrays(_to_fields(expected), expected.error or ""))

    def expected(self, function, arrays, kwargs, dtype, seed, grad, grad_output_kind="random", prec=None,
                 engine=None):
        key = cache_key(function, arrays, kwargs, dtype, seed, grad, prec, grad_output_kind, engine)
        cached = self.get(key)
        if cached is not None:
            return cached
        self.misses += 1
        result = compute_expected(function, arrays, kwargs, dtype, seed, grad, prec, grad_output_kind, engine)
        self.put(key, result)
        return result

