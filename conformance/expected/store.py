"""The on-disk store of certified results and of generated inputs, shared by parallel workers.

Entries are keyed by the content (calls.cache_key: function, arguments, exact input bytes, precision, oracle
version, and the oracle engine with its libraries' versions) and written atomically, so parallel workers can share
one cache directory; the generated inputs of each case are kept in its ``inputs/`` folder.
"""
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .. import spec
from ..corpus.resources import write_atomic
from ..inputs.generate import GENERATOR_VERSION, make_inputs
from .calls import Expected, Wanted, cache_key, compute_expected


def default_cache_dir():
    if os.environ.get("LOSS_CONFORMANCE_CACHE"):
        return Path(os.environ["LOSS_CONFORMANCE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loss-conformance" / "oracle"


def _field_names(expected):
    """{stored name: Wanted}: the primary output as "value", the others by name, gradients as "grad_<name>"."""
    outputs = expected.outputs or {}
    named = {("value" if number == 0 else name): wanted for number, (name, wanted) in enumerate(outputs.items())}
    named.update({f"grad_{name}": wanted for name, wanted in (expected.gradients or {}).items()})
    return named


def _to_fields(expected):
    fields = {}
    for name, wanted in _field_names(expected).items():
        fields.update({f"{name}.{part}": array for part, array in zip(Wanted._fields, wanted)})
    if expected.grad_output is not None:
        fields["grad_output"] = expected.grad_output
    return fields


def _from_fields(stored, error, function):
    names = sorted({key.rpartition(".")[0] for key in stored if key.endswith(".hi")})
    wanted = {name: Wanted(*(stored[f"{name}.{part}"] for part in Wanted._fields)) for name in names}
    primary = spec.get(function).outputs[0]
    outputs = {primary: wanted.pop("value")} if "value" in wanted else {}
    gradients = {name[len("grad_"):]: wanted.pop(name) for name in list(wanted) if name.startswith("grad_")}
    outputs.update(wanted)
    return Expected(error=error or None, outputs=outputs or None, grad_output=stored.get("grad_output"),
                    gradients=gradients or None)


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
        write_atomic(path, pack_arrays(arrays))
        return arrays

    def _path(self, key):
        return self.directory / key[:2] / f"{key}{ENTRY_SUFFIX}"

    def get(self, key, function):
        if self.directory is None:
            return None
        stored = _read_entry(self._path(key))
        if stored is None:
            return None
        self.hits += 1
        return _from_fields(*stored, function)

    def put(self, key, expected):
        if self.directory is None:
            return
        write_atomic(self._path(key), pack_arrays(_to_fields(expected), expected.error or ""))

    def expected(self, function, arrays, kwargs, dtype, seed, grad, grad_output_kind="random", prec=None,
                 engine=None):
        key = cache_key(function, arrays, kwargs, dtype, seed, grad, prec, grad_output_kind, engine)
        cached = self.get(key, function)
        if cached is not None:
            return cached
        self.misses += 1
        result = compute_expected(function, arrays, kwargs, dtype, seed, grad, prec, grad_output_kind, engine)
        self.put(key, result)
        return result

