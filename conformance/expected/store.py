"""The on-disk store of certified results and of generated inputs, shared by parallel workers.

Entries are keyed by the content (calls.cache_key: function, arguments, exact input bytes, precision, oracle
version, and the oracle engine with its libraries' versions) and written atomically, so parallel workers can share
one cache directory; the generated inputs of each case are kept in its ``inputs/`` folder.

The store is not trusted (docs/robustness.md, "What the suite trusts"): every entry carries its key and a SHA-256
digest of its key, header and arrays, and every read checks both, so a damaged, truncated or moved entry (or one
of an older format) is re-certified and counted, never used. Generated inputs of the default corpus must also
match the digests of the committed manifest (expected/manifest.py), and so must the certified results of the
default corpus, which are canonical (oracle/_canonical.py). Elsewhere, a forged result entry, written with a valid
digest, is caught by re-certifying a sample (``verify`` > 0, `run --verify-cache FRACTION`).
"""
import hashlib
import json
import math
import os
import random
from pathlib import Path

import numpy as np

from .. import spec
from ..corpus.resources import write_atomic
from ..inputs.generate import GENERATOR_VERSION, make_inputs
from .calls import Expected, Wanted, cache_keys, compute_expected
from .manifest import load_manifest


def default_cache_dir():
    if os.environ.get("LOSS_CONFORMANCE_CACHE"):
        return Path(os.environ["LOSS_CONFORMANCE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loss-conformance" / "oracle"


def _field_names(expected):
    """{stored name: Wanted}: the primary output as "value", the others by name, gradients as "grad_<name>"."""
    outputs = expected.outputs or {}
    named = {("value" if number == 0 else name): wanted for number, (name, wanted) in enumerate(outputs.items())}
    named.update({f"grad_{name}": wanted for name, wanted in (expected.gradients or {}).items()})
    return named


def _to_fields(expected):
    fields = {}
    for name, wanted in _field_names(expected).items():
        fields.update({f"{name}.{part}": array for part, array in zip(Wanted._fields, wanted)})
    if expected.grad_output is not None:
        fields["grad_output"] = expected.grad_output
    return fields


def _from_fields(stored, error, function):
    """The Expected of a stored entry, its outputs and gradients in the order they were stored, which is the order
    the oracle gave them (_to_fields): the checks of a pair follow it, so that a run whose results come from the
    cache lists its records as the run that certified them did."""
    names = list(dict.fromkeys(key.rpartition(".")[0] for key in stored if key.endswith(".hi")))
    wanted = {name: Wanted(*(stored[f"{name}.{part}"] for part in Wanted._fields)) for name in names}
    primary = spec.get(function).outputs[0]
    outputs = {primary: wanted.pop("value")} if "value" in wanted else {}
    gradients = {name[len("grad_"):]: wanted.pop(name) for name in list(wanted) if name.startswith("grad_")}
    outputs.update(wanted)
    return Expected(error=error or None, outputs=outputs or None, grad_output=stored.get("grad_output"),
                    gradients=gradients or None)


# A store entry: magic, header length, a JSON header naming its key, its digest and each array's dtype, shape and
# offset, then the raw bytes, each array aligned to 64. Reading one is a file read, a json.loads and a SHA-256 of
# the bytes (about 1 GB/s); numpy's .npz (a zip of .npy files, a header parse per array) took a quarter of a warm
# run. LCE1 entries (no key, no digest: before oracle results were verified) read as misses and are re-certified.
ENTRY_SUFFIX = ".entry"
PINNED_CHARS = 32  # a content digest, and the manifest's keys: 128 bits of SHA-256
_MAGIC = b"LCE2"
_ALIGN = 64


_OLD_MAGIC = b"LCE1"


class DamagedEntry(ValueError):
    """A store entry that is not what its key says: truncated, altered, moved, or not an entry at all."""


def _digests(header, body):
    """(the entry's digest: SHA-256 of its header, key included, and of its array bytes; its content's digest:
    the error, the arrays' names, dtypes and shapes, and their bytes, which the manifest pins). One pass over
    the bytes serves both."""
    body_digest = hashlib.sha256(body).hexdigest()
    fields = {name: value for name, value in header.items() if name != "digest"}
    entry = hashlib.sha256((json.dumps(fields, sort_keys=True) + body_digest).encode()).hexdigest()
    content = json.dumps({"error": header["error"], "arrays": header["arrays"]}, sort_keys=True) + body_digest
    return entry, hashlib.sha256(content.encode()).hexdigest()[:PINNED_CHARS]


def _padded(size):
    return -(-size // _ALIGN) * _ALIGN


def pack_arrays(arrays, error="", key=""):
    """The bytes of one store entry holding ``arrays`` (a dict of numeric numpy arrays) and a text ``error``, under
    ``key`` (the name it is stored by, which a read must ask for)."""
    return pack_entry(arrays, error, key)[0]


def pack_entry(arrays, error="", key=""):
    """(pack_arrays' bytes, the digest of their content)."""
    contiguous = {name: np.asarray(array, order="C") for name, array in arrays.items()}  # keeps 0-d shapes
    layout, offset = [], 0
    for name, array in contiguous.items():
        layout.append([name, array.dtype.str, list(array.shape), offset])
        offset += _padded(array.nbytes)
    payload = bytearray(offset)
    for (_, _, _, at), array in zip(layout, contiguous.values()):
        payload[at:at + array.nbytes] = array.tobytes()
    fields = {"key": key, "error": error, "arrays": layout, "size": offset}
    entry, content = _digests(fields, payload)
    header = json.dumps({**fields, "digest": entry}).encode()
    head = _MAGIC + len(header).to_bytes(4, "little") + header
    return head + bytes(_padded(len(head)) - len(head)) + bytes(payload), content


def unpack_arrays(data, key=""):
    """(arrays, error) from the bytes of a store entry stored under ``key``; DamagedEntry when they are not a whole,
    unaltered entry of that key."""
    return unpack_entry(data, key)[:2]


def unpack_entry(data, key=""):
    """(arrays, error, the digest of the content) of an entry, as unpack_arrays."""
    if data[:4] != _MAGIC:
        raise DamagedEntry("not a store entry of this format")
    try:
        length = int.from_bytes(data[4:8], "little")
        header = json.loads(bytes(data[8:8 + length]))
        start = _padded(8 + length)
        if not isinstance(header, dict) or len(data) != start + header["size"]:
            raise DamagedEntry("truncated store entry")
    except (ValueError, KeyError, TypeError) as error:  # json's errors are ValueErrors
        raise DamagedEntry(f"unreadable header: {error}") from None
    if header.get("key") != key:
        raise DamagedEntry(f"an entry of another key ({str(header.get('key'))[:16]}...)")
    entry, content = _digests(header, memoryview(data)[start:])
    if header.get("digest") != entry:
        raise DamagedEntry("digest mismatch")
    try:
        arrays = {name: np.frombuffer(data, np.dtype(dtype), math.prod(shape), start + at).reshape(tuple(shape))
                  for name, dtype, shape, at in header["arrays"]}  # math.prod: np.prod took 2% of a warm run
    except (ValueError, TypeError, OverflowError) as error:  # a layout its bytes cannot hold
        raise DamagedEntry(f"unreadable array layout: {error}") from None
    return arrays, header["error"], content


def _read_entry(path, key):
    """A store entry's arrays (writable: they come from a bytearray) and error; None when absent or of the older
    unverifiable format; DamagedEntry when present and not a whole, unaltered entry of ``key`` (the caller
    recomputes and overwrites it either way)."""
    try:
        data = bytearray(path.read_bytes())
    except OSError:
        return None
    if data[:4] == _OLD_MAGIC:
        return None
    try:
        return unpack_entry(data, key)
    except (ValueError, KeyError, TypeError) as error:
        raise DamagedEntry(str(error)) from None


def inputs_key(case):
    """What a case's generated inputs depend on: the generator's version, the specs, keyword arguments, seed."""
    fields = {"generator": GENERATOR_VERSION, "function": case.function, "inputs": case.inputs,
              "kwargs": case.kwargs, "seed": case.seed}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=repr).encode()).hexdigest()


class OracleCache:
    """Content-addressed store of Expected results; ``directory=None`` disables it. ``verify`` (0 to 1) is the
    share of cache hits re-certified and compared with what was stored; ``manifest`` ({"inputs": {key: digest},
    "results": {key: digest}}, by default the committed one) pins the default corpus's inputs and results."""

    def __init__(self, directory=None, verify=0.0, manifest=None):
        manifest = load_manifest() if manifest is None else manifest
        self.pinned_inputs, self.pinned_results = manifest.get("inputs", {}), manifest.get("results", {})
        self.directory = Path(directory) if directory else None
        self.verify = float(verify or 0.0)
        self.reset_stats()  # the counters, and (what, key, why) of each entry re-certified, for the run's report
        self._sampler = random.Random()  # which hits to re-certify: unpredictable, so that no entry can count on it
        # The generated inputs of each case, beside the oracle's results (a warm run need not generate them).
        self.inputs_directory = self.directory / "inputs" if self.directory else None

    def stats(self):
        """The counters a run reports and adds up over its workers."""
        return {**{name: getattr(self, name) for name in CACHE_COUNTERS}, "recertified": list(self.recertified)}

    def reset_stats(self):
        for name in CACHE_COUNTERS:
            setattr(self, name, 0)
        self.recertified = []

    def _damaged(self, what, key, error):
        self.damaged += 1
        self.recertified.append((what, key, str(error)))

    def inputs(self, case):
        """make_inputs(case), read from the inputs store when an identical case generated them before and the
        stored arrays pass their digest (and the manifest's, for a case of the default corpus)."""
        if self.inputs_directory is None:
            return make_inputs(case)
        key = inputs_key(case)
        path = self.inputs_directory / f"{key}{ENTRY_SUFFIX}"
        try:
            stored = _read_entry(path, key)
        except DamagedEntry as error:
            self._damaged("inputs", key, error)
            stored = None
        if stored is not None:
            pinned = self.pinned_inputs.get(key[:PINNED_CHARS])
            if pinned is None or stored[2] == pinned:  # the entry's content digest, computed by its read
                return stored[0]
            self._damaged("inputs", key, "differ from the manifest's digest")
        arrays = make_inputs(case)
        write_atomic(path, pack_arrays(arrays, key=key))
        return arrays

    def _path(self, key):
        return self.directory / key[:2] / f"{key}{ENTRY_SUFFIX}"

    def get(self, key, function):
        """(the stored Expected, the digest of its content), or None when absent or damaged."""
        if self.directory is None:
            return None
        try:
            stored = _read_entry(self._path(key), key)
        except DamagedEntry as error:
            self._damaged("result", key, error)
            return None
        if stored is None:
            return None
        self.hits += 1
        return _from_fields(*stored[:2], function), stored[2]

    def put(self, key, expected):
        """Store an Expected; returns the digest of its content (computed either way)."""
        packed, content = pack_entry(_to_fields(expected), expected.error or "", key=key)
        if self.directory is not None:
            write_atomic(self._path(key), packed)
        return content

    def expected(self, function, arrays, kwargs, dtype, seed, grad, grad_output_kind="random", prec=None,
                 engine=None):
        """The certified Expected of a call: from the store where its entry is intact and, for a call of the
        default corpus, its content is the manifest's; re-certified where not, or where sampled (``verify``)."""
        key, neutral = cache_keys(function, arrays, kwargs, dtype, seed, grad, prec, grad_output_kind, engine)
        pinned = self.pinned_results.get(neutral[:PINNED_CHARS])
        found = self.get(key, function)
        sampled = bool(self.verify) and self._sampler.random() < self.verify
        if found is not None and pinned is not None and found[1] != pinned:
            self._replaced(key, "differs from the manifest")
            found = None
        elif found is not None and not sampled:
            self.pinned += pinned is not None
            self.trusted += pinned is None
            return found[0]
        elif found is None:
            self.misses += 1
        result = compute_expected(function, arrays, kwargs, dtype, seed, grad, prec, grad_output_kind, engine)
        content = self.put(key, result) if found is None else pack_entry(_to_fields(result), result.error or "")[1]
        if found is not None:  # a sampled hit: canonical results are the same bytes when honest
            self.verified += 1
            if found[1] == content:
                self.pinned += pinned is not None
                return found[0]
            self._replaced(key, f"re-certified and not equal: {_differing_part(found[0], result)}")
            self.put(key, result)
        if recording is not None:
            recording[neutral[:PINNED_CHARS]] = content
        if pinned is not None and content != pinned:  # the oracle itself disagrees with the committed manifest
            self.unpinned += 1
            self.recertified.append(("manifest", neutral, "certified afresh and not the manifest's"))
        elif pinned is not None:
            self.confirmed += 1
        return result

    def _replaced(self, key, why):
        self.forged += 1
        self.recertified.append(("result", key, why))


recording = None  # {manifest key: content digest} of every result certified, while cli/manifest.py builds


def _differing_part(stored, fresh):
    """Which part of a stored Expected is not the fresh certification's (results are canonical: the same bytes),
    for the report: the error class, or the first differing array ("grad_input.hi", ...)."""
    if stored.error != fresh.error:
        return f"error {stored.error!r}, certified {fresh.error!r}"
    old, new = _to_fields(stored), _to_fields(fresh)
    for name in sorted(set(old) | set(new)):
        if name not in old or name not in new or old[name].shape != new[name].shape \
                or np.asarray(old[name]).tobytes() != np.asarray(new[name]).tobytes():
            return name
    return "the entry's layout"


CACHE_COUNTERS = ("hits", "misses", "damaged", "verified", "forged", "pinned", "confirmed", "unpinned", "trusted")
RECERTIFIED_KEPT = 100  # entries named in a results file; the counters count them all


def add_cache_stats(total, part):
    """Add one worker's (or one shard's) cache counters to ``total`` (both as OracleCache.stats() gives them)."""
    for key in CACHE_COUNTERS:
        total[key] = int(total.get(key, 0)) + int((part or {}).get(key, 0) or 0)
    named = list(total.get("recertified", ())) + [list(entry) for entry in (part or {}).get("recertified", ())]
    total["recertified"] = named[:RECERTIFIED_KEPT]
    return total


def describe_cache(stats):
    """The run summary's words for its cache counters, e.g. "cache 4833 hits / 0 misses; 3 entries damaged, ..."."""
    text = f"cache {stats.get('hits', 0)} hits / {stats.get('misses', 0)} misses"
    if stats.get("damaged"):
        text += f"; cache: {stats['damaged']} entries damaged, re-certified"
    if stats.get("forged"):
        text += f"; {stats['forged']} forged entries replaced"
    if stats.get("verified"):
        text += f"; {stats['verified']} hits re-certified to verify them"
    if stats.get("pinned") or stats.get("confirmed"):
        text += (f"; {stats.get('pinned', 0)} hits matched cases/manifest.json, "
                 f"{stats.get('confirmed', 0)} certified here matched it")
    if stats.get("trusted"):
        text += f"; {stats['trusted']} hits trusted on their digest alone"
    if stats.get("unpinned"):
        text += f"; WARNING: {stats['unpinned']} results differ from cases/manifest.json (stale manifest?)"
    return text
