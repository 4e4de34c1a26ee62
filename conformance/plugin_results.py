"""The plugin's results file (``pytest --loss-json PATH``): the records of the conformance tests that ran, in the
order of the selection, written as ``loss-conformance run --json`` writes them. Under pytest-xdist every worker
writes what it ran to ``PATH.<worker>.part`` at its session's end and the controller, which finishes last,
joins the parts and removes them."""
import json
from pathlib import Path

from .huge.cases import case_ids
from .report.results_file import json_safe, restore_nonfinite, results_document, write_json


def _part_path(json_path, worker):
    return Path(f"{json_path}.{worker}.part")


def _write_part(path, ran):
    lines = [json.dumps(json_safe({"case": case, "dtype": dtype, "records": records, "timings": timings}),
                        allow_nan=False, default=str) for (case, dtype), (records, timings) in ran.items()]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _read_parts(json_path):
    ran = {}
    for path in sorted(Path(json_path).parent.glob(f"{Path(json_path).name}.*.part")):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            ran[(entry["case"], entry["dtype"])] = ([restore_nonfinite(r) for r in entry["records"]],
                                                    entry["timings"])
        path.unlink()
    return ran


def finish_results(plugin, config):
    """At a session's end: a worker writes its part; the controller (or a plain run) writes the results file."""
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker is not None:
        _write_part(_part_path(plugin.json_path, worker), plugin.ran)
        return
    ran = dict(plugin.ran)
    ran.update(_read_parts(plugin.json_path))  # the workers' parts, under xdist
    session = plugin.session
    pairs = [(case.full_id, dtype) for case, dtypes in session.selected for dtype in dtypes
             if (case.full_id, dtype) in ran]
    records = [record for pair in pairs for record in ran[pair][0]]
    timings = {key: sum(ran[pair][1].get(key, 0.0) for pair in pairs) for key in ("oracle_s", "backend_s")}
    timings["cases"] = len({case for case, _ in pairs})
    document = results_document(session.environment(), records, session.summary(records), timings,
                                session.warnings(case_ids()))
    write_json(plugin.json_path, document)
