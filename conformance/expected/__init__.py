"""Expected results: the oracle's certified answer for each (case, dtype) pair (calls.py), kept in an on-disk
store that parallel workers share (store.py)."""
from .calls import Expected, Wanted, cache_key, compute_expected, oracle_calls
from .store import ENTRY_SUFFIX, OracleCache, default_cache_dir, pack_arrays, unpack_arrays

__all__ = ["ENTRY_SUFFIX", "Expected", "OracleCache", "Wanted", "cache_key", "compute_expected",
           "default_cache_dir", "oracle_calls", "pack_arrays", "unpack_arrays"]
