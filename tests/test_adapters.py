"""The framework adapters (conformance/backends/*_backend.py) on a subset of the default corpus, each with its
declared deviations: no unexpected failure but the framework's known defects, which must still fail (so that a
fixed release shows), and a coverage figure. A framework that is not installed skips its test with the reason;
onnxruntime is in the `test` extra, so CI runs its adapter for real (reports/README.md has the full runs).
Every adapter module imports without its framework, and instantiating it then names the extra to install."""
import importlib
import sys
from dataclasses import dataclass
from fnmatch import fnmatchcase

import pytest

from conformance.backends import BackendLoadError
from conformance.run.session import RunOptions, Session


@dataclass(frozen=True)
class Adapter:
    name: str
    module: str  # the framework module pytest.importorskip tries
    keyword: str  # -k expression of the subset
    defects: dict  # defect id of reports/README.md -> (case pattern, dtype pattern, check pattern) it fails
    coverage: tuple  # (lowest, highest) share of the applicable pairs that ran


ADAPTERS = {
    "onnxruntime": Adapter(
        "onnxruntime", "onnxruntime",
        "NC-mean or rows- or error-reduction or target-negative or empty-N0 or chunks-N=1000-mean-w=spread",
        {"O1 float64 LogSoftmax ignores NaN / +inf": ("log_softmax/rows-*", "float64", "nonfinite"),
         "O2 no validation: negative targets wrap": ("*/error-NC*-target-negative", "*", "raises"),
         "O2 no validation: unknown reduction = sum": ("*/error-reduction=*", "*", "raises"),
         "O3 SoftmaxCrossEntropyLoss fails on N = 0": ("cross_entropy/empty-N0*", "*", "call")},
        (0.3, 0.6)),
    "mlx": Adapter(
        "mlx", "mlx.core", "NC-mean or row-L=1 or empty-3x0 or neg-inf-log-target",
        {"M1 float64 exp has float32 accuracy": ("*", "float64", "*"),
         "M2 nn.log_softmax segfaults on rows of length 1": ("log_softmax/row-L=1", "*", "call"),
         "M3 nn.log_softmax: wrong shape (or a hang) for an empty axis": ("log_softmax/empty-3x0", "*", "*"),
         "H kl_div in float16 / bfloat16 (relative accuracy)": ("kl_div/*", "*float16", "*relative"),
         "H log_softmax in float16 / bfloat16 (relative accuracy)": ("log_softmax/*", "*float16", "*relative"),
         "M7 float16 nll_loss 'mean' holds its sum in float16": (
             "nll_loss/NC-mean-w=none-sum-past-float16-max-N=8192", "float16", "nonfinite")},
        (0.1, 0.6)),
    "paddle": Adapter(
        "paddle", "paddle", "NC-mean or rows-neg-inf or chunks-N=37",
        {"P1 nll_loss heap corruption": ("nll_loss/*", "*", "call"),
         "P2 softmax clips x - max at -64": ("*/*neg*inf*", "*", "*"),
         "P2 (large logits)": ("*/*scale=1e4*", "*", "*"),
         "P5 'mean' divides by N with ignored rows": ("cross_entropy/*-mean-w=none-*", "*", "*value")},
        (0.2, 0.7)),
    "jax": Adapter(
        "jax", "jax", "NC-mean-w=none-ii=1 or row-L=65 or fuzz-3x5",
        {"J1 float16 softmax rounds exp(x - max) to float16": ("softmax/row-L=65", "float16", "value"),
         "J2 half-precision intermediates (relative accuracy)": ("*", "*float16", "*relative"),
         "X1 'mean' sums before dividing": ("cross_entropy/fuzz-3x5-2bf8260e90", "float64", "nonfinite")},
        (0.9, 1.0)),
    "liger": Adapter(  # on the CPU through Triton's interpreter (conformance/backends/_triton_interpreter.py)
        "liger", "liger_kernel",
        "layout-transposed-mean or error-batch-mismatch or empty-N0C-sum or ext-N=6 or error-target-high",
        {"L1 strided logits: the gradient is the logits": ("cross_entropy/layout-transposed-mean", "*",
                                                           "grad_input.*"),
         "L2 no target-length check": ("cross_entropy/error-batch-mismatch-*", "*", "raises"),
         "L2 no target bound in the fused linear cross entropy": ("linear_cross_entropy/error-target-high", "*",
                                                                  "raises"),
         "L3 an empty batch raises": ("cross_entropy/empty-N0C-*", "*", "call")},
        (0.1, 0.3)),
}


def unexplained(records, defects):
    """(failing records no known defect explains, defects that no longer fail)."""
    failing = [(r["case"], r["dtype"], r["check"]) for r in records if r["status"] in ("failed", "error", "xpassed")]
    matched = {d: [f for f in failing if all(fnmatchcase(x, p) for x, p in zip(f, pattern))]
               for d, pattern in defects.items()}
    explained = {f for found in matched.values() for f in found}
    return sorted(set(failing) - explained), sorted(d for d, found in matched.items() if not found)


def run_subset(adapter, tmp_path):
    options = RunOptions(backend=adapter.name, keyword=adapter.keyword, jobs=1, timeout=60,
                         cache_dir=tmp_path / "oracle")
    session = Session(options)
    records, _ = session.run()
    return records, session.summary(records)


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_an_adapter_fails_only_its_known_defects_on_a_subset(name, tmp_path):
    adapter = ADAPTERS[name]
    pytest.importorskip(adapter.module, reason=f'the {name} adapter needs pip install "loss-conformance[{name}]"')
    records, summary = run_subset(adapter, tmp_path)
    unknown, fixed = unexplained(records, adapter.defects)
    assert not unknown, f"failures that no known defect explains: {unknown[:10]}"
    assert not fixed, f"known defects that pass now (fixed upstream? update reports/README.md): {fixed}"
    low, high = adapter.coverage
    assert low <= summary["coverage"]["share"] <= high, summary["coverage"]


@pytest.mark.parametrize("name, module", [("jax", "jax"), ("onnxruntime", "onnxruntime"), ("paddle", "paddle"),
                                          ("mlx", "mlx.core")])
def test_an_adapter_imports_without_its_framework_and_names_the_extra(name, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module.split(".")[0], None)  # `import <framework>` now raises ImportError
    for loaded in [m for m in sys.modules if m.startswith(module.split(".")[0] + ".")]:
        monkeypatch.setitem(sys.modules, loaded, None)
    monkeypatch.delitem(sys.modules, f"conformance.backends.{name}_backend", raising=False)
    adapter = importlib.import_module(f"conformance.backends.{name}_backend")
    backend_class = next(v for k, v in vars(adapter).items() if k.endswith("Backend") and isinstance(v, type))
    assert backend_class.name == name and backend_class.capabilities.api == "array"
    with pytest.raises(BackendLoadError, match=rf'pip install "loss-conformance\[{name}\]"'):
        backend_class()


def test_the_liger_backend_without_liger_names_the_extra(monkeypatch):
    import importlib.util

    from conformance.backends import liger

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None)
    with pytest.raises(BackendLoadError, match=r'pip install "loss-conformance\[liger\]"'):
        liger.backend()


def test_every_adapter_is_an_entry_point():
    from importlib.metadata import entry_points

    points = {ep.name: ep.value for ep in entry_points(group="loss_conformance.backends")}
    for name in ("jax", "onnxruntime", "paddle", "mlx"):
        assert points.get(name, "").startswith(f"conformance.backends.{name}_backend:"), points
    assert points.get("liger") == "conformance.backends.liger:backend", points


@pytest.mark.parametrize("setting", ["dir", "off"])
def test_the_jax_backend_keeps_compiled_operations_in_jax_own_cache(setting, tmp_path):
    """XLA's compilations are most of a JAX run: the backend turns on jax's persistent cache (or leaves it off when
    asked); run in a fresh interpreter, as jax's configuration is global."""
    pytest.importorskip("jax", reason='the jax adapter needs pip install "loss-conformance[jax]"')
    import os
    import subprocess
    import sys

    where = str(tmp_path / "jax-cache") if setting == "dir" else "off"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    shown = subprocess.run([sys.executable, "-c", "import jax; from conformance.backends.jax_backend import "
                            "JaxBackend; JaxBackend(); print(jax.config.jax_compilation_cache_dir)"],
                           env=dict(environment, LOSS_CONFORMANCE_JAX_CACHE=where), capture_output=True, text=True)
    assert shown.stdout.strip() == (where if setting == "dir" else "None"), shown.stderr[-500:]


LOWER_TWICE = """
import jax, jax.numpy as jnp, numpy as np, optax
jax.config.update("jax_enable_x64", True)
def texts():
    out, contexts = [], []
    for dtype in (jnp.float64, jnp.float32, jnp.float16, jnp.bfloat16):
        x, t = jnp.asarray(np.linspace(-3, 3, 12).reshape(3, 4), dtype), jnp.array([0, 3, 1])
        for f in (lambda x: jax.nn.log_softmax(x, axis=1),
                  lambda x: jax.vjp(lambda y: optax.losses.softmax_cross_entropy_with_integer_labels(y, t).mean(),
                                    x)[1](jnp.ones((), x.dtype))):
            lowered = jax.jit(f).lower(x)
            out.append(lowered.as_text(debug_info=True))
            contexts.append(lowered.compiler_ir().context)
    return out, contexts
from conformance.backends.jax_backend import JaxBackend
lowered = []
for reusing in (False, True):  # texts() called from one line: its location is in the modules' debug info
    if reusing:
        JaxBackend()
    lowered.append(texts())
(fresh, fresh_contexts), (reused, reused_contexts) = lowered
assert fresh == reused, "the module lowered differs in a reused context"
assert len({id(c) for c in fresh_contexts}) == len(fresh), "jax made a context per lowering before"
assert all(c == reused_contexts[0] for c in reused_contexts), "the backend's lowerings share a context"
print("same", len(fresh))
"""


def test_the_jax_backend_lowers_the_same_modules_into_a_reused_context():
    """Making an MLIR context per lowering was about half of a warm JAX run: the backend reuses one for up to
    LOWERINGS_PER_CONTEXT lowerings. The modules (with their debug locations) must be the same text, so that what
    XLA compiles, and jax's cache key of it, are unchanged. A fresh interpreter: the change is process-wide."""
    pytest.importorskip("jax", reason='the jax adapter needs pip install "loss-conformance[jax]"')
    import subprocess

    shown = subprocess.run([sys.executable, "-c", LOWER_TWICE], capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.strip() == "same 8", shown.stderr[-2000:]
