"""Whether a backend can run a case in a dtype, before anything is computed: its declared capabilities, the
torch API layer, and its own ``supports``. A case it cannot run is skipped with the reason, never failed, and
the record says which kind of skip it is, so that a run reports coverage beside conformance:

- ``unsupported``: the backend lacks the function, the dtype or a feature the case needs (or said so itself);
- ``not-applicable``: the case uses torch's API conventions (module classes, legacy size_average/reduce, the
  implicit dim, uint8 targets), which are not part of a non-torch backend's API.
"""
from ..backends import Call, support_problem
from .compare import CheckResult

UNSUPPORTED = "unsupported"
NOT_APPLICABLE = "not-applicable"


def skipped(reason, kind=UNSUPPORTED, missing=None, check="call"):
    return CheckResult(check, "skipped", reason, skip_kind=kind, missing=missing)


def _declared(case, dtype, features, name, capabilities):
    if case.function not in capabilities.functions:
        return skipped(f"{name} offers no {case.function}")
    if dtype not in capabilities.dtypes:
        return skipped(f"{name} does not support {dtype}")
    torch_only = capabilities.not_applicable(features)
    if torch_only:
        return skipped(f"uses torch conventions or memory layouts that are not part of {name}'s API: "
                       f"{', '.join(torch_only)}", NOT_APPLICABLE, torch_only)
    missing = capabilities.missing(features)
    if missing:
        return skipped(f"{name} does not support {', '.join(missing)}", UNSUPPORTED, missing)
    return None


def skip_check(case, dtype, arrays, features, backend, capabilities, notify):
    """A skipped CheckResult when the backend cannot run the case in this dtype (a failed one when its
    ``supports`` itself breaks), else None."""
    name = getattr(backend, "name", "the backend")
    declared = _declared(case, dtype, features, name, capabilities)
    if declared is not None:
        return declared
    probe = Call(case.function, dtype, arrays, dict(case.kwargs), case.form, features=features)
    notify("busy")  # a dtype probe is a backend call too: it runs under the timeout
    try:
        reason = support_problem(backend, probe)
    except NotImplementedError as error:
        reason = f"{type(error).__name__}: {error}"
    except Exception as error:  # noqa: BLE001 -- the backend's own probe broke: its failure, not the harness's
        return CheckResult("call", "failed", f"the backend's supports() raised {type(error).__name__}: {error}",
                           n=1, bad=1)
    finally:
        notify("idle")
    return skipped(reason) if reason else None


def unsupported_call(error_name, message, check="call"):
    """The skipped check of a call that raised Unsupported or NotImplementedError."""
    return skipped(f"{error_name}: {(message or '').strip()[:300]}", check=check)
