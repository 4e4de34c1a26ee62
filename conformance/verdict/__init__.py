"""The verdict: all checks of a case in its dtypes (checks.py) with what a backend cannot run skipped
(support.py), each array compared with the oracle's (compare.py) within the budgets of the error model
(tolerances.py), expected deviations applied (deviations.py), torch parity (parity.py), and the records, statuses
and summaries they make (results.py)."""
