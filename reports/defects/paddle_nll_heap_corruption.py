"""PaddlePaddle CPU: paddle.nn.functional.nll_loss corrupts the heap when the LAST target equals ignore_index
(reduction 'sum' or 'mean'; 'none' is fine). Each case runs in a child process (glibc's MALLOC_CHECK_=3 makes
the corruption fail fast) and is repeated so that the corrupted heap is used: the child aborts (SIGABRT) or hangs
in malloc. Reference: the documented sum over non-ignored rows, -sum_n x[n, y_n], in float64 numpy.
"""
import os
import subprocess
import sys

import numpy as np

CASES = [("[0, 1, 2, 3]", -100, "sum"), ("[-100, 1, 2, 3]", -100, "sum"), ("[0, 1, 2, -100]", -100, "sum"),
         ("[0, 1, 2, -100]", -100, "mean"), ("[0, 1, 2, -100]", -100, "none"), ("[0, 2, 3, 1]", 1, "sum"),
         ("[-100, -100, -100, -100]", -100, "mean")]

if len(sys.argv) > 1:  # the child: one case, repeated
    import paddle
    import paddle.nn.functional as F
    y, ii, reduction = np.array(eval(sys.argv[1])), int(sys.argv[2]), sys.argv[3]
    x = np.random.default_rng(0).normal(size=(len(y), 6))
    first = None
    for _ in range(300):
        out = F.nll_loss(paddle.to_tensor(x), paddle.to_tensor(y), ignore_index=ii, reduction=reduction).numpy()
        first = out if first is None else first
    keep = y != ii
    terms = -x[np.arange(len(y))[keep], y[keep]]
    ref = {"sum": terms.sum(), "mean": terms.sum() / keep.sum() if keep.sum() else float("nan"),
           "none": np.where(keep, -x[np.arange(len(y)), np.where(keep, y, 0)], 0.0)}[reduction]
    print(f"paddle {paddle.__version__}: value {first} reference {ref} (300 calls survived)", flush=True)
    sys.exit(0)

for y, ii, reduction in CASES:
    env = dict(os.environ, MALLOC_CHECK_="3", GLOG_minloglevel="3")
    try:
        p = subprocess.run([sys.executable, __file__, y, str(ii), reduction], env=env, capture_output=True,
                           text=True, timeout=60)
        status = f"exit {p.returncode}" + (" (SIGABRT)" if p.returncode in (-6, 134) else "")
        lines = [l for l in (p.stdout + p.stderr).splitlines()
                 if "survived" in l or "malloc" in l or "free()" in l or "corrupt" in l]
    except subprocess.TimeoutExpired as e:
        status, lines = "hung (killed after 60 s)", [l for l in (e.stderr or b"").decode(errors="replace").splitlines()
                                                    if "malloc" in l or "corrupt" in l or "free()" in l]
    print(f"target={y:26s} ignore_index={ii:5d} reduction={reduction:5s}: {status}; {' | '.join(lines[:2])}")
