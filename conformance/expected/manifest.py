"""The committed manifest of the default corpus (cases/manifest.json): the content digest (expected/store.py: SHA-256
of the arrays' names, dtypes, shapes and bytes, first 128 bits) of every case's generated inputs and of every
certified result a run of the corpus uses (torch's, and the extension cases of the torch reference), large tier
included, so that a cached copy is used only when it is exactly what the generator and the oracle make. `python -m conformance.cli.manifest [--write]` checks or regenerates it.

Inputs are bit-identical on every machine (a seeded generator), and certified results are canonical (the same
bytes from either engine: oracle/_canonical.py), so one manifest holds for all machines and engines.
"""
import json

from ..corpus.casefile import CASES_DIR

MANIFEST_PATH = CASES_DIR / "manifest.json"
_LOADED = {}


def load_manifest(path=None):
    """{"inputs": {key: digest}, "results": {key: digest}} of the committed manifest (empty where the file is
    absent or unreadable: nothing is pinned then, and every entry is still digest-verified)."""
    path = path or MANIFEST_PATH
    if path not in _LOADED:
        try:
            document = json.loads(path.read_text())
            _LOADED[path] = {"inputs": dict(document["inputs"]), "results": dict(document.get("results", {}))}
        except (OSError, ValueError, KeyError, TypeError):
            _LOADED[path] = {"inputs": {}, "results": {}}
    return _LOADED[path]
