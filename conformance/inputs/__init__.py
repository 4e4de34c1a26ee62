"""Inputs: the seeded, bit-reproducible values of a case's tensors (generate.py), with the row patterns of
fused-kernel cases (row_patterns.py), and their rounding to the dtype under test."""
