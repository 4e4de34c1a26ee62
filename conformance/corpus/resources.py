"""Where the data the suite ships lives: the corpus (``cases/``: case files, schema, budgets, expected deviations)
and the documents that reports link to (``docs/``). In a source checkout or an editable install they are the
repository's own folders; in an installed wheel they are package data under ``conformance/_data/``
(pyproject.toml maps the folders there), read through importlib.resources. And the one way the suite writes a
file (a report, a store entry, a generated case file): atomically.
"""
import importlib.resources
import os
import tempfile
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2]
MARKERS = {"cases": "schema.json", "docs": "spec-notes.md"}  # a file that says the folder is ours


def data_path(name):
    """The folder of shipped data ``name`` ("cases" or "docs") as a filesystem path."""
    source = SOURCE_ROOT / name
    if (source / MARKERS[name]).is_file():
        return source
    return Path(str(importlib.resources.files("conformance") / "_data" / name))


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
            # A lone surrogate (from a backend's message) is written as its escape, not a crash after the run.
            file.write(text if isinstance(text, bytes) else text.encode("utf-8", "backslashreplace"))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
