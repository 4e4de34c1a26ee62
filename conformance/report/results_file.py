"""The results file (``run --json``): atomic writes, JSON with non-finite floats spelled out, and reading it
back with validation. docs/results.md describes the document.
"""
import json
import math
from pathlib import Path

from ..corpus.resources import write_atomic

SCHEMA = "loss-conformance/results"
SCHEMA_VERSION = 1


def json_safe(value):
    """The value with non-finite floats spelled "inf", "-inf", "nan" (JSON has no literal for them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def _dumps(value, **layout):
    return json.dumps(json_safe(value), allow_nan=False, default=str, **layout)


def write_json(path, document):
    """Indented JSON, except that the records of a "results" list take one line each (compact, and a diff of two
    results files shows one line per changed check)."""
    records = document.get("results")
    if not isinstance(records, list) or not records:
        write_atomic(path, _dumps(document, indent=1) + "\n")
        return
    head = _dumps({key: value for key, value in document.items() if key != "results"}, indent=1)
    body = ",\n  ".join(_dumps(record) for record in records)
    write_atomic(path, f'{head[:-2]},\n "results": [\n  {body}\n ]\n}}\n')


class ResultsFileError(Exception):
    """A results file that cannot be read: names the file and what is wrong with it."""

    def __init__(self, path, message):
        super().__init__(f"{path}: {message}")
        self.path = path


NUMERIC_FIELDS = ("error_u", "budget_u", "max_abs", "max_rel")


def _float_back(value):
    return float(value) if value in ("inf", "-inf", "nan") else value


def restore_nonfinite(record):
    """The record with the "inf"/"-inf"/"nan" strings of its numeric fields turned back into floats."""
    for key in NUMERIC_FIELDS:
        if key in record:
            record[key] = _float_back(record[key])
    worst = record.get("worst")
    if isinstance(worst, dict):
        for key in ("got", "wanted"):
            if key in worst:
                worst[key] = _float_back(worst[key])
    return record


MAX_RESULTS_BYTES = 512 * 2**20  # a results file (the whole corpus in every dtype writes about 20 MB)
MAX_JSON_DEPTH = 16  # nesting of a results document (run writes 4 levels)
_TEXT_FIELDS = ("message", "reason", "spec", "reproduce", "skip_kind", "parity")


def _shown(value):
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:60]}..."


def _structure_problem(value):
    """Why a decoded document cannot be a results file whatever its fields (too deep, an integer too large to
    compute with), or None."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                return f"it is nested more than {MAX_JSON_DEPTH} levels deep"
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 2**63:
            return f"it holds the integer {_shown(item)}, too large for any field"
    return None


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_record(path, number, record):
    """ResultsFileError naming the record and field of the first value of a type the writers cannot use. The
    fields every reader needs (case, function, dtype, check, status, error_u, budget_u, size) are checked by
    the reader itself, in its words (diff.index_checks, html.check_records, the journal)."""
    def bad(key, what):
        return ResultsFileError(path, f'record {number}: "{key}" must be {what}, got {_shown(record.get(key))}')

    for key in _TEXT_FIELDS:
        if record.get(key) is not None and not isinstance(record[key], str):
            raise bad(key, "a string")
    for key in ("max_abs", "max_rel"):
        if record.get(key) is not None and not _is_number(record[key]):
            raise bad(key, 'a number (or "inf", "-inf", "nan")')
    for key in ("n", "bad"):
        value = record.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise bad(key, "a count (an integer of at least 0)")
    if record.get("tags") is not None and not (isinstance(record["tags"], list)
                                               and all(isinstance(t, str) for t in record["tags"])):
        raise bad("tags", "a list of strings")
    if record.get("worst") is not None and not isinstance(record["worst"], dict):
        raise bad("worst", "an object")


def _check_sections(path, document):
    """The sections besides the records: each of the type run writes, or absent."""
    for key, kind, what in (("environment", dict, "an object"), ("summary", dict, "an object"),
                            ("timings", dict, "an object"), ("warnings", list, "a list")):
        if key in document and not isinstance(document[key], kind):
            raise ResultsFileError(path, f'"{key}" is not {what}, got {_shown(document[key])}')
    warnings = document.get("warnings") or []
    if not all(isinstance(warning, str) for warning in warnings):
        raise ResultsFileError(path, '"warnings" must be a list of strings')
    summary = document.get("summary") or {}
    if "table" in summary and not (isinstance(summary["table"], list)
                                   and all(isinstance(row, dict) for row in summary["table"])):
        raise ResultsFileError(path, '"summary.table" must be a list of objects')
    if "totals" in summary and not isinstance(summary["totals"], dict):
        raise ResultsFileError(path, '"summary.totals" must be an object')


def load_results(path):
    """A results document (``run --json``) with "inf"/"nan" strings turned back into floats.

    Raises ResultsFileError for a file that is missing, too large, not UTF-8, not JSON, nested too deeply, not a
    results document of a known version, or with a value of the wrong type in a record or section.
    """
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_RESULTS_BYTES + 1)
    except OSError as error:
        raise ResultsFileError(path, f"cannot be read ({error.strerror or error})") from None
    except ValueError as error:  # a path with a NUL byte
        raise ResultsFileError(path, f"cannot be read ({error})") from None
    if len(data) > MAX_RESULTS_BYTES:
        raise ResultsFileError(path, f"is larger than {MAX_RESULTS_BYTES // 2**20} MiB")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ResultsFileError(path, f"is not UTF-8 text (byte {error.start}: {error.reason})") from None
    except json.JSONDecodeError as error:
        raise ResultsFileError(path, f"is not JSON ({error})") from None
    except RecursionError:
        raise ResultsFileError(path, "is not a results file: its JSON is nested too deeply") from None
    except ValueError as error:  # an integer of more digits than Python converts
        raise ResultsFileError(path, f"is not JSON that can be read ({error})") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ResultsFileError(path, 'is not a loss-conformance results file (expected "schema": '
                                     '"loss-conformance/results", as written by run --json)')
    version = document.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise ResultsFileError(path, f"has schema_version {_shown(version)}; this version reads 1 to {SCHEMA_VERSION}")
    problem = _structure_problem(document)
    if problem:
        raise ResultsFileError(path, f"is not a results file: {problem}")
    records = document.get("results")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ResultsFileError(path, '"results" is not a list of records')
    for number, record in enumerate(records):
        restore_nonfinite(record)
        _check_record(path, number, record)
    _check_sections(path, document)
    table = document.get("summary", {}).get("table", []) if isinstance(document.get("summary"), dict) else []
    for row in table:
        if isinstance(row, dict) and "worst_error_over_budget" in row:
            row["worst_error_over_budget"] = _float_back(row["worst_error_over_budget"])
    return document


def results_document(env, records, summary, timings, warnings):
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "environment": env,
            "summary": summary, "timings": timings, "warnings": warnings, "results": records}
