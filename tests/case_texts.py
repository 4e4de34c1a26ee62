"""Small case files shared by the command-line tests (test_cli.py, test_run_outputs.py)."""

SOFTMAX_DEFAULT_ONLY = """\
function: softmax
dtypes: [float64, float32]
cases:
  - id: rows
    kwargs: {dim: 1}
    inputs: {input: {shape: [3, 4], scale: 2}}
  - id: columns
    kwargs: {dim: 0}
    inputs: {input: {shape: [3, 4]}}
  - id: forward-only
    kwargs: {dim: 0}
    grad: false
    inputs: {input: {shape: [2, 2]}}
"""
SOFTMAX = SOFTMAX_DEFAULT_ONLY + """\
  - id: huge
    tags: [large]
    kwargs: {dim: 1}
    inputs: {input: {shape: [2, 3]}}
"""
SOFTMAX_CASES = ("rows", "columns", "forward-only")  # huge is opt-in (tag large)
SOFTMAX_PAIRS = [(f"softmax/{case}", dtype) for case in SOFTMAX_CASES for dtype in ("float64", "float32")]
