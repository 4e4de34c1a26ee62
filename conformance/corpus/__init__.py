"""The corpus: YAML case files loaded strictly and expanded into cases (casefile.py, yaml_strict.py, limits.py,
resources.py), the selection a run takes (select.py), its shards (shard.py), and pairwise coverage (coverage.py)."""
