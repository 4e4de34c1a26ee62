"""The opt-in huge tier: cross_entropy and log_softmax on tensors past 2**31 elements (``loss-conformance huge``).

cases.py holds the cases and their structured inputs (a few distinct rows, placed so that 32-bit offsets show),
expected.py the oracle's answers certified on those rows, tensors.py the torch tensors, compare.py the streamed
comparison, run.py one case in one dtype. docs/huge-tier.md gives the sizes, the memory and the times.
"""
