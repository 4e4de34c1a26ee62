"""MLX CPU (mlx[cpu] on Linux x86_64): mlx.nn.log_softmax is `mx.compile(shapeless=True)`-decorated, and its
compiled kernel for `x - max(x, axis=-1, keepdims=True)` (a) SEGFAULTS when the softmax axis has length 1, and
(b) returns a wrong shape for an empty axis once it has been compiled for a non-empty one. Each case runs in a
child process. Reference: log_softmax of a length-1 row is 0 (the uncompiled formula gives that); an (3, 0) input
has an (3, 0) result (or an error, as the uncompiled max reduction raises).
"""
import subprocess
import sys

import numpy as np

CASES = {
    "nn.log_softmax on (5, 1)": "r = nn.log_softmax(mx.array(x51), axis=-1)",
    "mx.compile(shapeless=True)(x - max(x, -1, keepdims)) on (5, 1)":
        "r = mx.compile(lambda a: a - mx.max(a, axis=-1, keepdims=True), shapeless=True)(mx.array(x51))",
    "same, compiled without shapeless": "r = mx.compile(lambda a: a - mx.max(a, axis=-1, keepdims=True))(mx.array(x51))",
    "uncompiled formula on (5, 1)": "a = mx.array(x51); s = a - mx.max(a, axis=-1, keepdims=True); "
                                    "r = s - mx.logsumexp(s, axis=-1, keepdims=True)",
    "nn.log_softmax float64 on (3, 5), then on (3, 0)":
        "f = lambda s: mx.array(np.zeros(s)).astype(mx.float64); mx.eval(nn.log_softmax(f((3, 5)), axis=-1)); "
        "r = nn.log_softmax(f((3, 0)), axis=-1)",
}
if len(sys.argv) > 1:
    import mlx.core as mx
    import mlx.nn as nn
    x51 = np.random.default_rng(0).normal(size=(5, 1)).astype(np.float32)
    exec(CASES[sys.argv[1]])
    mx.eval(r)
    print(f"mlx {mx.__version__}: shape {r.shape}, values {np.array(r).ravel().tolist()}")
    sys.exit(0)
for name in CASES:
    try:
        p = subprocess.run([sys.executable, __file__, name], capture_output=True, text=True, timeout=60)
        out = (p.stdout + p.stderr).strip().splitlines()
        status = {-11: "SIGSEGV", 139: "SIGSEGV"}.get(p.returncode, f"exit {p.returncode}")
        print(f"{name}: {status}; {out[-1][:160] if out else ''}")
    except subprocess.TimeoutExpired:
        print(f"{name}: hung (killed after 60 s)")
