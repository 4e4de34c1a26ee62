"""Failures grouped by what went wrong: (function, check, cause), largest group first. The cause of a value
check is its dtype ("error over budget in bfloat16"), otherwise the first line of the message with its numbers
blanked ("raised RuntimeError: bad grid #"), so that a thousand failures of one bug read as one line with a
count."""
import hashlib
import re
from collections import defaultdict
from typing import NamedTuple

from ..verdict.results import FAILING

_NUMBER = re.compile(r"(?<![A-Za-z_\d])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")  # not the 16 of float16


class FailureGroup(NamedTuple):
    function: str
    check: str
    cause: str
    records: list  # in results order

    @property
    def anchor(self):
        return "group-" + slug(f"{self.function}-{self.check}-{self.cause}")


def cause_of(record):
    """The cause of a failing record: its status and the first line of its message, numbers blanked."""
    if record["status"] == "xpassed":
        return "passed, but a declared deviation expects it to fail"
    if record["status"] == "failed" and record["check"].endswith(("value", "relative")) and \
            record.get("error_u") is not None:
        return f"error over budget in {record['dtype']}"
    if record["status"] == "failed" and record["check"].endswith("nonfinite"):
        return f"NaN/inf pattern differs in {record['dtype']}"
    first = (record.get("message") or record["status"]).strip().splitlines()[0] if record.get("message") else \
        record["status"]
    return _NUMBER.sub("#", first)[:160]


def failure_groups(records):
    """The FailureGroups of the failing records (failed, error, xpassed), largest first."""
    groups = defaultdict(list)
    for record in records:
        if record["status"] in FAILING:
            groups[(record["function"], record["check"], cause_of(record))].append(record)
    return [FailureGroup(*key, members) for key, members in
            sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))]


def slug(text):
    """An HTML id of letters, digits and hyphens, unique per text (a readable part and a short hash)."""
    readable = re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower()[:80]
    return f"{readable}-{hashlib.sha1(str(text).encode('utf-8', 'backslashreplace')).hexdigest()[:8]}"


def record_anchor(record):
    return "check-" + slug(f"{record['case']}-{record['dtype']}-{record['check']}")


def case_anchor(case_id):
    return "case-" + slug(case_id)
