"""`python -m conformance.cli.manifest [--write]`: check or regenerate the committed manifest of the default corpus
(cases/manifest.json; what it pins and why: conformance/expected/manifest.py, docs/robustness.md).

    python -m conformance.cli.manifest           # exit 1 when the inputs part is stale (seconds)
    python -m conformance.cli.manifest --write   # regenerate both parts after changing the corpus, the generator
                                                 # or the oracle (certifies the corpus afresh: about 3 minutes)
    loss-conformance run --no-cache              # certifies every result afresh and compares it with the
                                                 # manifest: "N certified here matched it", or a WARNING
"""
import argparse
import json
import sys

from ..corpus.resources import write_atomic
from ..expected.manifest import MANIFEST_PATH


def build_inputs():
    """{inputs key: digest} of every case of the default corpus, large tier included, generated afresh."""
    from ..corpus.casefile import load_cases
    from ..expected.store import PINNED_CHARS, inputs_key, pack_entry
    from ..inputs.generate import make_inputs

    return dict(sorted((inputs_key(case)[:PINNED_CHARS], pack_entry(make_inputs(case))[1]) for case in load_cases()))


def build_results():
    """{result key: content digest} of every result that runs of the default corpus and its large tier certify,
    afresh (no cache) in this process: torch, and the torch reference of the extended contract, which runs the
    extension cases torch does not offer (conformance/backends/reference.py)."""
    from ..expected import store
    from ..run.session import RunOptions, Session

    store.recording = {}
    try:
        for backend in ("torch", "conformance.backends.reference"):
            Session(RunOptions(backend=backend, jobs=0, cache_dir=None, include_tags=("large",),
                               determinism=False)).run()
        return dict(sorted(store.recording.items()))
    finally:
        store.recording = None


def build_manifest(results=None):
    """The manifest of the default corpus as it is now (``results``: those of the committed file, else built)."""
    import oracle

    from ..inputs.generate import GENERATOR_VERSION

    inputs = build_inputs()
    results = build_results() if results is None else results
    return {"generator": GENERATOR_VERSION, "oracle": oracle.__version__, "cases": len(inputs),
            "results_count": len(results), "inputs": inputs, "results": results}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write cases/manifest.json from the corpus as it is")
    args = parser.parse_args(argv)
    if args.write:
        current = build_manifest()
        write_atomic(MANIFEST_PATH, json.dumps(current, indent=0, sort_keys=True) + "\n")
        print(f"wrote {MANIFEST_PATH}: {current['cases']} cases, {current['results_count']} results")
        return 0
    committed = json.loads(MANIFEST_PATH.read_text()) if MANIFEST_PATH.is_file() else {"inputs": {}}
    current = {"inputs": build_inputs(), "cases": None}
    current["cases"] = len(current["inputs"])
    added = set(current["inputs"]) - set(committed["inputs"])
    gone = set(committed["inputs"]) - set(current["inputs"])
    changed = {k for k in set(current["inputs"]) & set(committed["inputs"])
               if current["inputs"][k] != committed["inputs"][k]}
    if added or gone or changed:
        print(f"cases/manifest.json is stale: {len(added)} cases added, {len(gone)} gone, {len(changed)} changed; "
              "run python -m conformance.cli.manifest --write")  # results: `run --no-cache` compares them
        return 1
    print(f"cases/manifest.json is current: {current['cases']} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
