"""The backend protocol as a non-torch framework or a partial kernel meets it: classes instantiated, capabilities
and the 'unsupported' outcome, the torch API layer, dtype names, non-differentiable targets, deviations by name,
input integrity, the backend's own version, and a worker death that an earlier call caused."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conformance.backends import BackendLoadError, load_backend
from conformance.run.session import RunOptions, Session

CASES = """
    function: cross_entropy
    dtypes: [float32]
    cases:
      - id: NC
        inputs: {input: {shape: [3, 4]}, target: {kind: index}}
      - id: NC-weight
        inputs: {input: {shape: [3, 4]}, target: {kind: index}, weight: {shape: [4], dist: uniform, low: 0.5}}
      - id: C
        inputs: {input: {shape: [4]}, target: {kind: index}}
      - id: probabilities
        inputs: {input: {shape: [3, 4]}, target: {kind: probabilities}}
      - id: legacy
        kwargs: {size_average: false}
        inputs: {input: {shape: [3, 4]}, target: {kind: index}}
      - id: error-target-high
        expect: {error: TargetOutOfRangeError}
        inputs: {input: {shape: [3, 4]}, target: {kind: index, out_of_range: high}}
"""
MODULES = {
    # a Backend-protocol class over numpy (float32 arithmetic), forward only, without weights, no torch API
    "lc_proto_numpy": '''
        import numpy as np
        from conformance.backends import Capabilities, Outcome, Unsupported

        class NumpyCE:
            name = "numpy-ce"
            capabilities = Capabilities(functions=("cross_entropy",), unsupported=frozenset({"weight"}),
                                        differentiable=())

            def describe(self):
                return {"name": self.name, "framework": "numpy", "version": np.__version__}

            def run(self, call):
                x, t = call.arrays["input"].astype(np.float32), call.arrays["target"]
                if t.shape == x.shape:
                    raise Unsupported("class probabilities")
                if not ((t >= 0) & (t < x.shape[-1])).all():
                    raise ValueError("target out of range")
                rows = x.reshape(-1, x.shape[-1])
                top = rows.max(axis=1, keepdims=True)
                lse = (np.log(np.exp(rows - top).sum(axis=1)) + top[:, 0]).astype(np.float32)
                losses = lse - rows[np.arange(len(rows)), t.reshape(-1)]
                return Outcome(value=np.array(losses.mean(), dtype=np.float64), dtype="numpy.float32")
    ''',
    # an (N, C)-only kernel over the torch namespace path: everything else raises NotImplementedError
    "lc_proto_nc_only": '''
        import torch.nn.functional as F

        def cross_entropy(input, target, *args, **kwargs):
            if input.dim() != 2 or target.shape == input.shape:
                raise NotImplementedError("only (N, C) logits with class indices")
            return F.cross_entropy(input, target, *args, **kwargs)
    ''',
    # writes into its input, as fused kernels that store gradients in the logits do
    "lc_proto_in_place": '''
        import torch.nn.functional as F

        def cross_entropy(input, target, *args, **kwargs):
            loss = F.cross_entropy(input, target, *args, **kwargs)
            input.data.mul_(0.5)
            return loss
    ''',
    # a namespace of its own package version that poisons its process on one case and dies on the next
    "lc_proto_poison": '''
        import os
        import torch.nn.functional as F
        __version__ = "7.1.2"
        POISONED = []

        def cross_entropy(input, target, *args, **kwargs):
            if POISONED:
                os._exit(5)
            if input.dim() == 1:
                POISONED.append(True)  # corrupts the process without dying: the next call pays
            return F.cross_entropy(input, target, *args, **kwargs)
    ''',
    # a Backend whose run() raises (a bug of the adapter, not of the harness)
    "lc_proto_raising": '''
        class Raising:
            name = "raising"

            def describe(self):
                return {"name": self.name}

            def run(self, call):
                raise RuntimeError("adapter bug")
    ''',
}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    for name, source in MODULES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    (tmp_path / "ce.yaml").write_text(textwrap.dedent(CASES))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    return tmp_path


def run(workspace, backend, jobs=0, xfails=(), **extra):
    options = RunOptions(backend=backend, case_paths=(workspace / "ce.yaml",), jobs=jobs, xfail_paths=xfails,
                         cache_dir=workspace / "cache", timeout=60, **extra)
    session = Session(options)
    records, _ = session.run()
    return {(r["case"].split("/")[1], r["check"]): r for r in records}, session


def test_a_backend_class_is_instantiated_from_module_colon_class(workspace):
    backend = load_backend("lc_proto_numpy:NumpyCE")
    assert backend.name == "numpy-ce" and not isinstance(backend, type)


def test_capabilities_skip_unsupported_features_and_the_torch_api_layer_with_their_kind(workspace):
    by_check, session = run(workspace, "lc_proto_numpy:NumpyCE")
    weight = by_check[("NC-weight", "call")]
    assert weight["status"] == "skipped" and weight["skip_kind"] == "unsupported" and weight["missing"] == ["weight"]
    legacy = by_check[("legacy", "call")]
    assert legacy["skip_kind"] == "not-applicable" and legacy["missing"] == ["legacy_reduction"]
    assert by_check[("probabilities", "call")]["skip_kind"] == "unsupported"  # raised Unsupported
    assert by_check[("NC", "value")]["status"] == "passed"
    assert by_check[("NC", "dtype")]["status"] == "passed"  # "numpy.float32" is float32
    assert by_check[("NC", "grad_input.value")]["status"] == "skipped"  # forward only
    coverage = session.summary(list(by_check.values()))["coverage"]
    assert coverage == {"pairs": 6, "ran": 3, "unsupported": 2, "not_applicable": 1, "skipped_otherwise": 0,
                        "share": 3 / 5}


def test_a_kernel_supporting_only_n_c_runs_without_false_failures(workspace):
    by_check, session = run(workspace, "lc_proto_nc_only")
    statuses = {key: record["status"] for key, record in by_check.items()}
    assert "failed" not in statuses.values() and "error" not in statuses.values(), statuses
    assert by_check[("C", "call")]["skip_kind"] == "unsupported"
    # the legacy size_average/reduce spelling is torch's convention: it does not apply to a namespace that does not
    # take torch's conventions as its contract (--conventions torch), so 3 of the 5 applicable pairs ran
    assert by_check[("legacy", "call")]["skip_kind"] == "not-applicable"
    assert session.summary(list(by_check.values()))["coverage"]["share"] == 3 / 5


def test_conventions_torch_judges_a_namespace_on_torch_s_conventions_too(workspace):
    by_check, session = run(workspace, "lc_proto_nc_only", conventions="torch")
    assert by_check[("legacy", "value")]["status"] == "passed"
    assert session.summary(list(by_check.values()))["judged_by"]["layers"] == ["semantics", "torch conventions"]


def test_not_implemented_never_passes_an_expected_error_case(workspace):
    (workspace / "lc_proto_lazy.py").write_text(  # declared dtypes: no probe call, every case reaches its check
        "SUPPORTED_DTYPES = ('float32',)\n\ndef cross_entropy(*args, **kwargs):\n"
        "    raise NotImplementedError('not written yet')\n")
    by_check, _ = run(workspace, "lc_proto_lazy")
    raises = by_check[("error-target-high", "raises")]
    assert raises["status"] == "skipped" and raises["skip_kind"] == "unsupported"
    assert "not written yet" in raises["message"]


def test_a_backend_whose_run_raises_fails_its_call_and_the_run_goes_on(workspace):
    by_check, _ = run(workspace, "lc_proto_raising:Raising")
    call = by_check[("NC", "call")]
    assert call["status"] == "failed" and "RuntimeError: adapter bug" in call["message"]


def test_a_backend_that_changes_its_input_fails_the_integrity_check(workspace):
    by_check, _ = run(workspace, "lc_proto_in_place")
    integrity = by_check[("NC", "inputs.unchanged")]
    assert integrity["status"] == "failed" and "input" in integrity["message"]
    assert by_check[("NC", "value")]["status"] == "passed"


def test_a_namespace_reports_its_own_version_beside_torch(workspace):
    import torch

    description = load_backend("lc_proto_poison").describe()
    assert description["version"] == "7.1.2" and description["framework_version"] == torch.__version__


def test_a_pair_whose_worker_dies_is_rerun_alone_before_it_is_blamed(workspace):
    by_check, _ = run(workspace, "lc_proto_poison", jobs=1, functions=None)
    assert by_check[("C", "value")]["status"] == "passed"  # it poisoned the worker
    assert by_check[("NC-weight", "value")]["status"] == "passed"  # died after C, passed when re-run alone


def test_deviations_are_looked_up_by_backend_name_and_include_shared_sets(workspace, monkeypatch):
    from conformance.verdict import deviations

    xfails = workspace / "xfails"
    (xfails / "shared").mkdir(parents=True)
    (xfails / "shared" / "edge.yaml").write_text(
        'entries:\n  - id: "cross_entropy/NC-weight"\n    checks: ["call"]\n    reason: "a shared edge choice"\n')
    (xfails / "numpy-ce.yaml").write_text("include: [shared/edge.yaml]\nentries: []\n")
    monkeypatch.setattr(deviations, "CASES_DIR", workspace)
    options = RunOptions(backend="lc_proto_numpy:NumpyCE", case_paths=(workspace / "ce.yaml",), jobs=0,
                         cache_dir=workspace / "cache")
    session = Session(options).open()
    (entry,) = session.deviations.entries
    assert entry.reason == "a shared edge choice" and entry.source.endswith("edge.yaml")


def test_versions_of_a_framework_scope_entries_by_that_framework(tmp_path):
    from conformance.verdict.deviations import load_deviation_file

    path = tmp_path / "kernel.yaml"
    path.write_text('versions_of: torch\nentries:\n  - id: "a/*"\n    versions: ">=2.9"\n'
                    '    reason: "a torch behaviour the kernel inherits"\n')
    (entry,) = load_deviation_file(path)
    assert entry.matches("a/x", "float32", "value", {"backend": "0.1", "torch": "2.13.0"})
    assert not entry.matches("a/x", "float32", "value", {"backend": "3.0", "torch": "2.5.1"})


def test_the_console_script_imports_a_backend_from_the_working_directory(workspace):
    script = Path(sys.executable).with_name("loss-conformance")
    if not script.exists():
        pytest.skip("the loss-conformance console script is not installed beside this Python")
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(script), "run", "--backend", "lc_proto_nc_only", "--cases", "ce.yaml", "--jobs", "1",
                           "--cache-dir", "cache", "--json", "r.json", "--quiet", "--xfails"], cwd=workspace,
                          capture_output=True, text=True, timeout=300, env=environment, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((workspace / "r.json").read_text())["environment"]["backend"]["name"] == "lc_proto_nc_only"


def test_an_unloadable_class_names_the_spec(workspace):
    with pytest.raises(BackendLoadError, match="lc_proto_missing"):
        load_backend("lc_proto_missing:Nothing")


def test_dtype_names_of_other_frameworks_are_normalised():
    from conformance.spec.dtypes import normalize_dtype_name

    names = ["paddle.float32", "mlx.core.bfloat16", "torch.float16", "<class 'jax.numpy.float64'>", "dtype('float32')"]
    assert [normalize_dtype_name(n) for n in names] == ["float32", "bfloat16", "float16", "float64", "float32"]
    assert np.dtype("float32").name == normalize_dtype_name(np.dtype("float32"))


def test_the_adapter_of_docs_backends_md_runs_the_softmax_cases_without_failure(tmp_path, monkeypatch):
    text = (Path(__file__).resolve().parent.parent / "docs" / "backends.md").read_text()
    (source,) = [block.split("```", 1)[0] for block in text.split("```python\n")[1:] if "numpy_softmax" in block]
    (tmp_path / "numpy_softmax.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    options = RunOptions(backend="numpy_softmax:NumpySoftmax", functions=("softmax", "log_softmax"), jobs=0,
                         cache_dir=tmp_path / "cache", keyword="rank or rows-")
    session = Session(options)
    records, _ = session.run()
    assert records and not [r for r in records if r["status"] in ("failed", "error")], [
        (r["case"], r["dtype"], r["check"], r.get("message", "")[:120]) for r in records if r["status"] == "failed"][:5]
    coverage = session.summary(records)["coverage"]
    assert coverage["ran"] and coverage["not_applicable"]  # the implicit-dim cases are torch API conventions


def test_parity_passes_torchs_behaviour_on_torchs_declared_deviations_only(workspace):
    (workspace / "lc_parity_kernel.py").write_text(  # behaves exactly like torch, declared deviations included
        "import torch.nn.functional as F\nkl_div = F.kl_div\ncross_entropy = F.cross_entropy\n")

    def records(parity):
        options = RunOptions(backend="lc_parity_kernel", functions=("kl_div", "cross_entropy"), jobs=0,
                             xfail_paths=(), cache_dir=workspace / "cache", parity=parity,
                             keyword="zero-target-inf-input or error-label_smoothing=-0.1")
        found, _ = Session(options).run()
        return found

    plain = records(None)
    assert {r["status"] for r in plain} >= {"failed"}  # the documented results differ from torch's there
    with_parity = records("torch")
    assert not [r for r in with_parity if r["status"] in ("failed", "error", "xpassed")]
    matched = [r for r in with_parity if r.get("parity") == "torch"]
    assert matched and all("matches torch's declared deviation" in r["message"] for r in matched)
    assert len(matched) == len([r for r in plain if r["status"] == "failed"])


def test_supports_is_asked_in_either_protocol_and_a_method_s_self_is_not_counted():
    from types import SimpleNamespace

    from conformance.backends import support_problem

    class ThreeArguments:  # the first protocol: supports(function, dtype, form)
        def supports(self, function, dtype, form):
            return f"{function} {dtype} {form}"

    class OneCall:  # supports(call)
        def supports(self, call):
            return f"call {call.function}"

    call = SimpleNamespace(function="softmax", dtype="float16", form="functional")
    assert support_problem(ThreeArguments(), call) == "softmax float16 functional"
    assert support_problem(OneCall(), call) == "call softmax"
    assert support_problem(SimpleNamespace(supports=lambda function, dtype, form: dtype), call) == "float16"
    assert support_problem(SimpleNamespace(supports=lambda call: call.form), call) == "functional"
    assert support_problem(object(), call) is None
