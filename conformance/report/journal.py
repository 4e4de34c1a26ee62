"""Streaming the results of a run to disk as they arrive, so that an interrupted run keeps what it finished.

While ``run --json PATH`` runs, each finished (case, dtype) pair is appended to ``PATH.partial`` as one JSON
line and flushed to disk; the complete document replaces PATH atomically at the end and the journal is removed.
``--resume`` reads what an earlier run of the same configuration left (its journal, or else its complete
results file) and runs only the pairs that are missing.
"""
import json
import os
from importlib import metadata
from pathlib import Path

from .results_file import ResultsFileError, json_safe, load_results, restore_nonfinite

JOURNAL_SCHEMA = "loss-conformance/journal"


class ResumeError(Exception):
    """Results that cannot be continued: another configuration, or an unreadable file."""


def journal_path(json_path):
    json_path = Path(json_path)
    return json_path.with_name(json_path.name + ".partial")


def run_key(options):
    """What must be equal for two runs' results to be merged: backend, device, versions, tolerances, strictness."""
    import oracle

    def version(distribution):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return None

    return {"backend": options.backend, "device": options.device, "oracle_version": oracle.__version__,
            "torch": version("torch"), "tolerances": str(options.tolerances or "default"),
            "strict": options.strict}


class Journal:
    """An append-only JSON-lines file: a header line with the run key, then one line per finished pair."""

    def __init__(self, path, key):
        self.path, self.key, self._file = Path(path), key, None

    def open(self, keep_existing):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The file stays open across the run's appends; close() ends it.
        if keep_existing and self.path.exists():
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


def _journal_entries(path, key):
    """{(case, dtype): records} from a journal; a last line cut short by the interruption is ignored."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    if header.get("schema") != JOURNAL_SCHEMA:
        raise ResumeError(f"{path}: is not a loss-conformance journal; remove it to start afresh")
    if header.get("key") != key:
        raise ResumeError(f"{path}: was written by another configuration ({header.get('key')}), not by this one "
                          f"({key}); remove it or write to another --json path")
    done = {}
    for line in lines[1:]:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            break
        done[(entry["case"], entry["dtype"])] = [restore_nonfinite(record) for record in entry["records"]]
    return done


def _results_entries(path, key):
    """{(case, dtype): records} from a complete results file of the same configuration."""
    try:
        document = load_results(path)
    except ResultsFileError as error:
        raise ResumeError(str(error)) from None
    environment = document.get("environment", {})
    found = {"backend": environment.get("spec"), "device": environment.get("device"),
             "oracle_version": environment.get("oracle_version"),
             "torch": environment.get("versions", {}).get("torch")}
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
