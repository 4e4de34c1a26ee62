"""The layout rules of docs/architecture.md: no import cycle between the suite's modules (lazy imports inside
functions included: they are cycles all the same), the oracle imports nothing of the runner or of any framework,
and no module grows past the size a reader can hold."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("conformance", "oracle")
MAX_MODULE_LINES = 400
FRAMEWORKS = ("torch", "jax", "paddle", "mlx", "onnxruntime", "tensorflow")


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def imported_names(name, path):
    """Every module this one imports, anywhere in its body, as absolute dotted names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from . import x` imports module x
    return found


def import_graph():
    known = modules()
    graph = {}
    for name, path in known.items():
        targets = set()
        for imported in imported_names(name, path):
            while imported and imported not in known:  # `pkg.mod.attr` -> `pkg.mod`
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)  # a package's own __init__ is not a cycle partner of its modules
        graph[name] = targets
    return graph


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_modules():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(n for n in modules() if n.startswith("oracle")))
def test_the_oracle_imports_neither_the_runner_nor_a_framework(name):
    imported = {n.split(".")[0] for n in imported_names(name, modules()[name])}
    forbidden = imported & {"conformance", *FRAMEWORKS}
    assert not forbidden, f"{name} imports {sorted(forbidden)}"


def test_no_module_is_longer_than_the_limit():
    lengths = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    assert not {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES}


def test_the_wheel_lists_every_package_and_every_folder_of_the_corpus():
    import tomllib

    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    code = {module_name(path.parent / "__init__.py") for package in PACKAGES
            for path in (ROOT / package).rglob("__init__.py")}
    folders = [ROOT / "cases", *(d for d in (ROOT / "cases").rglob("*") if d.is_dir())]
    data = {".".join(("conformance._data.cases", *folder.relative_to(ROOT / "cases").parts))
            for folder in folders if any(folder.glob("*.yaml"))}
    listed = set(settings["packages"])
    assert code | data | {"conformance._data.docs"} <= listed, sorted((code | data) - listed)
    assert all(name in settings["package-data"] for name in data)


# The pipeline's stages, in data-flow order (docs/architecture.md): a module imports only from its own stage or
# an earlier one, so that a stage can be read, and replaced, knowing only what comes before it.
LAYERS = ("spec", "inputs", "corpus", "expected", "backends", "verdict", "run")
TOP = ("report", "fuzz", "huge", "mutants", "cli", "plugin", "plugin_results", "__main__")  # the entry points, on top


def stage(name):
    """The index of a conformance module's stage in LAYERS (len(LAYERS) for the entry points), or None."""
    parts = name.split(".")
    if parts[0] != "conformance" or len(parts) == 1:
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else len(LAYERS) if parts[1] in TOP else None


def test_every_module_belongs_to_a_stage():
    assert [name for name in modules() if name.startswith("conformance.") and stage(name) is None] == []


def test_each_stage_imports_only_from_itself_and_the_stages_before_it():
    wrong = [(name, target) for name, targets in import_graph().items() for target in targets
             if stage(name) is not None and stage(target) is not None and stage(target) > stage(name)]
    assert wrong == []


def test_the_stage_order_finder_finds_a_forward_import():
    assert stage("conformance.spec.features") < stage("conformance.verdict.checks") < stage("conformance.cli")


def test_the_package_reads_as_the_pipeline_with_few_top_level_modules():
    top = sorted(path.name for path in (ROOT / "conformance").glob("*.py"))
    assert len(top) <= 12, top
    assert {path.name for path in (ROOT / "conformance").iterdir() if path.is_dir() and path.name != "__pycache__"
            and path.name != "_data"} == set(LAYERS) | {"report", "fuzz", "huge", "mutants", "cli"}


def test_a_keyword_of_one_function_is_named_in_few_modules():
    """log_target is kl_div's: its record, and the fuzzer's strategies and torch rules (backends and mutants
    aside, which implement the functions)."""
    naming = sorted(name for name, path in modules().items() if name.startswith("conformance.")
                    and not name.startswith(("conformance.backends", "conformance.mutants"))
                    and "log_target" in path.read_text(encoding="utf-8"))
    assert len(naming) <= 3, naming
