"""Drawn calls as cases: in memory for the checks, and as a YAML case file under cases/found/ for a finding.

A drawn call becomes a Case with literal inputs (``values:``), its kwargs, form, dtype and the seed of its upstream
gradient, so the file that ``run`` later loads gives bit-identical inputs and the same checks. Floats are written
as YAML numbers where their shortest repr is a plain decimal, else as hex floats ("0x1.8p+1"), and as "inf",
"-inf", "nan"; the written file is loaded back and compared bit for bit before it is reported.
"""
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from .. import spec
from ..corpus.casefile import Case
from ..inputs.generate import make_inputs

SHORT_DECIMAL = 12  # characters: longer reprs are written as hex floats, which say exactly which float is meant


def literal(value):
    """A float as the case format writes it: a short decimal number, a hex-float string, or inf/-inf/nan."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = repr(value)
    if "e" not in text and len(text) <= SHORT_DECIMAL:
        return value
    return value.hex()


def _nested(array, convert):
    return convert(array.item()) if array.ndim == 0 else [_nested(row, convert) for row in array]


def tensor_spec(name, array, printable=False):
    """The case-format spec of one drawn array: literal values, or a shape for an array without elements.

    printable=False keeps Python floats (for the in-memory case); True writes them as the YAML file does.
    """
    integer = array.dtype.kind in "iub"
    spec = {}
    if integer and name == "target":
        spec["kind"] = "index"
    if integer and (name != "target" or array.dtype != np.int64):
        spec["dtype"] = array.dtype.name  # int64, int32, uint8, bool: an integer input or an index of another dtype
    if array.size == 0 and array.ndim != 1:  # nested empty lists cannot say (0, C): give the shape instead
        spec["shape"] = list(array.shape)
        if not integer:
            spec.update(dist="constant", value=0.0)
        return spec
    if integer:
        spec["values"] = _nested(array.astype(np.int64), int)
    else:
        spec["values"] = _nested(array, literal if printable else float)
    return spec


def describe(call):
    """A short label of what a call is: shape layout, reduction and the keyword arguments that were given."""
    shape = call.arrays["input"].shape
    parts = ["x".join(str(s) for s in shape) or "scalar"]
    if call.form == "module":
        parts.append("module")
    for name in sorted(call.kwargs):
        short = "" if name == "reduction" else spec.get(call.function).labels.get(name, f"{name}=")
        value = call.kwargs[name]
        parts.append(f"{short}{str(value).lower() if isinstance(value, bool) or value is None else value}")
    if "weight" in call.arrays:
        parts.append("w")
    if call.defect:
        parts.append(call.defect)
    label = "-".join(str(p) for p in parts)
    return "".join(ch if ch.isalnum() or ch in "_.,=+()/-" else "_" for ch in label)[:120]


def case_fields(call, printable=False):
    """The fields of the one case a call becomes (without its id), as the YAML file holds them."""
    fields = {"kwargs": dict(call.kwargs), "form": call.form, "dtypes": [call.dtype], "seed": call.seed,
              "inputs": {name: tensor_spec(name, array, printable) for name, array in call.arrays.items()}}
    if call.expect_error:
        fields.update(grad=False, expect={"error": call.expect_error})
    return fields


def content_hash(call):
    """Ten hex digits of a hash over everything the case holds: equal for equal calls, on every machine."""
    fields = dict(case_fields(call, printable=True), function=call.function)
    text = json.dumps(fields, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def case_id(call):
    """A descriptive, unique id: 'fuzz-<layout and kwargs>-<content hash>'."""
    return f"fuzz-{describe(call)}-{content_hash(call)}"


def case_from_call(call, identifier=None, source="<fuzz>"):
    """The Case that checks this call (literal inputs), as ``run`` would load it from its found file."""
    fields = case_fields(call)
    return Case(id=identifier or case_id(call), function=call.function, inputs=fields["inputs"],
                kwargs=fields["kwargs"], form=call.form, dtypes=(call.dtype,), seed=call.seed,
                grad=call.expect_error is None, expect_error=call.expect_error, tags=("fuzz",), source=source)


def header_lines(record, provenance):
    """The leading comment of a found case: the failing check, its message, the backend and how it was found."""
    message = (record.get("message") or "").strip().splitlines()
    lines = ["Found by `loss-conformance fuzz` and shrunk by hypothesis to a minimal failing example.",
             f"Failing check: {record['check']} ({record['status']}) of {record['function']} in {record['dtype']}"]
    if len(message) > 6:  # a traceback ends with the exception: keep the head and the tail
        message = message[:3] + ["..."] + message[-3:]
    lines += [f"  {line}" for line in message]
    lines += [f"{key}: {value}" for key, value in provenance.items()]
    return [f"# {line}".rstrip() for line in lines]


def render(call, record, provenance):
    """The text of the found case file for a failing call and its first failing record."""
    import yaml

    what = f"an invalid call ({call.defect})" if call.expect_error else "a valid call"
    case = {"id": case_id(call), "description": f"found by loss-conformance fuzz: {what}"}
    case.update(case_fields(call, printable=True))
    document = {"function": call.function, "tags": ["fuzz"], "cases": [case]}
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=120, allow_unicode=False)
    return "\n".join(header_lines(record, provenance)) + "\n" + body


def _same_inputs(loaded, call):
    arrays = make_inputs(loaded)
    if set(arrays) != set(call.arrays):
        return False
    def same(got, drawn):
        got, exact = got.astype(np.float64), drawn.astype(np.float64)
        return np.array_equal(got, exact, equal_nan=True) and np.array_equal(np.signbit(got), np.signbit(exact))

    return all(a.shape == call.arrays[n].shape and a.dtype == call.arrays[n].dtype and same(a, call.arrays[n])
               for n, a in arrays.items())


def verify_round_trip(path, call):
    """Load the written file and check that it is the call: same inputs bit for bit, kwargs, form, dtype, seed."""
    from ..corpus.casefile import load_file

    (loaded,) = load_file(path)
    same = (_same_inputs(loaded, call) and loaded.kwargs == call.kwargs and loaded.form == call.form
            and loaded.dtypes == (call.dtype,) and loaded.seed == call.seed
            and loaded.expect_error == call.expect_error)
    if not same:
        raise AssertionError(f"{path}: the written case does not reproduce the drawn call exactly")
    return loaded


def choose_path(call, out_dir):
    """Where the case of this call goes: '<function>-<content hash>.yaml' in out_dir, or the existing file that
    already holds this case; a file of that name holding another case is never overwritten (a number is added)."""
    body = _body(render(call, {"check": "", "status": "", "function": call.function, "dtype": call.dtype}, {}))
    stem = f"{call.function}-{content_hash(call)}"
    for number in range(100):
        path = Path(out_dir) / (f"{stem}.yaml" if number == 0 else f"{stem}-{number}.yaml")
        if not path.exists() or _body(_read(path)) == body:
            return path
    raise FileExistsError(f"{out_dir}: too many different files named {stem}*.yaml")


def write_found_case(call, record, path, provenance):
    """Write the case file for a finding atomically at ``path`` (from choose_path); an existing file with the
    same case keeps its comments. Returns the path, after checking that the file reproduces the call exactly."""
    from ..corpus.resources import write_atomic

    path = Path(path)
    if not path.exists():
        write_atomic(path, render(call, record, provenance))
    verify_round_trip(path, call)
    return path


def _read(path):
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return None


def _body(text):
    """The lines of a case file that are not comments: what decides whether two files hold the same case."""
    return None if text is None else [line for line in text.splitlines() if not line.startswith("#")]
