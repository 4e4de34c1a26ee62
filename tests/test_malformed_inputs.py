"""Bad input gets a clear error and never a wrong verdict (issue #18).

The first part is a seeded mutator: it takes real case files, expected-deviation files, the budget file and a
real results file, damages them in the ways a new user (or a bad tool) would (keys deleted, duplicated or
renamed, types swapped, NaN/inf/huge numbers, deep nesting, aliases, bytes that are not UTF-8, truncation, huge
matrices and shapes, ...), and gives each document to the real command line in this process. Each must end
with exit status 2 and one "error:" line naming the file (and the field where the damage is inside a case), or,
where the damage happened to leave a valid document, be accepted, and then pass an independent check that the
schema, the budget rules and the duplicate-key rule hold; never a traceback, never a hang (each document is
timed, under an alarm), never unbounded memory. docs/robustness.md gives the figures of a run (set
LC_ROBUSTNESS_FIGURES=path to write them as JSON).

The second part holds one regression test per defect of the issue.
"""
import copy
import json
import math
import os
import random
import re
import resource
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml
from case_texts import SOFTMAX_DEFAULT_ONLY

from conformance.corpus import casefile
from conformance.corpus.casefile import (
    CASES_DIR,
    SCHEMA_PATH,
    CaseFileError,
    case_files,
    load_file,
)
from conformance.cli import main

SEED = 18
DOCUMENTS = {"case": 300, "xfail": 200, "tolerance": 200, "results": 250}
REPORTED_RESULTS = 6  # of the results documents, also given to `report` (it draws plots: slow)
SLOW_S = 5.0  # a document that takes longer counts as a hang
ALARM_S = 30.0  # and one still running then is stopped
MEMORY_GROWTH_KB = 600_000  # the most the peak resident size may grow over all documents
REPO = Path(__file__).resolve().parent.parent

TINY_CASE = """\
function: softmax
dtypes: [float64]
cases:
  - id: rows
    kwargs: {dim: 1}
    inputs: {input: {shape: [2, 3]}}
"""
BACKEND = '''\
import torch


class Namespace:  # softmax that is 1 % off in float32, right in float64
    @staticmethod
    def softmax(input, dim=None, **kwargs):
        return torch.softmax(input, dim) * (1.01 if input.dtype == torch.float32 else 1.0)


class Hostile:  # what a backend may say: markup, control characters, a lone surrogate
    @staticmethod
    def softmax(input, dim=None, **kwargs):
        raise RuntimeError("bad <script>alert(1)</script> \\x07\\x1b[31m | `tick` \\ud800 end")


def describe():
    return {"name": "<script>x</script>\\x07|name"}
'''
RESULTS_CASES = SOFTMAX_DEFAULT_ONLY
RESULTS_XFAILS = """\
entries:
  - id: "softmax/columns"
    dtypes: [float32]
    checks: ["value", "grad_input.value"]
    reason: "a deviation declared for this test"
"""


# --- the mutator ----------------------------------------------------------------------------------------------

ODD_VALUES = [None, True, False, "", "text", "<script>", 0, -1, 3, 1.5, -0.0, [], {}, [1, 2], {"a": 1}, [[[]]],
              "\u2028", "nan", "1e999"]
ODD_NUMBERS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 0, -1, 10**30, 2**63, -(2**63), 0.5, 1.0]
KEY_NAMES = ["id", "inputs", "kwargs", "shape", "seed", "tolerance", "factor", "matrix", "axes", "entries",
             "budgets", "overrides", "results", "status", "case", "environment", "x", "<<", 7, None]


def _paths(value, prefix=()):
    """Every (path, value) in a document, containers included."""
    yield prefix, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


def _get(document, path):
    for part in path:
        document = document[part]
    return document


def _set(document, path, value):
    if not path:
        return value
    _get(document, path[:-1])[path[-1]] = value
    return document


def _structural(rng, document, kind):
    """One change to the decoded document: (new document, the path it touched)."""
    entries = list(_paths(document))
    path, value = rng.choice(entries)
    parents = [(p, v) for p, v in entries if isinstance(v, (dict, list)) and v]
    operation = rng.choice(["delete", "swap", "number", "rename", "nest", "duplicate-entry", "shape", "matrix",
                            "wrap", "numbers-everywhere"])
    if operation == "delete" and parents:
        path, parent = rng.choice(parents)
        key = rng.choice(list(parent)) if isinstance(parent, dict) else rng.randrange(len(parent))
        del parent[key]
        return document, path + (key,)
    if operation == "swap":
        return _set(document, path, copy.deepcopy(rng.choice(ODD_VALUES))), path
    if operation == "number":
        numbers = [(p, v) for p, v in entries if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if numbers:
            path, _ = rng.choice(numbers)
            return _set(document, path, rng.choice(ODD_NUMBERS)), path
    if operation == "rename":
        mappings = [(p, v) for p, v in entries if isinstance(v, dict) and v]
        if mappings:
            path, mapping = rng.choice(mappings)
            key = rng.choice(list(mapping))
            mapping[rng.choice(KEY_NAMES)] = mapping.pop(key)
            return document, path
    if operation == "nest":
        nested = copy.deepcopy(value)
        for _ in range(rng.choice([3, 20, 40, 200])):
            nested = [nested] if rng.random() < 0.5 else {"k": nested}
        return _set(document, path, nested), path
    if operation == "duplicate-entry" and kind in ("case", "xfail", "results"):
        key = {"case": "cases", "xfail": "entries", "results": "results"}[kind]
        items = document.get(key) if isinstance(document, dict) else None
        if isinstance(items, list) and items:
            items.append(copy.deepcopy(rng.choice(items)))
            return document, (key, len(items) - 1)
    if operation == "shape" and kind == "case":
        shapes = [(p, v) for p, v in entries if p and p[-1] == "shape"]
        if shapes:
            path, _ = rng.choice(shapes)
            shape = rng.choice([[3000, 3000], [300, 300], [2**22 + 1], [1] * 20, [10**12, 0], [-1, 2], [2.0, 3],
                                [8, 131072], [4096, 64], [2**62, 2**62]])
            return _set(document, path, shape), path
    if operation == "matrix" and kind == "case" and isinstance(document, dict) and isinstance(document.get("cases"), list):
        axis = list(range(rng.choice([40, 80, 200])))
        axes = {name: list(axis) for name in rng.sample(["dim", "reduction", "a", "b", "c"], rng.choice([2, 3, 4]))}
        document["cases"].append({"matrix": {"id": "-".join(f"{{{n}}}" for n in axes), "axes": axes,
                                             "base": {"inputs": {"input": {"shape": [2, 3]}}}}})
        return document, ("cases", len(document["cases"]) - 1)
    if operation == "wrap":
        return rng.choice([[document], {"document": document}, "text", 42, None]), ()
    if operation == "numbers-everywhere":
        numbers = [(p, v) for p, v in entries if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for path, _ in numbers[: rng.randrange(1, 6)]:
            _set(document, path, rng.choice([math.nan, math.inf]))
        return document, numbers[0][0] if numbers else ()
    return _set(document, path, rng.choice(ODD_VALUES)), path


LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n"
                 for i in range(9))


def _textual(rng, text):
    """One change to the text or bytes of a document: bytes."""
    data = text.encode("utf-8")
    operation = rng.choice(["not-utf8", "truncate", "duplicate-key", "laughs", "recursive-alias", "control",
                            "huge-int", "huge-file", "tab", "aliased-axes", "flow-duplicate", "bom-and-crlf"])
    if operation == "not-utf8":
        at = rng.randrange(len(data) + 1)
        return data[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80", b"\xfe\xff"]) + data[at:]
    if operation == "truncate":
        return data[: rng.randrange(len(data) + 1)]
    if operation == "duplicate-key":
        lines = text.splitlines(keepends=True)
        candidates = [i for i, line in enumerate(lines) if re.match(r"^\s*[A-Za-z_][A-Za-z_0-9]*: \S", line)]
        if candidates:
            i = rng.choice(candidates)
            lines.insert(i + 1, lines[i] if rng.random() < 0.5 else re.sub(r": .*", ": 1", lines[i]))
            return "".join(lines).encode("utf-8")
    if operation == "flow-duplicate":
        match = re.search(r"\{([A-Za-z_]+): ([^,{}]+)", text)
        if match:
            return (text[: match.end()] + f", {match.group(1)}: {match.group(2)}" + text[match.end():]).encode()
    if operation == "laughs":
        return (text.rstrip("\n") + "\n" + LAUGHS).encode("utf-8") if text.startswith(("function", "budgets",
                                                                                      "entries", "backend")) \
            else (LAUGHS + text).encode("utf-8")
    if operation == "recursive-alias":
        return (text + "\nloop: &loop [a, *loop]\n").encode("utf-8")
    if operation == "control":
        at = rng.randrange(len(text) + 1)
        return (text[:at] + rng.choice(["\x00", "\x07", "\x1b", "\ufffe", "\x85"]) + text[at:]).encode("utf-8")
    if operation == "huge-int":
        digits = rng.choice(["9" * 5000, "1" + "0" * 400, "0x" + "f" * 3000, "1" + ":0" * 3000])
        replaced, count = re.subn(r"(?<=: )-?\d+(?=\s*$)", digits, text, count=1, flags=re.MULTILINE)
        return (replaced if count else text + f"\nseed: {digits}\n").encode("utf-8")
    if operation == "huge-file":
        return data + b"\n# " + b"x" * (casefile.MAX_FILE_BYTES + 10) + b"\n"
    if operation == "tab":
        return text.replace("  ", "\t", 1).encode("utf-8")
    if operation == "aliased-axes":  # the 350-byte matrix: four aliased 40-value axes
        axis = "[" + ", ".join(str(i) for i in range(40)) + "]"
        return (text.rstrip("\n") + "\n  - matrix:\n      id: '{a}-{b}-{c}-{d}'\n"
                "      base: {inputs: {input: {shape: [2]}}}\n"
                f"      axes: {{a: &v {axis}, b: *v, c: *v, d: *v}}\n").encode("utf-8")
    if operation == "bom-and-crlf":
        return b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8")
    return data


def _dump(document, kind):
    if kind == "results":
        return json.dumps(document, indent=1, allow_nan=True, default=str)
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def mutated(rng, source, kind):
    """(bytes, the path a structural change touched or None) of one mutated document."""
    document, where = copy.deepcopy(source), None
    for _ in range(rng.choice([1, 1, 2, 3])):
        if rng.random() < 0.6:
            try:
                document, where = _structural(rng, document, kind)
            except (KeyError, IndexError, TypeError):
                continue
    text = _dump(document, kind)
    if kind == "results" and rng.random() < 0.5:
        return _json_textual(rng, text), where
    if kind != "results" and rng.random() < 0.45:
        return _textual(rng, text), None
    return text.encode("utf-8"), where


def _json_textual(rng, text):
    operation = rng.choice(["truncate", "not-utf8", "deep", "huge-int", "nan-literal", "surrogate", "markup",
                            "duplicate-key", "bom"])
    if operation == "truncate":
        return text.encode()[: rng.randrange(len(text) + 1)]
    if operation == "not-utf8":
        at = rng.randrange(len(text) + 1)
        return text[:at].encode() + b"\xff\xfe" + text[at:].encode()
    if operation == "deep":
        depth = rng.choice([100, 5000, 200_000])
        return text.replace('"warnings": [', '"warnings": [' + "[" * depth + "]" * depth + ",", 1).encode()
    if operation == "huge-int":
        return re.sub(r'("n": )\d+', lambda m: m.group(1) + "9" * rng.choice([30, 5000]), text, count=3).encode()
    if operation == "nan-literal":
        return re.sub(r'("error_u": )[0-9.e-]+', r"\1NaN", text, count=5).encode()
    if operation == "surrogate":
        return text.replace('"message": "', '"message": "\\ud800\\u0007 ', 3).encode()
    if operation == "markup":
        return text.replace('"name": "', '"name": "<script>alert(1)</script>', 1) \
            .replace('"case": "softmax/', '"case": "softmax/<img src=x onerror=alert(1)>|', 2).encode()
    if operation == "duplicate-key":
        return text.replace('"status": "passed"', '"status": "passed", "status": 5', 2).encode()
    return b"\xef\xbb\xbf" + text.encode()


# --- the independent checks of an accepted document -----------------------------------------------------------


def duplicate_keys(text):
    """Whether any mapping of the YAML text repeats a key (PyYAML's own composer, without our loader)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    seen, stack = set(), [node]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys = [(k.tag, k.value) for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
            if len(keys) != len(set(keys)):
                return True
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return False


def nonfinite_outside_literals(value, skip=("kwargs", "values", "value", "exclude")):
    if isinstance(value, dict):
        return any(nonfinite_outside_literals(v) for k, v in value.items() if k not in skip)
    if isinstance(value, list):
        return any(nonfinite_outside_literals(v) for v in value)
    return isinstance(value, float) and not math.isfinite(value)


SCHEMA = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def accepted_case_problems(path, text):
    """Why an accepted case file should have been refused (an empty list when it is right to accept it)."""
    problems = []
    if duplicate_keys(text):
        problems.append("duplicate keys")
    document = yaml.safe_load(text)
    problems += [f"schema: {e.message}" for e in list(SCHEMA.iter_errors(document))[:1]]
    for entry in document.get("cases", []):
        scan = dict(entry)
        if "matrix" in scan:  # list axes are kwargs values
            matrix = dict(scan["matrix"])
            matrix["axes"] = {k: v for k, v in matrix["axes"].items() if isinstance(v, dict)}
            scan = {"matrix": matrix}
        if nonfinite_outside_literals(scan):
            problems.append("a non-finite number outside literal data")
    for case in load_file(path):
        shapes = [spec["shape"] for spec in case.inputs.values() if "shape" in spec]
        largest = max((math.prod(shape) for shape in shapes), default=0)
        if largest > 2**22 or (largest > 2**18 and "large" not in case.tags):
            problems.append(f"a tensor of {largest} elements in {case.id}")
        if case.tolerance_factor <= 0 or not math.isfinite(case.tolerance_factor):
            problems.append("a non-positive tolerance factor")
    return problems


def accepted_budget_problems(text):
    problems = ["duplicate keys"] if duplicate_keys(text) else []
    document = yaml.safe_load(text)
    budgets = [v for p, v in _paths(document.get("budgets", {})) if not isinstance(v, (dict, list))]
    for override in document.get("overrides", []):
        budgets += list(override.get("budgets", {}).values())
    relative = document.get("relative", {})
    budgets += list(relative.get("per_rounding", {}).values())
    if document.get("accumulation"):
        budgets.append(document["accumulation"].get("lambda", 1))
    if any(isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) or b <= 0 for b in budgets):
        problems.append(f"a budget that is not finite and positive: {budgets}")
    return problems


def accepted_xfail_problems(text):
    problems = ["duplicate keys"] if duplicate_keys(text) else []
    document = yaml.safe_load(text)
    for entry in document.get("entries", []):
        if not isinstance(entry.get("id"), str) or not isinstance(entry.get("reason"), str) \
                or len(entry["reason"].strip()) < 10:
            problems.append(f"an entry without id or reason: {entry}")
    return problems


def accepted_results_problems(data):
    document = json.loads(data.decode("utf-8-sig"))
    return [] if all(isinstance(r.get(k), str) for r in document["results"] for k in ("case", "dtype", "check",
                                                                                        "status")) \
        else ["a record without case, dtype, check or status strings"]


# --- running the documents --------------------------------------------------------------------------------------


class Hang(BaseException):
    """Raised by the alarm in a document that runs past ALARM_S."""


def _alarm(signum, frame):
    raise Hang()


def attempt(capsys, argv):
    """(outcome details) of main(argv): status, output, seconds, and whether it raised, hung."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, ALARM_S)
    start, status, raised = time.perf_counter(), None, None
    try:
        status = main([str(a) for a in argv])
    except Hang:
        raised = "hang"
    except SystemExit as error:
        status = error.code
    except BaseException as error:  # noqa: BLE001 -- any exception that reaches the caller is a defect
        raised = f"{type(error).__name__}: {error}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    out, err = capsys.readouterr()
    return status, out + err, time.perf_counter() - start, raised


def _sources(kind):
    if kind == "case":
        return [(path, yaml.safe_load(path.read_text())) for path in case_files()]
    if kind == "xfail":
        return [(path, yaml.safe_load(path.read_text())) for path in sorted((CASES_DIR / "xfails").glob("*.yaml"))]
    if kind == "tolerance":
        path = CASES_DIR / "tolerances.yaml"
        return [(path, yaml.safe_load(path.read_text()))]
    raise ValueError(kind)


def _small(rng, document, kind):
    """A document cut to a few of its entries (keeps each run fast; the entries are real)."""
    key = {"case": "cases", "xfail": "entries"}.get(kind)
    if key and isinstance(document.get(key), list) and len(document[key]) > 4:
        chosen = sorted(rng.sample(range(len(document[key])), 4))
        document = {**document, key: [document[key][i] for i in chosen]}
    if kind == "xfail":
        document = {k: v for k, v in document.items() if k != "include"}
    return document


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    directory = tmp_path_factory.mktemp("malformed")
    (directory / "tiny.yaml").write_text(TINY_CASE)
    (directory / "results_cases.yaml").write_text(RESULTS_CASES)
    (directory / "results_xfails.yaml").write_text(RESULTS_XFAILS)
    (directory / "lc_malformed_backend.py").write_text(BACKEND)
    sys.path.insert(0, str(directory))
    yield directory
    sys.path.remove(str(directory))


def _run_argv(workspace, *extra):
    return ["run", "--cases", workspace / "tiny.yaml", "--jobs", "0", "--cache-dir", workspace / "cache", "--quiet",
            *extra]


@pytest.fixture(scope="module")
def base_results(workspace):
    """A real results file: passed, failed and xfailed checks of a backend 1 % off in float32."""
    path = workspace / "base.json"
    argv = ["run", "--cases", workspace / "results_cases.yaml", "--jobs", "0", "--cache-dir", workspace / "cache",
            "--quiet", "--backend", "lc_malformed_backend:Namespace", "--xfails", workspace / "results_xfails.yaml",
            "--json", path]
    assert main([str(a) for a in argv]) == 1
    return path


FIGURES = {}


SLOWEST = {}


def _judge(kind, path, data, where, status, output, seconds, raised, accepted_problems):
    """The outcome of one document: 'clean', 'valid', 'traceback', 'hang' or 'unclear: why'."""
    SLOWEST[kind] = max(SLOWEST.get(kind, 0.0), seconds)
    if raised == "hang" or seconds > SLOW_S:
        return "hang"
    if raised or "Traceback" in output:
        return "traceback"
    if status == 2:
        lines = [line for line in output.splitlines() if line.startswith("error: ")]
        if not lines or str(path) not in lines[0]:
            return f"unclear: {output[-300:]!r}"
        message = lines[0]
        inside_a_case = kind == "case" and where and len(where) > 2 and where[0] == "cases"
        file_level = re.search(r"is not (valid YAML|accepted|UTF-8)|is larger than|must be a mapping", message)
        if inside_a_case and not file_level and "field cases" not in message and "case '" not in message:
            return f"unclear: no case or field in {message!r}"
        return "clean"
    problems = accepted_problems()
    return f"accepted wrongly: {problems}" if problems else "valid"


def _tally(kind, outcomes):
    counts = {"tried": len(outcomes)}
    for outcome in outcomes:
        name = outcome if outcome in ("clean", "valid", "traceback", "hang") else \
            "accepted wrongly" if outcome.startswith("accepted wrongly") else "unclear"
        counts[name] = counts.get(name, 0) + 1
    FIGURES[kind] = {**counts, "slowest_s": round(SLOWEST.get(kind, 0.0), 2)}
    bad = [o for o in outcomes if o not in ("clean", "valid")]
    return counts, bad


def _check_memory(start_kb, kind):
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start_kb
    FIGURES[kind]["peak_memory_growth_mb"] = round(growth / 1024)
    assert growth < MEMORY_GROWTH_KB, f"the peak resident size grew by {growth} KB"


@pytest.fixture(scope="module")
def warm(workspace):
    """Import torch and fill the oracle cache once, so that memory and time are measured on the documents."""
    assert main([str(a) for a in _run_argv(workspace)]) == 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_mutated_case_files_get_a_clean_error_or_are_valid(workspace, warm, capsys):
    rng, sources = random.Random(SEED), _sources("case")
    path, outcomes = workspace / "mutated-case.yaml", []
    for _ in range(DOCUMENTS["case"]):
        _, source = rng.choice(sources)
        data, where = mutated(rng, _small(rng, source, "case"), "case")
        path.write_bytes(data)
        result = attempt(capsys, ["cases", "--cases", path, "--count"])

        def problems(data=data):
            return accepted_case_problems(path, data.decode("utf-8-sig"))

        outcomes.append(_judge("case", path, data, where, *result, problems))
    counts, bad = _tally("case", outcomes)
    assert not bad, (counts, bad[:5])
    assert counts.get("clean", 0) > DOCUMENTS["case"] // 2
    _check_memory(warm, "case")


def test_mutated_xfail_files_get_a_clean_error_or_are_valid(workspace, warm, capsys):
    rng, sources = random.Random(SEED + 1), _sources("xfail")
    path, outcomes = workspace / "mutated-xfails.yaml", []
    for _ in range(DOCUMENTS["xfail"]):
        _, source = rng.choice(sources)
        data, where = mutated(rng, _small(rng, source, "xfail"), "xfail")
        path.write_bytes(data)
        result = attempt(capsys, _run_argv(workspace, "--xfails", path))
        outcomes.append(_judge("xfail", path, data, where, *result,
                               lambda data=data: accepted_xfail_problems(data.decode("utf-8-sig"))))
    counts, bad = _tally("xfail", outcomes)
    assert not bad, (counts, bad[:5])
    _check_memory(warm, "xfail")


def test_mutated_budget_files_get_a_clean_error_or_are_valid(workspace, warm, capsys):
    rng, sources = random.Random(SEED + 2), _sources("tolerance")
    path, outcomes = workspace / "mutated-tolerances.yaml", []
    for _ in range(DOCUMENTS["tolerance"]):
        _, source = rng.choice(sources)
        data, where = mutated(rng, source, "tolerance")
        path.write_bytes(data)
        result = attempt(capsys, _run_argv(workspace, "--tolerances", path))
        outcomes.append(_judge("tolerance", path, data, where, *result,
                               lambda data=data: accepted_budget_problems(data.decode("utf-8-sig"))))
    counts, bad = _tally("tolerance", outcomes)
    assert not bad, (counts, bad[:5])
    _check_memory(warm, "tolerance")


def test_mutated_results_files_get_a_clean_error_from_report_and_diff(workspace, warm, base_results, capsys):
    rng = random.Random(SEED + 3)
    source = json.loads(base_results.read_text())
    path, outcomes = workspace / "mutated-results.json", []
    for number in range(DOCUMENTS["results"]):
        data, where = mutated(rng, source, "results")
        path.write_bytes(data)
        judged = []  # diff, and for the first few documents report: the document's outcome is the worse
        for argv in [["diff", base_results, path, "--quiet"]] + \
                ([["report", path, "-o", workspace / "report"]] if number < REPORTED_RESULTS else []):
            result = attempt(capsys, argv)
            outcome = _judge("results", path, data, where, *result, lambda data=data: accepted_results_problems(data))
            if outcome == "valid" and argv[0] == "report":
                page = (workspace / "report" / "index.html").read_text(encoding="utf-8")
                if "<script" in page or "<img src=x" in page:
                    outcome = "unescaped markup in the page"
            judged.append(outcome)
        bad = [o for o in judged if o not in ("clean", "valid")]
        outcomes.append(bad[0] if bad else "valid" if set(judged) == {"valid"} else "clean")
    counts, bad = _tally("results", outcomes)
    assert not bad, (counts, bad[:5])
    _check_memory(warm, "results")
    if os.environ.get("LC_ROBUSTNESS_FIGURES"):
        Path(os.environ["LC_ROBUSTNESS_FIGURES"]).write_text(json.dumps(FIGURES, indent=1) + "\n")


def test_the_limits_are_stated_alike_in_the_schema_and_the_loader():
    schema = json.loads(SCHEMA_PATH.read_text())["$defs"]
    shape = schema["tensor"]["properties"]["shape"]
    assert shape["maxItems"] == casefile.MAX_DIMS and shape["items"]["maximum"] == casefile.MAX_ELEMENTS
    assert schema["fragment"]["properties"]["seed"]["maximum"] == casefile.SEED_LIMIT - 1
    assert json.loads(SCHEMA_PATH.read_text())["properties"]["cases"]["maxItems"] == casefile.MAX_FILE_CASES
    axis_list, axis_map = schema["axis"]["anyOf"]
    assert axis_list["maxItems"] == axis_map["maxProperties"] == casefile.MAX_MATRIX_CASES
    assert (casefile.LARGE_ELEMENTS, casefile.MAX_ELEMENTS) == (2**18, 2**22)


# --- regression tests, one per defect of the issue -------------------------------------------------------------


def write(tmp_path, text, name="cases.yaml"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def case_error(tmp_path, text):
    with pytest.raises(CaseFileError) as caught:
        load_file(write(tmp_path, text))
    return caught.value


ONE = """\
function: softmax
cases:
  - id: a
    kwargs: {{dim: 0}}
    {extra}
    inputs: {{input: {input}}}
"""


@pytest.mark.parametrize("extra, tensor, field", [
    ("tolerance: {factor: .nan, reason: 'a reason of some length'}", "{shape: [2]}", "cases.0.tolerance.factor"),
    ("tolerance: {factor: .inf, reason: 'a reason of some length'}", "{shape: [2]}", "cases.0.tolerance.factor"),
    ("tolerance: {factor: 0, reason: 'a reason of some length'}", "{shape: [2]}", "cases.0.tolerance.factor"),
    ("grad: true", "{shape: [2], scale: .nan}", "cases.0.inputs.input.scale"),
    ("grad: true", "{shape: [2], loc: -.inf}", "cases.0.inputs.input.loc"),
    ("grad: true", "{shape: [2], nan: .nan}", "cases.0.inputs.input.nan"),
    ("seed: 18446744073709551616", "{shape: [2]}", "cases.0.seed"),
    ("seed: 2.0", "{shape: [2]}", "cases.0.seed"),
    ("grad: true", "{shape: [3000, 3000]}", "cases.0.inputs"),
    ("grad: true", "{shape: [300, 3000]}", "cases.0.tags"),
    ("grad: true", "{shape: [1, 1, 1, 1, 1, 1, 1, 1, 1]}", "cases.0.inputs.input.shape"),
])
def test_a_case_that_cannot_have_an_honest_verdict_is_refused_naming_the_field(tmp_path, extra, tensor, field):
    error = case_error(tmp_path, ONE.format(extra=extra, input=tensor))
    assert error.case_id == "a" and error.field_path == field, str(error)


def test_nan_kwargs_and_nan_literal_data_are_still_accepted(tmp_path):
    text = ("function: cross_entropy\ncases:\n  - id: a\n    kwargs: {label_smoothing: .nan}\n"
            "    expect: {error: LabelSmoothingRangeError}\n"
            "    inputs: {input: {values: [[.nan, .inf, 1.0]]}, target: {kind: index}}\n"
            "  - id: b\n    inputs: {input: {shape: [2, 3], dist: constant, value: .nan}, target: {kind: index}}\n")
    assert [case.id for case in load_file(write(tmp_path, text))] == ["a", "b"]


def test_anchors_and_aliases_of_a_bounded_size_are_accepted(tmp_path):
    """The corpus shares matrix axes with aliases (nll_loss.yaml); only their expansion is bounded."""
    assert any("w=zeros" in case.id for case in load_file(CASES_DIR / "nll_loss.yaml"))
    text = ("function: softmax\ncases:\n  - id: a\n    inputs: &shared {input: {shape: [2, 3]}}\n"
            "  - id: b\n    inputs: *shared\n")
    assert [case.inputs for case in load_file(write(tmp_path, text))] == [{"input": {"shape": [2, 3]}}] * 2


def test_a_large_case_needs_the_tag_and_the_corpus_large_tier_loads():
    (lm,) = [case for case in load_file(CASES_DIR / "cross_entropy_large.yaml") if "131072" in case.id][:1]
    assert "large" in lm.tags and casefile.case_elements(lm) > casefile.LARGE_ELEMENTS


def test_a_nan_budget_or_override_on_the_command_line_is_exit_2(workspace, capsys):
    text = (CASES_DIR / "tolerances.yaml").read_text()
    nan_override = text.replace("\noverrides:\n", "\noverrides:\n  - {function: softmax, budgets: {float64: .nan}, "
                                                    "reason: 'a reason'}\n", 1)
    assert "float64: .nan}, reason" in nan_override
    for body in (nan_override, text.replace("float64: 4, float32: 4, float16: 2, bfloat16: 2}",
                                            "float64: .nan, float32: 4, float16: 2, bfloat16: 2}", 1),
                 text.replace("lambda: 6.5", "lambda: .nan")):
        path = write(workspace, body, "nan-tolerances.yaml")
        status, output, _, raised = attempt(capsys, _run_argv(workspace, "--tolerances", path))
        assert (status, raised) == (2, None) and f"error: {path}: " in output and "nan" in output
    for option in (["--timeout", "nan"], ["--oracle-timeout", "inf"], ["--timeout", "0"]):
        status, output, _, _ = attempt(capsys, _run_argv(workspace, *option))
        assert status == 2 and "finite number of seconds" in output


@pytest.mark.parametrize("name, text, message", [
    ("laughs", "function: softmax\n" + LAUGHS + "cases: []\n", "nodes with its aliases expanded"),
    ("aliased-axes", "function: softmax\ncases:\n  - matrix:\n      id: '{a}-{b}-{c}-{d}'\n"
                     "      base: {inputs: {input: {shape: [2]}}}\n      axes: {a: &v [" +
                     ", ".join(str(i) for i in range(40)) + "], b: *v, c: *v, d: *v}\n",
     "the axes make 2560000 combinations"),
])
def test_alias_bombs_end_at_once_in_bounded_memory(tmp_path, name, text, message):
    """The two documents that hung `cases` (363 MB and growing), in a process limited to 2 GiB and 60 s."""
    path = write(tmp_path, text, f"{name}.yaml")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "conformance", "cases", "--count", "--cases", str(path)],
                            capture_output=True, text=True, timeout=60, preexec_fn=limit, cwd=REPO, check=False)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {path}: ") and time.monotonic() - start < 30


@pytest.mark.parametrize("data, message", [
    (b"function: softmax\ncases:\n  - id: \xff\n", "is not UTF-8 text: byte 33 (line 3)"),
    ("function: softmax\ncases: " + "[" * 100 + "]" * 100 + "\n", "nesting deeper than 32 levels"),
    ("function: softmax\ncases:\n  - id: a\n    seed: " + "9" * 4300 + "\n", "an integer of more than 64"),
    ("function: softmax\ncases:\n  - id: a\n    kwargs: {reduction: mean, reduction: sum}\n",
     "duplicate key 'reduction' (first at line 4)"),
    ("function: softmax\nfunction: softmax\ncases: []\n", "line 2, column 1: duplicate key 'function'"),
    ("function: softmax\ncases: &c [*c]\n", "a recursive structure"),
    ("base: &b {id: a}\nfunction: softmax\ncases:\n  - {<<: *b, inputs: {input: {shape: [2]}}}\n", "merge keys"),
    (b"function: softmax\x00\ncases: []\n", "is not valid YAML"),
])
def test_unreadable_case_files_are_a_clean_error(tmp_path, capsys, data, message):
    path = write(tmp_path, data)
    status, output, _, raised = attempt(capsys, ["cases", "--count", "--cases", path])
    assert (status, raised) == (2, None) and output.startswith(f"error: {path}: ") and message in output, output
    assert "Traceback" not in output and output.count("\n") == 1


@pytest.mark.parametrize("name, text, field", [
    ("tolerances", "budgets: {softmax: [1, 2]}\n", "budgets.softmax"),
    ("tolerances", "budgets:\n  softmax: {value: {float64: 8, float32: 8, float16: 2, bfloat16: 2}}\noverrides: [5]\n",
     "overrides.0"),
    ("tolerances", b"budgets: \xff\n", None),
    ("tolerances", "budgets: " + "{a: " * 60 + "1" + "}" * 60 + "\n", None),
    ("tolerances", "budgets:\n  softmax: {value: {float64: " + "9" * 400 + ", float32: 8, float16: 2, bfloat16: 2}}\n",
     None),
    ("xfails", "entries:\n  - {id: a, reason: 'a long enough reason', id: b}\n", None),
    ("xfails", "entries: []\ninclude: ['\\0']\n", "include.0"),
    ("xfails", b"entries: [\xc3\x28]\n", None),
])
def test_bad_xfail_and_budget_files_are_a_clean_error(workspace, capsys, name, text, field):
    path = write(workspace, text, f"bad-{name}.yaml")
    option = "--tolerances" if name == "tolerances" else "--xfails"
    status, output, _, raised = attempt(capsys, _run_argv(workspace, option, path))
    assert (status, raised) == (2, None) and output.startswith(f"error: {path}: "), output
    assert "Traceback" not in output and (field is None or f"field {field}" in output)


@pytest.mark.parametrize("text", [
    '{"schema": "loss-conformance/results", "schema_version": 1, "results": [], "warnings": '
    + "[" * 100_000 + "]" * 100_000 + "}",
    '{"schema": "loss-conformance/results", "schema_version": 1, "results": [{"case": "a", "n": '
    + "9" * 5000 + "}]}",
    '{"schema": "loss-conformance/results", "schema_version": 1, "results": [], "environment": null}',
    '{"schema": "loss-conformance/results", "schema_version": true, "results": []}',
    ('{"schema": "loss-conformance/results", "schema_version": 1, "results": [{"case": "softmax/a", '
     '"function": "softmax", "dtype": "float32", "check": "value", "status": "failed", "message": 5}]}'),
])
def test_malformed_results_files_are_exit_2_for_report_and_diff(tmp_path, base_results, capsys, text):
    path = write(tmp_path, text, "r.json")
    for argv in (["diff", base_results, path], ["report", path, "-o", tmp_path / "out"]):
        status, output, _, raised = attempt(capsys, argv)
        assert (status, raised) == (2, None) and output.startswith(f"error: {path}: "), output


def test_json_into_a_directory_that_does_not_exist_is_created_and_a_directory_is_refused(workspace, capsys):
    target = workspace / "new" / "deeper" / "r.json"
    status, _, _, _ = attempt(capsys, _run_argv(workspace, "--json", target, "--junit", target.with_suffix(".xml")))
    assert status == 0 and target.exists() and target.with_suffix(".xml").exists()
    status, output, _, _ = attempt(capsys, _run_argv(workspace, "--json", workspace))
    assert status == 2 and "is a directory" in output


def test_a_hostile_backend_message_and_name_leave_every_report_written_and_valid(workspace, capsys):
    """A lone surrogate once crashed the writers after the run (JSON written, JUnit and Markdown not)."""
    out = workspace / "hostile"
    argv = _run_argv(workspace, "--backend", "lc_malformed_backend:Hostile", "--json", out / "r.json",
                     "--junit", out / "r.xml", "--markdown", out / "r.md")
    status, output, _, raised = attempt(capsys, argv)
    assert (status, raised) == (1, None) and "Traceback" not in output
    assert sorted(p.name for p in out.iterdir()) == ["r.json", "r.md", "r.xml"]  # no .partial left
    document = json.loads((out / "r.json").read_text())
    message = next(r["message"] for r in document["results"] if r["check"] == "call")
    assert "\\ud800" in message and "\\x07" in message and "\x07" not in message
    root = ET.fromstring((out / "r.xml").read_bytes())  # valid XML 1.0: expat refuses control characters
    assert "<script>" in root.find(".//failure").text  # as text, escaped in the file
    markdown = (out / "r.md").read_text()
    assert "<script" not in outside_code(markdown) and "<script>alert(1)</script>" in markdown  # fenced: literal


def outside_code(markdown):
    """The Markdown without its fenced blocks and code spans (where text is literal, never HTML)."""
    markdown = re.sub(r"^(`{3,})\n.*?^\1$", "", markdown, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"(`+).*?\1", "", markdown)


def test_junit_and_markdown_escape_a_backend_description(tmp_path):
    from conformance.report.junit import junit_xml
    from conformance.report.markdown import markdown_summary
    from conformance.report.results_file import results_document
    from conformance.verdict.results import summarize

    record = {"case": "softmax/a|b", "function": "softmax", "dtype": "float32", "check": "value",
              "status": "failed", "message": "bad\x07 <b>bold</b>\n```\nfence", "reproduce": "run `x` | y"}
    environment = {"backend": {"name": "<script>alert(1)</script>", "version": "1\x1b[0m", "device": "cpu"},
                   "versions": {"torch": "\ud800"}}
    document = results_document(environment, [record], summarize([record]), {}, ["<i>warn</i> | pipe"])
    root = ET.fromstring(junit_xml(document).encode("utf-8"))
    values = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert values["backend"] == "<script>alert(1)</script>" and values["backend_version"] == "1\\x1b[0m"
    markdown = markdown_summary(document)
    assert "<script" not in markdown and "<i>" not in markdown and "<b>" not in outside_code(markdown)
    assert "# loss-conformance: &lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    assert "&lt;i&gt;warn&lt;/i&gt; \\| pipe" in markdown
    assert "````\nbad\\x07 <b>bold</b>\n```\nfence\n````" in markdown  # the fence outlasts the message's


def test_resume_truncates_a_torn_line_so_that_a_second_interruption_keeps_every_entry(tmp_path):
    from conformance.report.journal import Journal, _journal_entries

    key = {"backend": "torch"}
    path = tmp_path / "r.json.partial"
    journal = Journal(path, key).open(keep_existing=False)
    journal.append("softmax/a", "float32", [{"case": "softmax/a", "status": "passed"}], {})
    journal.close(remove=False)
    with open(path, "a") as file:
        file.write('{"case": "softmax/b", "dtype": "float32", "rec')  # killed mid-write
    journal = Journal(path, key).open(keep_existing=True)  # --resume
    journal.append("softmax/c", "float32", [{"case": "softmax/c", "status": "passed"}], {})
    journal._file.write('{"case": "softmax/d"')  # killed again, mid-write
    journal.close(remove=False)
    assert sorted(_journal_entries(path, key)) == [("softmax/a", "float32"), ("softmax/c", "float32")]
    assert path.read_text().count("\n") == 3


def test_a_damaged_journal_line_is_run_again_not_a_crash(tmp_path):
    from conformance.report.journal import Journal, ResumeError, _journal_entries

    path = tmp_path / "j.partial"
    Journal(path, {"k": 1}).open(keep_existing=False).close(remove=False)
    with open(path, "a") as file:
        file.write('[1, 2]\n{"case": 5, "dtype": "x", "records": []}\n\xff\n')
    assert _journal_entries(path, {"k": 1}) == {}
    path.write_text("[]\n")
    with pytest.raises(ResumeError, match="is not a loss-conformance journal"):
        _journal_entries(path, {"k": 1})


def test_k_expressions_nested_too_deeply_are_a_selection_error():
    from conformance.corpus.select import SelectionError, compile_expression

    for expression in ("(" * 5000 + "a" + ")" * 5000, "not " * 5000 + "a"):
        with pytest.raises(SelectionError, match="nested too deeply"):
            compile_expression(expression)
    assert compile_expression("(" * 40 + "a" + ")" * 40)(["a"])


# --- the oracle's time limit, with stand-in workers ---------------------------------------------------------------


def silent_worker(connection, *arguments):
    """A worker that takes a case and then never says a word (an oracle that never ends)."""
    import signal as signals

    signals.signal(signals.SIGINT, signals.SIG_IGN)
    connection.send(("ready", {"name": "silent"}, {}))
    while connection.recv()[0] != "stop":
        time.sleep(3600)


def oracle_worker(connection, status, *arguments):
    """A worker that marks the oracle call in its status word, then hangs in it."""
    connection.send(("ready", {"name": "oracle"}, {}))
    while connection.recv()[0] != "stop":
        status.set("oracle")
        time.sleep(3600)


@pytest.mark.parametrize("target, what", [(silent_worker, "the case's own work (inputs, oracle, comparison)"),
                                         (oracle_worker, "the oracle")])
def test_a_case_whose_oracle_does_not_finish_is_a_case_error_after_the_oracle_timeout(tmp_path, monkeypatch,
                                                                                      target, what):
    from conformance.run import isolation

    monkeypatch.setattr(isolation, "_worker_main", target)
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    (case,) = load_file(write(tmp_path, ONE.format(extra="grad: true", input="{shape: [300, 300]}")))
    pool = isolation.WorkerPool("unused", "cpu", None, None, {"spec": "x", "device": "cpu"}, jobs=1, timeout=60,
                                oracle_timeout=1.0)
    start = time.monotonic()
    try:
        results = list(pool.submit([(case, ["float64", "float32"])]))
    finally:
        pool.close()
    assert time.monotonic() - start < 30
    records = [record for _, _, records, _ in results for record in records]
    assert [(r["dtype"], r["check"], r["status"]) for r in records] == [("float64", "oracle", "error"),
                                                                         ("float32", "oracle", "error")]
    assert f"{what} did not finish within 1 s" in records[0]["message"]
    assert records[1]["message"].startswith("not run: ") and records[1]["message"].endswith("in float64")


# --- Ctrl-C: one line, from the parent --------------------------------------------------------------------------


def _process_group_states(group):
    """For a failure message: each process of the group with its state and signal masks (Linux /proc)."""
    states = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            fields = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")[:80].decode(errors="replace")
            states.append(f"{entry.name} {fields['State'].strip()} SigBlk {fields['SigBlk'].strip()} SigIgn "
                          f"{fields['SigIgn'].strip()} SigCgt {fields['SigCgt'].strip()} wchan "
                          f"{(entry / 'wchan').read_text()} {command}")
        except (OSError, KeyError, ValueError):
            continue
    return "; ".join(states) or "no process of the group found"


def test_ctrl_c_prints_one_line_and_no_worker_traceback(workspace):
    started = workspace / "sleepy-started"
    (workspace / "lc_sleepy_backend.py").write_text(textwrap.dedent(f"""\
        import pathlib
        import time

        import torch


        class Namespace:
            @staticmethod
            def softmax(input, dim=None, **kwargs):
                pathlib.Path({str(started)!r}).touch()  # the test interrupts once a worker is in this call
                time.sleep(60)
                return torch.softmax(input, dim)
    """))
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(workspace), str(REPO)]))
    command = [sys.executable, "-m", "conformance", "run", "--cases", str(workspace / "tiny.yaml"), "--jobs", "1",
               "--cache-dir", str(workspace / "cache"), "--quiet", "--backend", "lc_sleepy_backend:Namespace",
               "--json", str(workspace / "sleepy" / "r.json")]
    # SIGINT as a terminal's foreground job has it: a shell's background job (`cmd &`, as CI runners may start us)
    # inherits it ignored, and the CLI rightly keeps an ignored SIGINT ignored.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
                               start_new_session=True, cwd=REPO,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120  # a loaded CI machine starts two interpreters that import torch
    while not started.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert started.exists(), "the run never reached the backend call"
    os.killpg(process.pid, signal.SIGINT)  # what the terminal does: the whole process group
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        states = _process_group_states(process.pid)
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"still running 60 s after Ctrl-C; its stderr: {process.communicate()[1]!r}; {states}")
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.strip().startswith("interrupted: ") and err.count("\n") == 1, err
    assert "--resume" in err, err  # the journal was open: the message says how to continue
