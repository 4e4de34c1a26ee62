"""Splitting a run into shards (run --shard K/N) and merging their results files back into the one an unsharded run
writes (docs/ci.md)."""
import json

import pytest

from case_texts import SOFTMAX
from conformance.corpus.casefile import load_file
from conformance.cli import main
from conformance.corpus.shard import ShardError, pair_cost, parse_shard, shard_selection


def comparable(path):
    document = json.loads(path.read_text())
    document.pop("timings")
    document["environment"].pop("argv")
    return document


def run(tmp_path, *extra):
    argv = ["run", "--cases", tmp_path / "softmax.yaml", "--jobs", "0", "--quiet", "--cache-dir", tmp_path / "cache",
            "--xfails", *extra]
    return main([str(a) for a in argv])


def test_merged_shards_equal_the_unsharded_run(tmp_path):
    (tmp_path / "softmax.yaml").write_text(SOFTMAX)
    assert run(tmp_path, "--json", tmp_path / "all.json") == 0
    for k in (1, 2):
        assert run(tmp_path, "--shard", f"{k}/2", "--json", tmp_path / f"s{k}.json") == 0
    parts = [json.loads((tmp_path / f"s{k}.json").read_text()) for k in (1, 2)]
    assert all(part["results"] for part in parts)  # both shards got work
    assert main(["merge", str(tmp_path / "s2.json"), str(tmp_path / "s1.json"), "-o", str(tmp_path / "m.json"),
                 "--cases", str(tmp_path / "softmax.yaml")]) == 0
    assert comparable(tmp_path / "m.json") == comparable(tmp_path / "all.json")


def test_merge_refuses_an_incomplete_set_of_shards(tmp_path, capsys):
    (tmp_path / "softmax.yaml").write_text(SOFTMAX)
    run(tmp_path, "--shard", "1/3", "--json", tmp_path / "s1.json")
    assert main(["merge", str(tmp_path / "s1.json"), "-o", str(tmp_path / "m.json")]) == 2
    assert "not 1 to 3" in capsys.readouterr().err and not (tmp_path / "m.json").exists()


def test_shards_are_balanced_by_cost_and_deterministic(tmp_path):
    (tmp_path / "softmax.yaml").write_text(SOFTMAX)
    cases = load_file(tmp_path / "softmax.yaml")
    selected = [(case, list(case.dtypes)) for case in cases if "large" not in case.tags]
    parts = [shard_selection(selected, k, 3) for k in (1, 2, 3)]
    positions = sorted(p for _, found in parts for p in found)
    assert positions == list(range(sum(len(d) for _, d in selected)))  # every pair exactly once
    assert parts == [shard_selection(selected, k, 3) for k in (1, 2, 3)]
    loads = [sum(pair_cost(case) * len(dtypes) for case, dtypes in part) for part, _ in parts]
    assert max(loads) - min(loads) <= max(pair_cost(case) for case, _ in selected)


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_a_bad_shard_is_refused(text):
    with pytest.raises(ShardError):
        parse_shard(text)
