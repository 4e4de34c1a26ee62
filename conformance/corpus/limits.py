"""The size and number limits of case files, and their checks: so that no file can make the loader, the matrix
expansion or a run (the oracle above all) work without bound, and no number can make a verdict meaningless.

docs/robustness.md states every limit and why. cases/schema.json states the same numbers where JSON Schema can
say them (tests/test_malformed_inputs.py holds the two to agreement); the rest is checked here, before a matrix
is expanded or a case is made. A problem is a LimitError(message, case_id, field), which casefile.py raises as a
CaseFileError naming the file.
"""
import math

MAX_FILE_BYTES = 2**20  # a case, xfail or tolerance file (the largest of the corpus has 21 KB)
MAX_DEPTH = 32  # nesting of mappings and lists in a YAML file (the corpus needs 10)
MAX_YAML_NODES = 2**17  # nodes of a YAML document with every alias expanded (the corpus needs at most 2352)
MAX_INT_DIGITS = 64  # characters of an integer scalar (a seed needs at most 19)
MAX_MATRIX_CASES = 5000  # combinations of one matrix (the product of its axis lengths), counted before expanding
MAX_FILE_CASES = 5000  # cases of one file, matrices expanded
MAX_EXPANSION_NODES = 2**18  # nodes of the cases a matrix expands to, counted before expanding (corpus: 4752)
MAX_DIMS = 8  # dimensions of a tensor shape
LARGE_ELEMENTS = 2**18  # case_elements above which a case needs the opt-in tag "large" (the corpus: 73737 untagged)
MAX_ELEMENTS = 2**22  # case_elements of any case: the oracle's work is about elements times its precision
SEED_LIMIT = 2**63  # a seed is an integer in [0, SEED_LIMIT)
INTEGER_LIMIT = 2**63  # every other integer of a case (outside kwargs and literal values) has |n| below it
LARGE_TAG = "large"


class LimitError(Exception):
    """A limit a case file goes past: the message, and the case id and field where it is."""

    def __init__(self, message, case_id=None, field_path=None):
        super().__init__(message)
        self.message, self.case_id, self.field_path = message, case_id, field_path


def _bad_number(value):
    """What a number outside literal data and kwargs must be, when it is not; None when it is fine."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return None if abs(value) < INTEGER_LIMIT else "an integer of magnitude below 2**63"
    return None if math.isfinite(value) else "a finite number"


def _scalars(value, where):
    """(field path, scalar) of every scalar below value; the depth is bounded by the loader's MAX_DEPTH."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _scalars(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _scalars(item, f"{where}.{index}")
    else:
        yield where, value


def fragment_numbers(fragment, where):
    """The numbers of a case fragment that must be finite: all but kwargs and the literal data of a tensor
    (``values``, and the ``value`` of a constant), where NaN and infinities are the point of a case."""
    for key, value in fragment.items():
        if key == "kwargs":
            continue
        if key == "inputs" and isinstance(value, dict):
            for name, spec in value.items():
                items = spec.items() if isinstance(spec, dict) else ()
                for field_name, item in items:
                    if field_name not in ("values", "value"):
                        yield from _scalars(item, f"{where}.inputs.{name}.{field_name}")
            continue
        yield from _scalars(value, f"{where}.{key}")


def matrix_numbers(matrix, where):
    yield from fragment_numbers(matrix.get("base", {}), f"{where}.base")
    for name, axis in matrix["axes"].items():
        if isinstance(axis, dict):  # a list axis holds kwargs values
            for label, fragment in axis.items():
                yield from fragment_numbers(fragment, f"{where}.axes.{name}.{label}")


def check_numbers(numbers, case_id):
    for where, value in numbers:
        wanted = _bad_number(value)
        if wanted:
            raise LimitError(f"must be {wanted}, got {value!r}", case_id, where)


def node_count(value):
    """Mappings, lists and scalars in value, counted without recursion."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def check_matrix_size(matrix, number, cases_so_far):
    """Refuse a matrix whose expansion would be too large, before anything is expanded."""
    combinations = math.prod(len(axis) for axis in matrix["axes"].values())
    where = f"cases.{number}.matrix.axes"
    if combinations > MAX_MATRIX_CASES:
        raise LimitError(f"the axes make {combinations} combinations; a matrix may make at most "
                         f"{MAX_MATRIX_CASES}", f"matrix #{number}", where)
    if cases_so_far + combinations > MAX_FILE_CASES:
        raise LimitError(f"the file would hold more than {MAX_FILE_CASES} cases with this matrix "
                         f"({cases_so_far} before it, {combinations} combinations in it)", f"matrix #{number}", where)
    per_case = (node_count(matrix.get("base", {})) + node_count(matrix.get("exclude", []))
                + sum(max(node_count(v) for v in axis.values()) if isinstance(axis, dict) else 2
                      for axis in matrix["axes"].values()))
    if combinations * per_case > MAX_EXPANSION_NODES:
        raise LimitError(f"{combinations} combinations of up to {per_case} nodes each is too much to "
                         f"expand (at most {MAX_EXPANSION_NODES} nodes in all)", f"matrix #{number}",
                         f"cases.{number}.matrix")


def _literal_count(values):
    count, stack = 0, [values]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            count += 1
    return count


def tensor_elements(spec):
    """The elements of a tensor given by ``shape`` or ``values``; None for one that takes its shape from the
    input (a target or weight without either)."""
    if "shape" in spec:
        return math.prod(spec["shape"])
    if "values" in spec:
        return _literal_count(spec["values"])
    return None


def case_elements(case):
    """The elements of a case's tensors: its input's, plus each other tensor's, one without a shape counted as
    the input (a bound: it takes its shape from the input, or the input's class dimension)."""
    input_elements = tensor_elements(case.inputs["input"]) or 0
    return input_elements + sum(input_elements if tensor_elements(spec) is None else tensor_elements(spec)
                                for name, spec in case.inputs.items() if name != "input")


def check_size(case, number):
    elements = case_elements(case)
    if elements > MAX_ELEMENTS:
        raise LimitError(f"has {elements} elements in its tensors; a case may have at most {MAX_ELEMENTS} "
                         "(2**22)", case.id, f"cases.{number}.inputs")
    if elements > LARGE_ELEMENTS and LARGE_TAG not in case.tags:
        raise LimitError(f"has {elements} elements in its tensors; a case of more than {LARGE_ELEMENTS} "
                         f"(2**18) needs the opt-in tag '{LARGE_TAG}'", case.id, f"cases.{number}.tags")
