"""Expected deviations of a backend: which checks of which cases are known to fail, and why; and the one place
where they are applied to the records of a run.

An expected-deviation ("xfail") file is YAML, read by the loader of case files (``casefile.read_yaml``: safe, no
duplicate keys, bounded size; docs/robustness.md)::

    backend: torch                              # informational
    entries:
      - id: "kl_div/zero-target-inf-input*"     # fnmatch pattern over full case ids "function/case-id"
        dtypes: [float16, bfloat16]             # optional; default every dtype
        checks: ["nonfinite", "grad_input.*"]   # optional fnmatch patterns over check names; default every check
        reason: "torch returns NaN for 0 * log(0/q) when q is infinite"   # required, at least 10 characters
        spec: "docs/spec-notes.md#kl_div"       # optional: the spec-notes entry or source line
        strict: true                            # optional (default true): a check that passes is "xpassed"
        versions: ">2.5.1"                      # optional PEP 440 specifier of the backend versions it covers
        conforms: true                          # optional (default false): see below

An entry with ``versions`` applies only to a backend whose reported version satisfies it (a local label such as
"+cpu" is ignored); a backend that reports no version is covered by every entry. A file may say
``versions_of: torch``: its specifiers then refer to the version of the framework the backend runs on (a
kernel on torch, torch.compile), not to the backend's own. ``include: [other.yaml, ...]`` (paths relative to
the file) adds the entries of shared files after the file's own: several backends share a set that way.
An entry with ``conforms: true`` says the opposite of a deviation: this backend meets these checks, so the
entries after it (an included file's, made for another backend) do not apply; its reason says why. A
torch.compile file states so where the compiled function keeps to the docs and eager torch does not.

Every problem raises a CaseFileError naming the file, the entry (its id pattern, or "#index") and the field.
The first entry that matches a (case, dtype, check) decides; ``status_through`` maps the check's status through
it, and ``DeviationSet.apply`` does so for the records of a run.
"""
import functools
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from ..corpus.casefile import CASES_DIR, CaseFileError, read_yaml
from ..spec.dtypes import DTYPES

__all__ = ["DeviationEntry", "DeviationSet", "default_deviation_paths", "load_deviation_file", "status_through"]

MIN_REASON_LENGTH = 10
MAX_INCLUDE_DEPTH = 8  # a file including a file including ...: at most this many levels
_TOP_KEYS = ("backend", "entries", "include", "versions_of")
_ENTRY_KEYS = ("id", "dtypes", "checks", "reason", "spec", "strict", "versions", "conforms")


@dataclass(frozen=True)
class DeviationEntry:
    """One expected deviation; ``dtypes`` and ``checks`` of None mean every dtype and every check."""

    id: str
    reason: str
    dtypes: tuple | None = None
    checks: tuple | None = None
    spec: str | None = None
    strict: bool = True
    source: str = ""
    versions: str | None = None  # a PEP 440 specifier such as ">2.5.1"; None: every version
    versions_of: str = "backend"  # whose version ``versions`` refers to: the backend's, or a framework's
    conforms: bool = False  # True: no deviation here; ends the search so that later (included) entries don't apply

    def matches(self, full_id, dtype, check, version=None):
        """version: the backend's version, or {"backend": ..., "<framework>": ...}."""
        return fnmatchcase(full_id, self.id) and self.matches_check(dtype, check, version)

    def matches_check(self, dtype, check, version=None):
        """matches() for a case whose id is known to match."""
        if isinstance(version, dict):
            version = version.get(self.versions_of, version.get("backend"))
        return ((self.dtypes is None or dtype in self.dtypes)
                and (self.checks is None or any(fnmatchcase(check, pattern) for pattern in self.checks))
                and self.covers(version))

    def covers(self, version):
        """Whether the entry applies to this backend version (None, or unparsable: it applies)."""
        if self.versions is None or version is None:
            return True
        return _version_in(self.versions, version)


@functools.lru_cache(maxsize=256)
def _version_in(specifier, version):
    """Whether a version is in a PEP 440 specifier (an unparsable version: yes); kept, as a run asks per check."""
    try:
        return SpecifierSet(specifier).contains(Version(version).public, prereleases=True)
    except InvalidVersion:
        return True


def _string_list(value, path, name, field, accepted=None):
    """A non-empty list of non-empty strings, each one of ``accepted`` when given, as a tuple."""
    what = f"a non-empty list of {'dtype names' if accepted else 'check-name patterns'}"
    if not isinstance(value, list) or not value:
        raise CaseFileError(path, f"must be {what}, e.g. {list(accepted or ['value', 'grad_input.*'])}", name, field)
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise CaseFileError(path, f"must be {what}; got {item!r}", name, f"{field}.{index}")
        if accepted is not None and item not in accepted:
            raise CaseFileError(path, f"unknown dtype {item!r}; accepted: {', '.join(accepted)}", name,
                                f"{field}.{index}")
    return tuple(value)


def _entry(raw, number, path, versions_of="backend"):
    """One validated DeviationEntry from the mapping at ``entries[number]``."""
    field = f"entries.{number}"
    if not isinstance(raw, dict):
        raise CaseFileError(path, "must be a mapping with at least 'id' and 'reason'", f"#{number}", field)
    name = raw["id"] if isinstance(raw.get("id"), str) and raw["id"] else f"#{number}"
    unknown = sorted(str(key) for key in raw if key not in _ENTRY_KEYS)
    if unknown:
        raise CaseFileError(path, f"unknown keys {unknown}; accepted: {', '.join(_ENTRY_KEYS)}", name, field)
    for key in ("id", "reason"):
        if key not in raw:
            raise CaseFileError(path, f"required key '{key}' is missing", name, f"{field}.{key}")
    for key in ("id", "reason", "spec"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise CaseFileError(path, f"must be a non-empty string, got {raw[key]!r}", name, f"{field}.{key}")
    if len(raw["reason"].strip()) < MIN_REASON_LENGTH:
        raise CaseFileError(path, f"must explain the deviation in at least {MIN_REASON_LENGTH} characters, got "
                            f"{raw['reason']!r}", name, f"{field}.reason")
    for key in ("strict", "conforms"):
        if not isinstance(raw.get(key, True), bool):
            raise CaseFileError(path, f"must be true or false, got {raw[key]!r}", name, f"{field}.{key}")
    if "versions" in raw:
        _check_specifier(raw["versions"], path, name, f"{field}.versions")
    dtypes = _string_list(raw["dtypes"], path, name, f"{field}.dtypes", DTYPES) if "dtypes" in raw else None
    checks = _string_list(raw["checks"], path, name, f"{field}.checks") if "checks" in raw else None
    return DeviationEntry(id=raw["id"], reason=raw["reason"].strip(), dtypes=dtypes, checks=checks,
                      spec=raw.get("spec"), strict=raw.get("strict", True), source=str(path),
                      versions=raw.get("versions"), versions_of=versions_of, conforms=raw.get("conforms", False))


def _check_specifier(value, path, name, field):
    try:
        SpecifierSet(value if isinstance(value, str) else "\0")
    except InvalidSpecifier:
        raise CaseFileError(path, f"must be a PEP 440 version specifier such as '>=2.6' or '>2.5.1,<2.14', "
                            f"got {value!r}", name, field) from None


def _top_level(document, path):
    if not isinstance(document, dict):
        raise CaseFileError(path, "must be a mapping with the key 'entries' (and optionally 'backend')")
    unknown = sorted(str(key) for key in document if key not in _TOP_KEYS)
    if unknown:
        raise CaseFileError(path, f"unknown top-level keys {unknown}; accepted: {', '.join(_TOP_KEYS)}")
    for key in ("backend", "versions_of"):
        if key in document and (not isinstance(document[key], str) or not document[key]):
            raise CaseFileError(path, f"must be a non-empty string, got {document[key]!r}", field_path=key)
    if not isinstance(document.get("entries"), list):
        raise CaseFileError(path, "must be a list of entries", field_path="entries")
    include = document.get("include", [])
    if not isinstance(include, list) or not all(isinstance(p, str) and p for p in include):
        raise CaseFileError(path, f"must be a list of file paths, got {include!r}", field_path="include")
    return include


def load_deviation_file(path, _including=()) -> list:
    """The entries of one xfail file, in file order, then those of the files it includes; raises CaseFileError
    on the first problem."""
    path = Path(path)
    document = read_yaml(path)
    include = _top_level(document, path)
    versions_of = document.get("versions_of", "backend")
    entries, seen = [], {}
    for number, raw in enumerate(document["entries"]):
        entry = _entry(raw, number, path, versions_of)
        key = (entry.id, entry.dtypes and tuple(sorted(entry.dtypes)), entry.checks and tuple(sorted(entry.checks)),
               entry.versions)
        if key in seen:
            raise CaseFileError(path, f"duplicate of entry #{seen[key]} (same id, dtypes and checks)", entry.id,
                                f"entries.{number}")
        seen[key] = number
        entries.append(entry)
    for index, relative in enumerate(include):
        try:
            included = (path.parent / relative).resolve()
            is_file = included.is_file()
        except (OSError, RuntimeError, ValueError):  # a NUL byte, a symlink loop
            is_file = False
        if not is_file:
            raise CaseFileError(path, f"includes {relative!r}, which is not a file", field_path=f"include.{index}")
        if len(_including) >= MAX_INCLUDE_DEPTH:
            raise CaseFileError(path, f"includes files more than {MAX_INCLUDE_DEPTH} levels deep",
                                field_path=f"include.{index}")
        if included in _including or included == path.resolve():
            raise CaseFileError(path, f"includes {relative!r}, which includes this file again",
                                field_path=f"include.{index}")
        entries += load_deviation_file(included, (*_including, path.resolve()))
    return entries


class DeviationSet:
    """The expected deviations of a backend, searched in order: the first matching entry wins."""

    def __init__(self, entries):
        self.entries = list(entries)

    @classmethod
    def from_paths(cls, paths):
        """The entries of several files, concatenated in the order given."""
        return cls(entry for path in paths for entry in load_deviation_file(path))

    def __len__(self):
        return len(self.entries)

    def match(self, full_id, dtype, check, version=None):
        """The first entry covering this check of this case in this dtype (and backend version), or None."""
        return next((entry for entry in self._for_case(full_id) if entry.matches_check(dtype, check, version)), None)

    def deviation(self, full_id, dtype, check, version=None):
        """The declared deviation of this check, or None (also where a ``conforms`` entry decides)."""
        entry = self.match(full_id, dtype, check, version)
        return None if entry is None or entry.conforms else entry

    def _for_case(self, full_id):
        """The entries whose id pattern matches a case, in order (kept per case: a run asks for every check)."""
        cache = self.__dict__.setdefault("_by_case", {})
        if full_id not in cache:
            cache[full_id] = [entry for entry in self.entries if fnmatchcase(full_id, entry.id)]
        return cache[full_id]

    def apply(self, records, strict=True, version=None):
        """Turn the statuses of records matched by an entry into xfailed / xpassed, with its reason and spec link;
        a non-strict run reports an expected failure that passes as passed."""
        for record in records:
            entry = self.deviation(record["case"], record["dtype"], record["check"], version)
            if entry is None:
                continue
            record["status"] = status_through(record["status"], entry)
            if record["status"] == "xpassed" and not strict:
                record["status"] = "passed"
            record["reason"] = entry.reason
            if entry.spec:
                record["spec"] = entry.spec
        return records

    def unmatched(self, full_ids):
        """The entries whose id pattern matches none of ``full_ids``: stale or misspelt, worth a warning."""
        full_ids = list(full_ids)
        return [entry for entry in self.entries if not any(fnmatchcase(i, entry.id) for i in full_ids)]


def status_through(status: str, entry: DeviationEntry | None) -> str:
    """A check's status seen through its xfail entry.

    failed -> "xfailed"; passed -> "xpassed" when the entry is strict (counted as a failure), else "passed";
    skipped (and any other status) is unchanged, as is every status when there is no entry or a ``conforms`` one.
    """
    if entry is None or entry.conforms:
        return status
    if status == "failed":
        return "xfailed"
    if status == "passed":
        return "xpassed" if entry.strict else "passed"
    return status


def backend_versions(description):
    """{"backend": its version, "<framework>": the version of the framework it runs on} of a backend's
    description, what entries' ``versions:`` (and ``versions_of:``) are matched against."""
    description = description or {}
    versions = {"backend": description.get("version")}
    if description.get("framework"):
        versions[description["framework"]] = description.get("framework_version", description.get("version"))
    return versions


def default_deviation_paths(name):
    """The bundled expected-deviation file of a backend, cases/xfails/<Backend.name>.yaml, where it exists."""
    stem = str(name).split(":")[0]
    path = CASES_DIR / "xfails" / f"{stem}.yaml"
    return (path,) if stem.replace("-", "_").replace(".", "_").isidentifier() and path.exists() else ()
