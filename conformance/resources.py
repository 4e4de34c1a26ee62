"""Where the data the suite ships lives: the corpus (``cases/``: case files, schema, budgets, expected deviations)
and the documents that reports link to (``docs/``). In a source checkout or an editable install they are the
repository's own folders; in an installed wheel they are package data under ``conformance/_data/``
(pyproject.toml maps the folders there), read through importlib.resources."""
import importlib.resources
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parent.parent
MARKERS = {"cases": "schema.json", "docs": "spec-notes.md"}  # a file that says the folder is ours


def data_path(name):
    """The folder of shipped data ``name`` ("cases" or "docs") as a filesystem path."""
    source = SOURCE_ROOT / name
    if (source / MARKERS[name]).is_file():
        return source
    return Path(str(importlib.resources.files("conformance") / "_data" / name))
