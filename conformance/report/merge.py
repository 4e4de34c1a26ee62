"""``loss-conformance merge``: the results files of the shards of one run (``run --shard K/N --json``) as the one
results file an unsharded run writes: the same records in the same order, the summary recomputed, the timings
added up (the wall time is the longest shard's). Shards of different runs (another backend, version, oracle,
selection) are refused."""
from ..expected.store import add_cache_stats
from ..verdict.results import summarize_as
from .results_file import ResultsFileError, load_results, results_document

IGNORED_ENVIRONMENT = ("argv",)  # what may differ between the shards of one run


def _shard_of(path, document):
    shard = document.get("shard")
    if not isinstance(shard, dict) or not all(isinstance(shard.get(k), int) for k in ("index", "count", "total")) \
            or not isinstance(shard.get("positions"), list):
        raise ResultsFileError(path, "is not the results file of a shard (run --shard K/N --json)")
    return shard


def _pairs(records):
    """[(case, dtype, records)] in file order."""
    pairs = []
    for record in records:
        key = (record["case"], record["dtype"])
        if not pairs or pairs[-1][0] != key:
            pairs.append((key, []))
        pairs[-1][1].append(record)
    return pairs


def _comparable_environment(document):
    environment = dict(document.get("environment") or {})
    for key in IGNORED_ENVIRONMENT:
        environment.pop(key, None)
    return environment


def _check_same_run(loaded):
    (first_path, first, first_shard), *rest = loaded
    for path, document, shard in rest:
        if (shard["count"], shard["total"]) != (first_shard["count"], first_shard["total"]):
            raise ResultsFileError(path, f"is shard {shard['index']}/{shard['count']} of {shard['total']} pairs, "
                                         f"{first_path} of {first_shard['count']} shards of {first_shard['total']}")
        if _comparable_environment(document) != _comparable_environment(first):
            raise ResultsFileError(path, f"was run in another environment than {first_path} (backend, versions, "
                                         "oracle or options differ)")
    indexes = sorted(shard["index"] for _, _, shard in loaded)
    if indexes != list(range(1, first_shard["count"] + 1)):
        raise ResultsFileError(first_path, f"the shards given are {indexes}, not 1 to {first_shard['count']}")


def _timings(documents):
    timings = {"oracle_s": 0.0, "backend_s": 0.0, "wall_s": 0.0, "cache": add_cache_stats({}, {}), "cases": 0}
    for document in documents:
        part = document.get("timings") or {}
        for key in ("oracle_s", "backend_s"):
            timings[key] += float(part.get(key, 0.0))
        timings["wall_s"] = max(timings["wall_s"], float(part.get("wall_s", 0.0)))
        add_cache_stats(timings["cache"], part.get("cache"))
        timings["cases"] += int(part.get("cases", 0))
    return timings


def _diagnosis(records, cases):
    """The diagnosis of the merged records (run writes it from the cases; merge needs them too), or {}."""
    from .diagnose import explain

    by_id = {case.full_id: case for case in cases or ()}
    selected, seen = [], {}
    for record in records:
        case = by_id.get(record["case"])
        if case is None:
            return {}  # a case the corpus given does not hold: no diagnosis rather than a partial one
        if case.full_id not in seen:
            seen[case.full_id] = len(selected)
            selected.append((case, []))
        dtypes = selected[seen[case.full_id]][1]
        if record["dtype"] not in dtypes:
            dtypes.append(record["dtype"])
    return explain(selected, records)


def merge_results(paths, cases=None):
    """The merged results document of the shard files at ``paths`` (with the diagnosis when ``cases``, the
    loaded corpus of the run, is given); ResultsFileError for anything amiss."""
    loaded = []
    for path in paths:
        document = load_results(path)
        loaded.append((path, document, _shard_of(path, document)))
    _check_same_run(loaded)
    by_position = {}
    for path, document, shard in loaded:
        pairs = _pairs(document["results"])
        if len(pairs) != len(shard["positions"]):
            raise ResultsFileError(path, f"holds {len(pairs)} (case, dtype) pairs for {len(shard['positions'])} "
                                         "positions: an incomplete shard (finish it with --resume)")
        for position, (_, records) in zip(shard["positions"], pairs):
            by_position[position] = records
    total = loaded[0][2]["total"]
    if sorted(by_position) != list(range(total)):
        raise ResultsFileError(loaded[0][0], f"the shards hold {len(by_position)} of the run's {total} pairs")
    records = [record for position in range(total) for record in by_position[position]]
    first = loaded[0][1]
    document = results_document(first.get("environment"), records, summarize_as(records, first.get("summary")),
                                _timings(document for _, document, _ in loaded), first.get("warnings", []))
    document["diagnosis"] = _diagnosis(records, cases)
    return document
