"""The mutation score: run the corpus against every mutant until a check fails (killed) or the corpus ends
(survived), and against torch itself, which must show no unexpected failure (no false alarm).

Mutants that wrap torch inherit torch's declared deviations (cases/xfails/torch.yaml), not strictly: a
mutant that happens to turn a torch deviation into a pass is not what is measured. A mutant namespace that
says ``DEVIATIONS`` (the fused-kernel family: none) runs with those instead. Each mutant runs only the
cases of the functions it replaces, in-process (they are our own code: no isolation needed).
"""
from dataclasses import dataclass, field, replace

from ..verdict.deviations import default_deviation_paths
from ..verdict.results import FAILING
from ..run.session import RunOptions, Session
from . import catalog


@dataclass
class MutantResult:
    name: str
    family: str
    description: str
    killed: bool = False
    first_kill: dict = field(default_factory=dict)  # case, dtype, check, message of the first failed check
    checks_run: int = 0


def _first_failure(options):
    """(first failed record or None, checks run before it)."""
    results, checks = Session(options).results(), 0
    try:
        for result in results:
            for record in result.records:
                checks += 1
                if record["status"] == "failed":
                    return record, checks
    finally:
        results.close()  # stops the run loop at the first kill
    return None, checks


def run_mutant(mutant, base_options):
    namespace = mutant.build()
    deviations = getattr(namespace, "DEVIATIONS", None)  # None: torch's, for the mutants that wrap torch
    options = replace(base_options, backend=mutant.spec, functions=tuple(namespace.REPLACED), jobs=0,
                      xfail_paths=default_deviation_paths("torch") if deviations is None else deviations,
                      strict=False, conventions="torch", determinism=True)  # torch's API and determinism too
    failure, checks = _first_failure(options)
    result = MutantResult(mutant.name, mutant.family, (namespace.__doc__ or "").strip(), failure is not None,
                          checks_run=checks)
    if failure:
        result.first_kill = {key: failure.get(key) for key in ("case", "dtype", "check", "message")}
    return result


def torch_false_alarms(base_options):
    """The unexpected failures of torch itself on the same corpus (should be none)."""
    records, _ = Session(replace(base_options, backend="torch")).run()
    return [r for r in records if r["status"] in FAILING], len(records)


def design_false_alarms(base_options, name):
    """(unexpected failures, checks) of one correct design of mutants/designs.py on the functions it implements,
    with no declared deviation (should be none); the large tier too when the options include it."""
    from .designs import CATALOG

    namespace = CATALOG[name]()
    options = replace(base_options, backend=f"conformance.mutants.designs:{name}",
                      functions=tuple(namespace.REPLACED), xfail_paths=())
    records, _ = Session(options).run()
    return [r for r in records if r["status"] in FAILING], len(records)


def mutation_score(results):
    killed = sum(result.killed for result in results)
    return {"killed": killed, "total": len(results), "score": killed / len(results) if results else None}


def run_mutation(base_options=None, names=None, on_result=lambda result: None):
    """MutantResults for the named mutants (default: all), in catalog order."""
    base_options = base_options or RunOptions()
    mutants = catalog()
    unknown = sorted(set(names or ()) - set(mutants))
    if unknown:
        raise ValueError(f"unknown mutants {unknown}; known: {', '.join(mutants)}")
    results = []
    for mutant in mutants.values():
        if names and mutant.name not in names:
            continue
        results.append(run_mutant(mutant, base_options))
        on_result(results[-1])
    return results
