"""The oracle cache is not trusted (conformance/expected/store.py, docs/robustness.md): each fault or forgery of a
warm cache below is detected, re-certified and counted, and the run's verdict equals that of an empty cache.

Faults a digest catches on every read: a flipped bit, a truncated entry, an entry moved under another key, an entry
of an older oracle version (its key names that version). Forgeries with a valid digest (values scaled, scales
scaled, a value replaced by an error, inputs rewritten) are caught by the committed manifest for the default
corpus, and elsewhere by re-certifying a sample of the hits (`--verify-cache`), here all of them.
"""
import json

import numpy as np
import pytest

from conformance.expected import pack_arrays, unpack_arrays
from conformance.expected import store
from conformance.cli.manifest import build_inputs
from conformance.expected.manifest import MANIFEST_PATH
from conformance.expected.store import DamagedEntry, OracleCache, describe_cache
from conformance.run.session import RunOptions, Session

pytest.importorskip("torch")
SELECTION = dict(functions=("softmax", "cross_entropy"), dtypes=("float32",), keyword="NC-mean-w=pos or rows-finite")


def run(cache_dir, verify=0.0):
    records, timings = Session(RunOptions(jobs=0, cache_dir=cache_dir, verify_cache=verify, **SELECTION)).run()
    return sorted((r["case"], r["dtype"], r["check"], r["status"]) for r in records), timings["cache"]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The verdict with an empty cache, and a warm cache directory to copy."""
    warm = tmp_path_factory.mktemp("warm")
    verdict, stats = run(warm)
    assert stats["misses"] > 5 and stats["hits"] == 0 and len(verdict) > 50
    again, stats = run(warm)
    assert again == verdict and stats["misses"] == 0 and stats["damaged"] == 0
    return verdict, warm


@pytest.fixture
def cache(baseline, tmp_path):
    import shutil

    shutil.copytree(baseline[1], tmp_path / "cache")
    return tmp_path / "cache"


def results(cache_dir):
    return sorted(path for path in cache_dir.glob("??/*.entry"))


def rewrite(path, change, key=None):
    """Re-pack an entry after change(arrays, error) -> (arrays, error): a forgery with a valid digest."""
    arrays, error = unpack_arrays(bytearray(path.read_bytes()), path.stem)
    arrays, error = change({name: np.array(array) for name, array in arrays.items()}, error)
    path.write_bytes(pack_arrays(arrays, error, key=key or path.stem))


def scaled(part, factor):
    def change(arrays, error):
        return {name: array * factor if name.endswith(part) else array for name, array in arrays.items()}, error
    return change


def flip_bit(path):
    data = bytearray(path.read_bytes())
    data[-8] ^= 0x10  # a mantissa bit of the last float64 stored
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[:-16])


FAULTS = {
    "a flipped bit": lambda paths: [flip_bit(p) for p in paths],
    "a truncated entry": lambda paths: [truncate(p) for p in paths],
    "an entry moved under another key": lambda paths: [b.write_bytes(data) for data, b in
                                                        zip([a.read_bytes() for a in paths], paths[1:] + paths[:1])],
    "an entry of an older oracle version": lambda paths: [rewrite(p, lambda a, e: (a, e), key="0" * 64)
                                                          for p in paths],
}
FORGERIES = {
    "values scaled by 1.01": scaled(".hi", 1.01),
    "scales scaled by 2**64": scaled(".scale", 2.0 ** 64),
    "a value replaced by an error": lambda arrays, error: ({}, "OracleDomainError"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_damaged_entry_is_recertified_and_the_verdict_is_unchanged(fault, baseline, cache):
    paths = results(cache)
    FAULTS[fault](paths)
    verdict, stats = run(cache)
    assert verdict == baseline[0]
    assert stats["damaged"] == len(paths) and len(stats["recertified"]) == min(len(paths), 100)
    assert "entries damaged, re-certified" in describe_cache(stats)
    assert run(cache)[1]["damaged"] == 0  # re-certified entries were written back


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_entry_of_the_default_corpus_is_caught_by_the_manifest(forgery, baseline, cache):
    paths = results(cache)
    for path in paths:
        rewrite(path, FORGERIES[forgery])
    verdict, stats = run(cache)
    assert verdict == baseline[0]
    assert stats["forged"] == len(paths) and stats["damaged"] == stats["unpinned"] == 0
    assert all(why == "differs from the manifest" for _, _, why in stats["recertified"])


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_entry_outside_the_manifest_is_caught_by_verification(forgery, baseline, cache, monkeypatch):
    monkeypatch.setattr(store, "load_manifest", lambda path=None: {"inputs": {}, "results": {}})
    paths = results(cache)
    for path in paths:
        rewrite(path, FORGERIES[forgery])
    assert run(cache)[1]["forged"] == 0  # unverified, a forgery with a valid digest passes...
    verdict, stats = run(cache, verify=1.0)  # ...and re-certifying every hit finds it
    assert verdict == baseline[0]
    assert stats["forged"] == len(paths) and stats["verified"] == len(paths) and stats["damaged"] == 0
    assert all("re-certified and not equal" in why for _, _, why in stats["recertified"])


def test_rewritten_inputs_are_caught_by_the_manifest(baseline, cache):
    inputs = sorted((cache / "inputs").glob("*.entry"))
    for path in inputs:  # a valid entry: the large shifts of each case gone
        rewrite(path, lambda arrays, error: ({n: a - a.max() if a.dtype.kind == "f" and a.size else a
                                              for n, a in arrays.items()}, error))
    verdict, stats = run(cache)
    assert verdict == baseline[0]
    assert stats["damaged"] == len(inputs) and {what for what, _, _ in stats["recertified"]} == {"inputs"}


def test_an_honest_cache_verified_in_full_agrees_with_itself_and_the_manifest(baseline, cache):
    verdict, stats = run(cache, verify=1.0)
    assert verdict == baseline[0] and stats["verified"] == stats["hits"] == stats["pinned"] > 0
    assert stats["forged"] == stats["unpinned"] == 0


def test_results_certified_here_are_the_manifests_bytes(tmp_path):
    """The manifest holds for this machine and engine: a sample of the corpus certified afresh (no cache)."""
    records, timings = Session(RunOptions(jobs=0, cache_dir=None, shard=(3, 40))).run()
    stats = timings["cache"]
    assert stats["confirmed"] > 50 and stats["unpinned"] == 0, stats["recertified"][:5]


def test_an_entry_of_the_older_unverified_format_is_a_miss(baseline, cache):
    path = results(cache)[0]
    data = bytearray(path.read_bytes())
    data[:4] = b"LCE1"
    path.write_bytes(bytes(data))
    store = OracleCache(cache)
    assert store.get(path.stem, "softmax") is None and store.damaged == 0


def test_an_entry_names_its_key_and_its_digest():
    packed = pack_arrays({"x": np.arange(3.0)}, key="k")
    assert unpack_arrays(bytearray(packed), "k")[0]["x"].tolist() == [0.0, 1.0, 2.0]
    altered = bytearray(packed)
    altered[-64] ^= 1  # the first byte of x (its one 64-byte block)
    for data, key in ((packed, "other"), (packed[:-1], "k"), (altered, "k"), (b"junk", "k")):
        with pytest.raises(DamagedEntry):
            unpack_arrays(bytearray(data), key)


@pytest.mark.parametrize("shape", [[10**30], [2.0], ["x"], [9], [2, -1, 0]])
def test_an_entry_whose_digest_is_right_and_whose_layout_is_impossible_is_damaged(shape):
    """Whoever can write the cache can recompute a digest: a layout its bytes cannot hold must still be a damaged
    entry, not an exception out of the read."""
    packed = bytearray(pack_arrays({"x": np.arange(2.0)}, key="k"))
    length = int.from_bytes(packed[4:8], "little")
    header = json.loads(bytes(packed[8:8 + length]))
    body = packed[store._padded(8 + length):]
    header["arrays"][0][2] = shape
    fields = {name: value for name, value in header.items() if name != "digest"}
    head = json.dumps({**fields, "digest": store._digests(fields, body)[0]}).encode()
    head = b"LCE2" + len(head).to_bytes(4, "little") + head
    forged = head + bytes(store._padded(len(head)) - len(head)) + bytes(body)
    with pytest.raises(DamagedEntry):
        unpack_arrays(bytearray(forged), "k")


def test_the_committed_manifest_of_inputs_is_current():
    committed = json.loads(MANIFEST_PATH.read_text())
    current = build_inputs()
    stale = {key for key in set(committed["inputs"]) | set(current)
             if committed["inputs"].get(key) != current.get(key)}
    assert not stale, (f"cases/manifest.json is stale for {len(stale)} cases: "
                       "run python -m conformance.cli.manifest --write")


def test_a_run_from_the_cache_lists_its_records_in_the_order_of_the_run_that_certified_them(tmp_path):
    """The records of a pair follow the oracle's order of outputs and gradients, also when read from the cache
    (it had listed them sorted: linear_cross_entropy's bias gradient before its weight's, reports of a cold and a
    warm run did not diff by position)."""
    options = RunOptions(jobs=0, cache_dir=tmp_path, dtypes=("float64",),
                         ids=("linear_cross_entropy/N=6-H=5-V=37-bias-none",))

    def checks():
        records, timings = Session(options).run()
        return [(r["case"], r["check"]) for r in records], timings["cache"]

    (cold, first), (warm, second) = checks(), checks()
    assert first["misses"] == 1 and second["hits"] == 1
    gradients = [check.partition(".")[0] for _, check in cold]
    assert gradients.index("grad_linear_weight") < gradients.index("grad_linear_bias")
    assert warm == cold
