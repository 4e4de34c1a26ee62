"""Case files: load YAML safely, validate against cases/schema.json, expand matrices into individual cases.

Every problem is raised as a CaseFileError that names the file, the case id (or entry number) and the field,
so that a person can fix the file without reading a traceback. docs/case-format.md describes the format.
``read_yaml`` is the one YAML loader of case, xfail and tolerance files: safe (no Python objects), and strict
where safe_load is not (yaml_strict.py: duplicate keys, merge keys, alias expansion, nesting; and file size).
Every size limit is a named constant of limits.py, re-exported here; docs/robustness.md states them and why.
"""
import copy
import hashlib
import itertools
import json
import string
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml

from . import yaml_strict
from .. import spec
from ..spec import function_names
from ..spec.dtypes import DTYPES
from .limits import (  # noqa: F401 -- re-exported: the limits of case files
    INTEGER_LIMIT,
    LARGE_ELEMENTS,
    LARGE_TAG,
    MAX_DEPTH,
    MAX_DIMS,
    MAX_ELEMENTS,
    MAX_EXPANSION_NODES,
    MAX_FILE_BYTES,
    MAX_FILE_CASES,
    MAX_INT_DIGITS,
    MAX_MATRIX_CASES,
    MAX_YAML_NODES,
    SEED_LIMIT,
    LimitError,
    case_elements,
    check_matrix_size,
    check_numbers,
    check_size,
    fragment_numbers,
    matrix_numbers,
    tensor_elements,
)
from .resources import data_path

CASES_DIR = data_path("cases")  # the bundled corpus (conformance/corpus/resources.py)
SCHEMA_PATH = CASES_DIR / "schema.json"


class CaseFileError(Exception):
    """A case file (or xfail file) that cannot be used, with where and why."""

    def __init__(self, path, message, case_id=None, field_path=None):
        self.path, self.case_id, self.field_path = str(path), case_id, field_path
        where = [self.path]
        if case_id is not None:
            where.append(f"case {case_id!r}")
        if field_path:
            where.append(f"field {field_path}")
        super().__init__(f"{': '.join(where)}: {message}")


@dataclass(frozen=True)
class Case:
    """One fully expanded case: what to call, on which generated or literal inputs, and what to expect."""

    id: str
    function: str
    inputs: dict  # argument name -> tensor spec (see docs/case-format.md)
    kwargs: dict = field(default_factory=dict)
    form: str = "functional"
    dtypes: tuple = DTYPES
    seed: int = 0
    grad: bool = True
    grad_output: str = "random"  # the upstream gradient's kind (schema.json; inputs.generate.make_grad_output)
    grad_output_layout: str = "contiguous"  # how the upstream gradient is laid out (inputs/layouts.py)
    expect_error: str = None  # an oracle error class name, or None when a value is expected
    tolerance_factor: float = 1.0
    tolerance_reason: str = None
    tags: tuple = ()
    source: str = ""
    description: str = ""

    @property
    def full_id(self):
        return f"{self.function}/{self.id}"


@lru_cache(maxsize=1)
def _file_schema():
    return json.loads(SCHEMA_PATH.read_text())


def _schema():
    """cases/schema.json with the function names and tensor arguments of the registered records (a test keeps the
    file's own lists equal to the built-in records')."""
    return _schema_for(function_names())


@lru_cache(maxsize=4)
def _schema_for(names):
    schema = copy.deepcopy(_file_schema())
    defs = schema["$defs"]
    defs["function"]["enum"] = list(names)
    tensors = sorted({name for function in names for name in spec.get(function).tensor_names})
    defs["inputs"]["properties"] = {name: {"$ref": "#/$defs/tensor"} for name in tensors}
    return schema


def _is_integer(checker, instance):
    """An integer written as one: JSON Schema's "integer" would also take 2.0, which a shape or seed must not be."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer))


def _validator(definition, schema):
    return _Validator({"$ref": f"#/$defs/{definition}", "$defs": schema["$defs"]})


def _check(document, validator, path, case_id, prefix):
    try:
        errors = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    except RecursionError:
        raise CaseFileError(path, "is nested too deeply to be validated", case_id, prefix or None) from None
    if errors:
        try:
            error = jsonschema.exceptions.best_match(errors)
        except TypeError:  # best_match compares paths, which may mix int and str keys
            error = errors[0]
        field_path = ".".join([prefix] + [str(p) for p in error.absolute_path]).strip(".") or None
        raise CaseFileError(path, error.message, case_id, field_path)


def _where(mark):
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def read_yaml(path):
    """A YAML file's document, read by the one loader of case, xfail and tolerance files (_Loader: safe, no
    duplicate keys, bounded size and nesting); every problem is a CaseFileError naming the file, and the line
    where there is one."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise CaseFileError(path, f"cannot be read ({error.strerror or error})") from None
    except ValueError as error:  # a path with a NUL byte
        raise CaseFileError(path, f"cannot be read ({error})") from None
    if len(data) > MAX_FILE_BYTES:
        raise CaseFileError(path, f"is larger than {MAX_FILE_BYTES // 2**20} MiB, the most a case, xfail or "
                                  "tolerance file may be")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise CaseFileError(path, f"is not UTF-8 text: byte {error.start} (line {line}) is invalid "
                                  f"({error.reason})") from None
    try:
        return yaml_strict.load(text)
    except yaml_strict.Refused as error:
        raise CaseFileError(path, f"is not accepted{_where(error.problem_mark)}: {error.problem}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).replace("\n", " ")
        raise CaseFileError(path, f"is not valid YAML{_where(mark)}: {problem}") from None
    except RecursionError:
        raise CaseFileError(path, "is nested too deeply to be read") from None
    except (ValueError, TypeError, OverflowError) as error:  # a scalar that cannot be constructed
        raise CaseFileError(path, f"is not valid YAML: {type(error).__name__}: {error}") from None


def merge(base, fragment):
    """Deep merge of two case fragments: mappings merge key by key, everything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in fragment.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _label(value):
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "none"}[value]
    return str(value)


def _template_fields(template, path, entry_number):
    """The axis names a matrix id template uses: only plain '{axis}' fields are accepted."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise CaseFileError(path, f"id template is malformed ({error})", f"matrix #{entry_number}",
                            "matrix.id") from None
    for _, name, format_spec, conversion in parsed:
        if name is not None and (format_spec or conversion or not name.isidentifier()):
            raise CaseFileError(path, f"id template field {{{name}}} must be a plain axis name like {{reduction}}",
                                f"matrix #{entry_number}", "matrix.id")
    return {name for _, name, _, _ in parsed if name}


def _expand_matrix(matrix, path, entry_number):
    """The cross product of the axes, each combination a case fragment with its id formatted from the labels."""
    axes = {str(name): axis for name, axis in matrix["axes"].items()}
    names = list(axes)
    unknown = _template_fields(matrix["id"], path, entry_number) - set(names)
    if unknown:
        raise CaseFileError(path, f"id template names {sorted(unknown)}, which are not axes ({', '.join(names)})",
                            f"matrix #{entry_number}", "matrix.id")
    options = []
    for name in names:
        axis = axes[name]
        if isinstance(axis, list):  # plain values set the keyword argument of that name
            options.append([(_label(v), {"kwargs": {name: v}}) for v in axis])
        else:  # YAML may read a label such as true or null as a non-string: label it like a list value
            options.append([(_label(label), fragment) for label, fragment in axis.items()])
    excluded = [{str(k): _label(v) for k, v in rule.items()} for rule in matrix.get("exclude", [])]
    for rule_number, rule in enumerate(excluded):
        if not rule or set(rule) - set(names):
            raise CaseFileError(path, f"an exclude rule names one or more axes ({', '.join(names)}); got "
                                f"{sorted(rule) or 'none'}", f"matrix #{entry_number}",
                                f"matrix.exclude.{rule_number}")
    expanded = 0
    for combination in itertools.product(*options):
        labels = {name: label for name, (label, _) in zip(names, combination)}
        if any(all(labels[k] == v for k, v in rule.items()) for rule in excluded):
            continue
        fragment = matrix.get("base", {})
        for _, part in combination:
            fragment = merge(fragment, part)
        fragment["id"] = matrix["id"].format(**labels)
        expanded += 1
        yield fragment
    if not expanded:
        raise CaseFileError(path, "expands to no case: the exclude rules remove every combination",
                            f"matrix #{entry_number}", "matrix.exclude")


def default_seed(full_id):
    """A case's seed when it names none: derived from its id, so that inputs do not depend on file order."""
    return int.from_bytes(hashlib.sha256(full_id.encode()).digest()[:4], "little")


def _to_case(document, fragment, path):
    function = document["function"]
    expect = fragment.get("expect", "value")
    tolerance = fragment.get("tolerance", {})
    full_id = f"{function}/{fragment['id']}"
    return Case(
        id=fragment["id"], function=function, inputs=fragment["inputs"], kwargs=fragment.get("kwargs", {}),
        form=fragment.get("form", document.get("form", "functional")),
        dtypes=tuple(fragment.get("dtypes", document.get("dtypes", DTYPES))),
        seed=fragment.get("seed", default_seed(full_id)), grad=fragment.get("grad", True),
        grad_output=fragment.get("grad_output", "random"),
        grad_output_layout=fragment.get("grad_output_layout", "contiguous"),
        expect_error=None if expect == "value" else expect["error"],
        tolerance_factor=float(tolerance.get("factor", 1.0)), tolerance_reason=tolerance.get("reason"),
        tags=tuple(sorted(set(document.get("tags", [])) | set(fragment.get("tags", [])))),
        source=str(path), description=fragment.get("description", ""))


def _check_arguments(case, path):
    """The tensors and keywords of a case against its function's record (conformance/spec/)."""
    record = spec.get(case.function)
    for tensor in record.tensors:
        if tensor.required and tensor.name not in case.inputs:
            raise CaseFileError(path, f"{case.function} needs inputs.{tensor.name}", case.id, "inputs")
    unknown = sorted(set(case.inputs) - set(record.tensor_names))
    if unknown:
        raise CaseFileError(path, f"{case.function} takes no {', '.join(unknown)} (its tensors: "
                            f"{', '.join(record.tensor_names)})", case.id, f"inputs.{unknown[0]}")
    unknown_kwargs = set(case.kwargs) - set(record.keywords)
    if unknown_kwargs:
        raise CaseFileError(path, f"{sorted(unknown_kwargs)} not accepted by {case.function}; expected some of "
                            f"{', '.join(record.keywords)}", case.id, "kwargs")
    overlap = set(case.inputs) & set(case.kwargs)
    if overlap:
        raise CaseFileError(path, f"{sorted(overlap)} given both as inputs and as kwargs", case.id, "kwargs")


@contextmanager
def _limits(path):
    """A LimitError (limits.py) as the CaseFileError of this file."""
    try:
        yield
    except LimitError as error:
        raise CaseFileError(path, error.message, error.case_id, error.field_path) from None


def load_file(path):
    """All cases of one file, expanded and validated; raises CaseFileError on the first problem."""
    document = read_yaml(path)
    if not isinstance(document, dict):
        raise CaseFileError(path, "must be a mapping with the keys 'function' and 'cases'")
    schema = _schema()
    _check(document, _Validator(_header_schema(schema)), path, None, "")
    entries = document["cases"]
    case_validator, matrix_validator = _validator("case", schema), _validator("matrix", schema)
    cases, seen = [], {}
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise CaseFileError(path, "must be a mapping (a case or a matrix)", f"#{number}", f"cases.{number}")
        if "matrix" in entry:
            if set(entry) != {"matrix"}:
                raise CaseFileError(path, f"a matrix entry has only the key 'matrix', got {sorted(entry)}",
                                    f"matrix #{number}", f"cases.{number}")
            _check(entry["matrix"], matrix_validator, path, f"matrix #{number}", f"cases.{number}.matrix")
            with _limits(path):
                check_numbers(matrix_numbers(entry["matrix"], f"cases.{number}.matrix"), f"matrix #{number}")
                check_matrix_size(entry["matrix"], number, len(cases))
            fragments = list(_expand_matrix(entry["matrix"], path, number))
        else:
            fragments = [entry]
        for fragment in fragments:
            case_id = fragment.get("id", f"#{number}")
            _check(fragment, case_validator, path, case_id, f"cases.{number}")
            with _limits(path):
                check_numbers(fragment_numbers(fragment, f"cases.{number}"), case_id)
            case = _to_case(document, fragment, path)
            _check_arguments(case, path)
            with _limits(path):
                check_size(case, number)
            if case.id in seen:
                raise CaseFileError(path, f"duplicate id (first defined in entry {seen[case.id]})", case.id, "id")
            seen[case.id] = number
            cases.append(case)
            if len(cases) > MAX_FILE_CASES:
                raise CaseFileError(path, f"holds more than {MAX_FILE_CASES} cases, matrices expanded", case.id,
                                    f"cases.{number}")
    return cases


def _header_schema(schema):
    header = {key: value for key, value in schema.items() if key != "properties"}
    header["properties"] = dict(schema["properties"], cases={"type": "array", "minItems": 1})
    return header


def _is_support_file(relative_path):
    """Budget and expected-deviation files live beside the cases but are not case files."""
    return relative_path.name == "tolerances.yaml" or "xfails" in relative_path.parts


def case_files(paths=None):
    """The YAML files named (files, or directories searched recursively); the default corpus when None."""
    files = []
    for entry in [CASES_DIR] if not paths else paths:
        entry = Path(entry)
        if entry.is_dir():
            files.extend(sorted(p for p in entry.rglob("*.yaml") if not _is_support_file(p.relative_to(entry))))
        elif entry.exists():
            files.append(entry)
        else:
            raise CaseFileError(entry, "does not exist")
    return files


def load_cases(paths=None):
    """Every case of the given files or directories (default: cases/), ids unique across files."""
    cases, origin = [], {}
    for path in case_files(paths):
        for case in load_file(path):
            if case.full_id in origin:
                raise CaseFileError(path, f"duplicate id, also defined in {origin[case.full_id]}", case.id, "id")
            origin[case.full_id] = path
            cases.append(case)
    return cases
