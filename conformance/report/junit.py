"""JUnit XML (``run --junit PATH``) for CI systems that show test results.

One ``<testsuite>`` per function and one ``<testcase>`` per (case, dtype), named ``case-id[dtype]`` with the
function as its class name. A testcase fails when any of its checks failed or an expected failure passed,
is an error for a case or harness problem, and is skipped only when every check was skipped. Checks that are
declared deviations (xfailed) do not fail it; they are listed, with their reasons, in its ``system-out``.
"""
import xml.etree.ElementTree as ET
from collections import defaultdict

from ..verdict.results import FAILING, clean_text
from .judgement import describe_judgement

FAILURE = tuple(s for s in FAILING if s != "error")  # a JUnit failure; "error" is a JUnit error


def _clean(text):
    """Any value as text XML 1.0 can hold: control characters, lone surrogates and U+FFFE/U+FFFF escaped
    (ElementTree escapes &, < and > itself, and quotes in attributes)."""
    return clean_text(str(text))


def _pair_status(records):
    statuses = {record["status"] for record in records}
    if statuses & set(FAILURE):
        return "failure"
    if "error" in statuses:
        return "error"
    return "skipped" if statuses == {"skipped"} else "passed"


def _describe(record):
    lines = [f"{record['check']}: {record['status']}"]
    if record["status"] == "xpassed":
        lines.append(f"expected to fail ({record.get('reason')}), but passed")
    if record.get("message"):
        lines.append(record["message"])
    if record.get("reproduce"):
        lines.append(f"reproduce: {record['reproduce']}")
    return "\n".join(lines)


def _testcase(suite, case_id, dtype, records, seconds):
    function, _, name = case_id.partition("/")
    element = ET.SubElement(suite, "testcase", classname=_clean(function), name=_clean(f"{name}[{dtype}]"),
                            time=f"{seconds:.3f}")
    status = _pair_status(records)
    if status in ("failure", "error"):
        wanted = FAILURE if status == "failure" else ("error",)
        bad = [r for r in records if r["status"] in wanted]
        first = bad[0]
        summary = f"{first['check']}: {(first.get('message') or first['status']).splitlines()[0]}"
        detail = ET.SubElement(element, status, message=_clean(summary[:500]), type=_clean(first["check"]))
        detail.text = _clean("\n\n".join(_describe(r) for r in bad))
    elif status == "skipped":
        ET.SubElement(element, "skipped", message=_clean((records[0].get("message") or "skipped")[:500]))
    deviations = [r for r in records if r["status"] == "xfailed"]
    if deviations:
        ET.SubElement(element, "system-out").text = _clean("declared deviations:\n" + "\n".join(
            f"{r['check']}: {r.get('reason', '')} ({r.get('spec', '')})" for r in deviations))
    return status


def _properties(parent, environment, summary):
    properties = ET.SubElement(parent, "properties")
    backend = environment.get("backend") or {}
    values = {"backend": backend.get("name"), "backend_version": backend.get("version"),
              "device": environment.get("device"), "oracle_version": environment.get("oracle_version"),
              **{f"{name}_version": version for name, version in (environment.get("versions") or {}).items()},
              **{f"judged_by_{number}": line for number, line in
                 enumerate(describe_judgement((summary or {}).get("judged_by")), 1)}}
    for name, value in values.items():
        if value is not None:
            ET.SubElement(properties, "property", name=_clean(name), value=_clean(value))


def junit_xml(document, seconds=None):
    """The JUnit XML text of a results document; ``seconds`` maps (case, dtype) to the time its oracle and
    backend calls took (the results file does not keep per-pair times, so that two runs diff cleanly)."""
    seconds = seconds or {}
    pairs = defaultdict(list)
    for record in document["results"]:
        pairs[(record["function"], record["case"], record["dtype"])].append(record)
    root = ET.Element("testsuites", name="loss-conformance")
    suites, counts, times = {}, defaultdict(lambda: defaultdict(int)), defaultdict(float)
    for (function, case_id, dtype), records in pairs.items():
        if function not in suites:
            suites[function] = ET.SubElement(root, "testsuite", name=_clean(function))
            _properties(suites[function], document.get("environment", {}), document.get("summary"))
        status = _testcase(suites[function], case_id, dtype, records, seconds.get((case_id, dtype), 0.0))
        counts[function][status] += 1
        times[function] += seconds.get((case_id, dtype), 0.0)
    for function, suite in suites.items():
        tally = counts[function]
        suite.set("tests", str(sum(tally.values())))
        suite.set("time", f"{times[function]:.3f}")
        for status, attribute in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            suite.set(attribute, str(tally[status]))
    for attribute in ("tests", "failures", "errors", "skipped"):
        root.set(attribute, str(sum(int(suite.get(attribute)) for suite in suites.values())))
    root.set("time", f"{sum(times.values()):.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
