"""The results file (``run --json``): atomic writes, JSON with non-finite floats spelled out, and reading it
back with validation. docs/results.md describes the document.
"""
import json
import math
import os
import tempfile
from pathlib import Path

SCHEMA = "loss-conformance/results"
SCHEMA_VERSION = 1


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path, text):
    """Write text (or bytes) so that a reader sees the old file or the complete new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 would make reports unreadable to others
        with os.fdopen(handle, "wb") as file:
            file.write(text if isinstance(text, bytes) else text.encode("utf-8"))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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


def load_results(path):
    """A results document (``run --json``) with "inf"/"nan" strings turned back into floats.

    Raises ResultsFileError for a file that is missing, not JSON, or not a results document of a known version.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ResultsFileError(path, f"cannot be read ({error.strerror or error})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsFileError(path, f"is not JSON ({error})") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ResultsFileError(path, 'is not a loss-conformance results file (expected "schema": '
                                     '"loss-conformance/results", as written by run --json)')
    version = document.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise ResultsFileError(path, f"has schema_version {version!r}; this version reads 1 to {SCHEMA_VERSION}")
    records = document.get("results")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ResultsFileError(path, '"results" is not a list of records')
    for record in records:
        restore_nonfinite(record)
    table = document.get("summary", {}).get("table", []) if isinstance(document.get("summary"), dict) else []
    for row in table:
        if isinstance(row, dict) and "worst_error_over_budget" in row:
            row["worst_error_over_budget"] = _float_back(row["worst_error_over_budget"])
    return document


def results_document(env, records, summary, timings, warnings):
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "environment": env,
            "summary": summary, "timings": timings, "warnings": warnings, "results": records}
