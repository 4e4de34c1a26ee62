"""Streaming the results of a run to disk as they arrive, so that an interrupted run keeps what it finished.

While ``run --json PATH`` runs, each finished (case, dtype) pair is appended to ``PATH.partial`` as one JSON
line and flushed to disk; the complete document replaces PATH atomically at the end and the journal is removed.
``--resume`` reads what an earlier run of the same configuration left (its journal, or else its complete
results file) and runs only the pairs that are missing.
"""
import json
import os
from pathlib import Path

from .results_file import ResultsFileError, json_safe, load_results, restore_nonfinite

JOURNAL_SCHEMA = "loss-conformance/journal"


class ResumeError(Exception):
    """Results that cannot be continued: another configuration, or an unreadable file."""


def journal_path(json_path):
    json_path = Path(json_path)
    return json_path.with_name(json_path.name + ".partial")


def run_key(options, description=None):
    """What must be equal for two runs' results to be merged: the backend (spec, its own name and version, and
    the framework it runs on), device, oracle, tolerances, strictness."""
    import oracle

    description = description or {}
    return {"backend": options.backend, "device": options.device, "oracle_version": oracle.__version__,
            "backend_name": description.get("name"), "backend_version": description.get("version"),
            "framework": description.get("framework"),
            "framework_version": description.get("framework_version", description.get("version")),
            "tolerances": str(options.tolerances or "default"), "strict": options.strict,
            "shard": list(options.shard) if getattr(options, "shard", None) else None}


class Journal:
    """An append-only JSON-lines file: a header line with the run key, then one line per finished pair."""

    def __init__(self, path, key):
        self.path, self.key, self._file = Path(path), key, None

    def open(self, keep_existing):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The file stays open across the run's appends; close() ends it.
        if keep_existing and self.path.exists():
            _cut_torn_tail(self.path)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            return self
        self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        self._write({"schema": JOURNAL_SCHEMA, "key": self.key})
        return self

    def _write(self, entry):
        self._file.write(json.dumps(json_safe(entry), allow_nan=False, default=str) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())  # a pair is kept only once it is on disk

    def append(self, case_id, dtype, records, timings):
        self._write({"case": case_id, "dtype": dtype, "records": records, "timings": timings})

    def close(self, remove):
        if self._file is not None:
            self._file.close()
            self._file = None
        if remove:
            self.path.unlink(missing_ok=True)


def _cut_torn_tail(path):
    """Truncate a last line that an interruption cut short (no newline at its end), so that what is appended
    next starts a line of its own: otherwise it would join the torn line and be lost with it."""
    with open(path, "rb+") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return
        position = size
        while position > 0:  # back to the newline that ends the last complete line
            step = min(65536, position)
            file.seek(position - step)
            newline = file.read(step).rfind(b"\n")
            if newline >= 0:
                position = position - step + newline + 1
                break
            position -= step
        file.truncate(position)


def _entry_records(entry):
    """(case, dtype, records) of a journal line, or None for a line that is not one (cut short, or damaged)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("case"), str) or \
            not isinstance(entry.get("dtype"), str) or not isinstance(entry.get("records"), list) or \
            not all(isinstance(record, dict) for record in entry["records"]):
        return None
    return entry["case"], entry["dtype"], [restore_nonfinite(record) for record in entry["records"]]


def _journal_entries(path, key):
    """{(case, dtype): records} from a journal; a line cut short by an interruption (or otherwise unreadable) is
    ignored, and its pair runs again."""
    try:
        lines = Path(path).read_bytes().decode("utf-8", "replace").splitlines()
    except OSError as error:
        raise ResumeError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        header = json.loads(lines[0]) if lines else {}
    except (ValueError, RecursionError):
        header = {}
    if not isinstance(header, dict) or header.get("schema") != JOURNAL_SCHEMA:
        raise ResumeError(f"{path}: is not a loss-conformance journal; remove it to start afresh")
    if header.get("key") != key:
        raise ResumeError(f"{path}: was written by another configuration ({header.get('key')}), not by this one "
                          f"({key}); remove it or write to another --json path")
    done = {}
    for line in lines[1:]:
        try:
            found = _entry_records(json.loads(line))
        except (ValueError, RecursionError):
            found = None
        if found is not None:
            done[found[:2]] = found[2]
    return done


def _results_entries(path, key):
    """{(case, dtype): records} from a complete results file of the same configuration."""
    try:
        document = load_results(path)
    except ResultsFileError as error:
        raise ResumeError(str(error)) from None
    environment = document.get("environment", {})
    for number, record in enumerate(document["results"]):
        if not isinstance(record.get("case"), str) or not isinstance(record.get("dtype"), str):
            raise ResumeError(f'{path}: record {number} has no "case" and "dtype" strings')
    backend = environment.get("backend") if isinstance(environment.get("backend"), dict) else {}
    found = {"backend": environment.get("spec"), "device": environment.get("device"),
             "oracle_version": environment.get("oracle_version"), "backend_name": backend.get("name"),
             "backend_version": backend.get("version"), "framework": backend.get("framework"),
             "framework_version": backend.get("framework_version", backend.get("version"))}
    wanted = {name: key[name] for name in found}
    if found != wanted:
        raise ResumeError(f"{path}: holds results of another configuration ({found}), not of this one ({wanted})")
    done = {}
    for record in document["results"]:
        done.setdefault((record["case"], record["dtype"]), []).append(record)
    return done


def previous_results(json_path, key):
    """The finished pairs an interrupted or earlier run left at json_path: its journal first, else its results."""
    partial = journal_path(json_path)
    if partial.exists():
        return _journal_entries(partial, key)
    if Path(json_path).exists():
        return _results_entries(json_path, key)
    return {}
