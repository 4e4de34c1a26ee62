"""The tables of docs/tolerances.md, "Measured": per function and dtype, the worst error over its budget and the
loosest accuracy grade of torch under each CPU capability and of each correct design of
conformance/mutants/designs.py, on the default corpus and the large tier, for every case and for the long rows.
One backend per process (ATEN_CPU_CAPABILITY is read at torch's import).

    python benchmarks/order_margins.py                      # every backend, Markdown on stdout
    python benchmarks/order_margins.py --backend torch@avx2 --backend pairwise
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

DESIGNS = ["sequential", "lanes_4", "lanes_8", "lanes_16", "pairwise", "tiles_1024", "fused", "stored_gradient",
           "in_place", "float32_loss"]
CROSS_ENTROPY_ONLY = ("fused", "stored_gradient", "in_place", "float32_loss")
CAPABILITIES = ["default", "avx2", "avx512"]


def _spec(name):
    """(--backend spec, environment, whether torch's declared deviations apply) of a table column."""
    if name.startswith("torch@"):
        return "torch", dict(os.environ, ATEN_CPU_CAPABILITY=name.split("@")[1]), True
    return f"conformance.mutants.designs:{name}", dict(os.environ), False


def _records(name):
    spec, environment, declared = _spec(name)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "results.json")
        command = [sys.executable, "-m", "conformance", "run", "--backend", spec, "--include-tag", "large", "--quiet",
                   "--json", path] + ([] if declared else ["--xfails"])
        if name in CROSS_ENTROPY_ONLY:
            command += ["--function", "cross_entropy"]
        subprocess.run(command, env=environment, capture_output=True, check=False)
        document = json.load(open(path))
    return document["results"], document["summary"]["judged_by"]["grades"]


def _long(record):
    """A check on rows of 1024 classes or more: the block-crossing rows and the large tier."""
    case = record["case"].split("/", 1)[1]
    return case.startswith(("blocks-", "lm-")) or "large" in record.get("tags", ())


def measure(name):
    """{view: {(function, dtype): (worst error / budget, loosest grade, failures)}} of one column, for every case
    ("all") and for the long rows ("long")."""
    records, ladder = _records(name)
    views = {"all": {}, "long": {}}
    for record in records:
        if record["status"] not in ("passed", "failed", "xpassed"):
            continue
        for view in ("all", "long") if _long(record) else ("all",):
            cell = views[view].setdefault((record["function"], record["dtype"]), [0.0, -1, 0])
            if record.get("error_u") is not None and record.get("budget_u"):
                cell[0] = max(cell[0], record["error_u"] / record["budget_u"])
            if record.get("grade"):
                cell[1] = max(cell[1], ladder.index(record["grade"]) if record["grade"] in ladder else len(ladder))
            cell[2] += record["status"] != "passed"
    return {view: {key: (ratio, (ladder + ["beyond"])[rank] if rank >= 0 else None, failures)
                   for key, (ratio, rank, failures) in cells.items()} for view, cells in views.items()}


def table(columns, measured, view):
    keys = sorted({key for name in columns for key in measured[name][view]})
    lines = ["| function | dtype | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for function, dtype in keys:
        cells = []
        for name in columns:
            ratio, grade, failures = measured[name][view].get((function, dtype), (None, None, 0))
            text = "" if ratio is None else f"{ratio:.2f}" + (f" {grade}" if grade else "")
            cells.append(text + (f" **{failures} failed**" if failures else ""))
        lines.append(f"| {function} | {dtype} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", help="torch@CAPABILITY or a design name (default: all)")
    args = parser.parse_args()
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    offered = [c for c in CAPABILITIES if c == "default" or f" {c if c != 'avx512' else 'avx512f'}" in flags]
    columns = args.backend or [f"torch@{c}" for c in offered] + DESIGNS
    measured = {name: measure(name) for name in columns}
    for view, title in (("all", "Every case"), ("long", "Rows of 1024 classes or more (blocks-*, the large tier)")):
        print(f"{title}: worst error / budget, and the loosest grade (float32 and float64)\n")
        print(table(columns, measured, view) + "\n")


if __name__ == "__main__":
    main()
