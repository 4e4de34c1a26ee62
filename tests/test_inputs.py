"""Generated inputs: bit-reproducible, per-argument streams, and every spec key doing what docs/case-format.md says."""
import hashlib
import math
import textwrap

import mpmath
import numpy as np
import pytest

from conformance import spec as records
from conformance.corpus.casefile import Case, default_seed, load_file
from conformance.inputs.generate import make_grad_output, make_inputs, make_tensor, parse_number, rounded_inputs
from conformance.spec.dtypes import round_to

TENSORS = {tensor.name: tensor for tensor in records.get("cross_entropy").tensors}  # streams and default shapes

CE_INPUTS = {"input": {"shape": [6, 5], "dist": "normal", "scale": 3},
             "target": {"kind": "index", "ignore": 0.25},
             "weight": {"shape": [5], "dist": "uniform", "low": 0.5, "high": 2}}


def ce_case(inputs=None, seed=1234, **kwargs):
    return Case(id="t", function="cross_entropy", inputs=inputs or CE_INPUTS, kwargs=kwargs, seed=seed)


def digest(array):
    """SHA-256 of the dtype, shape and little-endian bytes of an array."""
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    hasher = hashlib.sha256(f"{array.dtype.str}:{array.shape}:".encode())
    hasher.update(array.tobytes())
    return hasher.hexdigest()


def ulp_distance(a, b):
    """How many float64 steps apart two finite arrays are, elementwise."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    to_int = lambda x: np.where(x < 0, -(x.view(np.int64) & 0x7FFFFFFFFFFFFFFF), x.view(np.int64))
    return np.abs(to_int(a) - to_int(b))


# --- reproducibility ---------------------------------------------------------------------------------------------


def test_the_same_case_gives_bit_identical_arrays_twice():
    first, second = make_inputs(ce_case()), make_inputs(ce_case())
    assert list(first) == ["input", "target", "weight"]
    for name in first:
        assert first[name].dtype == second[name].dtype and first[name].shape == second[name].shape
        assert first[name].tobytes() == second[name].tobytes()


# These digests pin cross-machine and cross-version reproducibility of the generators: the same seed must give
# the same bits on every machine, OS, numpy and Python version. They were computed once (numpy 2, x86-64 Linux)
# and must never be updated to make a test pass: a change means every certified oracle result and every
# reported failure would silently refer to different inputs.
PINNED = [
    ("input", {"shape": [4, 5], "dist": "normal", "scale": 3, "loc": 0.5}, 12345, None, None, "float64", (4, 5),
     "b8513275ebadf10c41ecc9bbf5433f5e5f7c08eb450499923050f8e82b571574"),
    ("input", {"shape": [64], "dist": "logspace", "low": -20, "high": 20}, 7, None, None, "float64", (64,),
     "d357561a15553530e8ccacb35c1fbd9cbc316825e762e8addd8ddf503294e74c"),
    ("target", {"kind": "index", "ignore": 0.25}, 99, (8, 5, 3), {"ignore_index": -100}, "int64", (8, 3),
     "62a484f111759e2bb3a3577a1ee0c7b673088cd9deb4adbd1e16dbb37c64d656"),
]


@pytest.mark.parametrize("name, spec, seed, input_shape, kwargs, dtype, shape, sha256", PINNED,
                         ids=["normal", "logspace", "index-with-ignore"])
def test_pinned_digest_of_generated_bytes(name, spec, seed, input_shape, kwargs, dtype, shape, sha256):
    array = make_tensor(TENSORS[name], spec, seed, input_shape, kwargs)
    assert (str(array.dtype), array.shape) == (dtype, shape)
    assert digest(array) == sha256


def test_pinned_normal_values_are_in_range():  # a readable cross-check of the first pinned spec
    array = make_tensor(TENSORS["input"], {"shape": [4, 5], "dist": "normal", "scale": 3, "loc": 0.5}, 12345)
    assert array[0, 0] == pytest.approx(-4.35788868, abs=1e-8)
    assert np.all(np.abs(array - 0.5) <= 18)


def test_per_argument_streams_are_independent():
    base = make_inputs(ce_case())
    other_target = make_inputs(ce_case({**CE_INPUTS, "target": {"kind": "index", "out_of_range": "high"}}))
    no_weight = make_inputs(ce_case({"input": CE_INPUTS["input"], "target": CE_INPUTS["target"]}))
    other_weight = make_inputs(ce_case({**CE_INPUTS, "weight": {"shape": [5], "dist": "normal", "zeros": 0.5}}))
    assert other_target["input"].tobytes() == base["input"].tobytes()
    assert other_target["weight"].tobytes() == base["weight"].tobytes()
    assert other_target["target"].tobytes() != base["target"].tobytes()
    assert no_weight["target"].tobytes() == base["target"].tobytes()
    assert other_weight["target"].tobytes() == base["target"].tobytes()
    assert other_weight["input"].tobytes() == base["input"].tobytes()


def test_input_and_target_streams_differ_for_the_same_spec():
    spec = {"shape": [50], "dist": "uniform"}
    assert not np.array_equal(make_tensor(TENSORS["input"], spec, 5), make_tensor(TENSORS["target"], spec, 5))


def test_different_seeds_give_different_inputs():
    assert not np.array_equal(make_inputs(ce_case(seed=1))["input"], make_inputs(ce_case(seed=2))["input"])


def test_default_seed_depends_on_the_full_id_not_the_file_order(tmp_path):
    body = "cases:\n  - id: a\n    inputs: {input: {shape: [3, 4]}}\n  - id: b\n    inputs: {input: {shape: [3, 4]}}\n"
    swapped = "cases:\n  - id: b\n    inputs: {input: {shape: [3, 4]}}\n  - id: a\n    inputs: {input: {shape: [3, 4]}}\n"
    (tmp_path / "s.yaml").write_text("function: softmax\n" + body)
    (tmp_path / "l.yaml").write_text("function: log_softmax\n" + body)
    (tmp_path / "w.yaml").write_text("function: softmax\n" + swapped)
    soft = {c.id: c for c in load_file(tmp_path / "s.yaml")}
    logs = {c.id: c for c in load_file(tmp_path / "l.yaml")}
    swap = {c.id: c for c in load_file(tmp_path / "w.yaml")}
    assert soft["a"].seed == default_seed("softmax/a") == swap["a"].seed
    assert len({soft["a"].seed, soft["b"].seed, logs["a"].seed, logs["b"].seed}) == 4
    assert make_inputs(soft["a"])["input"].tobytes() == make_inputs(swap["a"])["input"].tobytes()
    assert make_inputs(soft["a"])["input"].tobytes() != make_inputs(logs["a"])["input"].tobytes()
    # default_seed is the first four bytes (little-endian) of the id's SHA-256
    assert default_seed("softmax/a") == int.from_bytes(hashlib.sha256(b"softmax/a").digest()[:4], "little")


def test_an_explicit_seed_overrides_the_derived_one(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent("""\
        function: softmax
        cases:
          - {id: a, seed: 5, inputs: {input: {shape: [3]}}}
          - {id: b, seed: 5, inputs: {input: {shape: [3]}}}
        """))
    a, b = load_file(path)
    assert a.seed == b.seed == 5
    assert make_inputs(a)["input"].tobytes() == make_inputs(b)["input"].tobytes()


# --- distributions -----------------------------------------------------------------------------------------------


def test_normal_is_loc_plus_scale_times_irwin_hall():
    z = make_tensor(TENSORS["input"], {"shape": [2000]}, 1)
    x = make_tensor(TENSORS["input"], {"shape": [2000], "loc": 10, "scale": 0.5}, 1)
    assert np.all(np.abs(z) <= 6) and abs(z.mean()) < 0.1 and 0.9 < z.std() < 1.1
    assert np.array_equal(x, 10 + 0.5 * z)


def test_uniform_within_low_high():
    x = make_tensor(TENSORS["input"], {"shape": [1000], "dist": "uniform", "low": -3, "high": -1}, 2)
    assert np.all((x >= -3) & (x < -1)) and x.max() > -1.1 and x.min() < -2.9


@pytest.mark.parametrize("sign", ["any", "positive", "negative"])
def test_logspace_binary_exponents_and_sign(sign):
    x = make_tensor(TENSORS["input"], {"shape": [2000], "dist": "logspace", "low": -3, "high": 4, "sign": sign}, 3)
    _, exponent = np.frexp(np.abs(x))  # |x| = m * 2**e with m in [1, 2): frexp gives m/2 and e + 1
    assert set(np.unique(exponent - 1)) == set(range(-3, 5))
    if sign == "any":
        assert (x < 0).any() and (x > 0).any()
    else:
        assert np.all(x > 0) if sign == "positive" else np.all(x < 0)


def test_constant_and_shift():
    x = make_tensor(TENSORS["input"], {"shape": [2, 2], "dist": "constant", "value": "-inf"}, 0)
    assert np.all(x == -np.inf)
    y = make_tensor(TENSORS["input"], {"shape": [3], "dist": "constant", "value": 1.5, "shift": 1000}, 0)
    assert np.array_equal(y, [1001.5] * 3)
    z, shifted = (make_tensor(TENSORS["input"], {"shape": [8], **extra}, 4) for extra in ({}, {"shift": 2 ** 20}))
    assert np.array_equal(shifted, z + 2 ** 20)


# --- modifiers ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, test", [("zeros", lambda v: v == 0), ("neg_inf", lambda v: v == -np.inf),
                                        ("pos_inf", lambda v: v == np.inf), ("nan", np.isnan)])
def test_modifier_sets_the_fraction_and_leaves_the_rest(name, test):
    spec = {"shape": [8, 5], "dist": "uniform", "low": 1, "high": 2}
    plain = make_tensor(TENSORS["input"], spec, 9)
    modified = make_tensor(TENSORS["input"], {**spec, name: 0.25}, 9)
    hit = test(modified)
    assert hit.sum() == 10  # round(0.25 * 40)
    assert np.array_equal(modified[~hit], plain[~hit])  # the values themselves are drawn before the modifiers
    assert test(make_tensor(TENSORS["input"], {**spec, name: "all"}, 9)).all()
    assert test(make_tensor(TENSORS["input"], {**spec, name: 0.001}, 9)).sum() == 1  # at least one element when > 0
    assert not test(make_tensor(TENSORS["input"], {**spec, name: 0}, 9)).any()


def test_negative_fraction_and_all():
    spec = {"shape": [40], "dist": "uniform", "low": 1, "high": 2}
    plain = make_tensor(TENSORS["input"], spec, 9)
    some = make_tensor(TENSORS["input"], {**spec, "negative": 0.5}, 9)
    assert (some < 0).sum() == 20 and np.array_equal(np.abs(some), plain)
    assert np.all(make_tensor(TENSORS["input"], {**spec, "negative": "all"}, 9) < 0)


def test_modifiers_apply_in_order_zeros_then_negative():
    x = make_tensor(TENSORS["input"], {"shape": [10], "dist": "uniform", "low": 1, "high": 2, "zeros": "all",
                              "negative": "all"}, 9)
    assert np.all(x == 0) and np.all(np.signbit(x))  # zeros made negative: -0.0
    y = make_tensor(TENSORS["input"], {"shape": [10], "dist": "uniform", "zeros": "all", "nan": "all"}, 9)
    assert np.all(np.isnan(y))  # nan is applied last


# --- targets -----------------------------------------------------------------------------------------------------


def test_index_target_in_range_with_the_input_shape_minus_the_class_dim():
    target = make_tensor(TENSORS["target"], {"kind": "index"}, 11, (7, 4, 3, 2), {})
    assert target.dtype == np.int64 and target.shape == (7, 3, 2)
    assert target.min() >= 0 and target.max() < 4 and len(np.unique(target)) == 4
    assert make_tensor(TENSORS["target"], {"kind": "index"}, 11, (6,), {}).shape == ()  # (C) input: a 0-d target
    assert make_tensor(TENSORS["target"], {"kind": "index", "shape": [5]}, 11, (3, 4), {}).shape == (5,)


@pytest.mark.parametrize("kwargs, ignore_index", [({}, -100), ({"ignore_index": -7}, -7), ({"ignore_index": 9}, 9)])
def test_index_target_ignore_fraction_uses_kwargs_ignore_index(kwargs, ignore_index):
    target = make_tensor(TENSORS["target"], {"kind": "index", "ignore": 0.25}, 12, (40, 5), kwargs)
    assert (target == ignore_index).sum() == 10
    others = target[target != ignore_index]
    assert others.min() >= 0 and others.max() < 5
    assert np.all(make_tensor(TENSORS["target"], {"kind": "index", "ignore": "all"}, 12, (40, 5), kwargs) == ignore_index)


@pytest.mark.parametrize("which, bad", [("high", 5), ("negative", -2)])
def test_index_target_out_of_range_sets_one_element(which, bad):
    target = make_tensor(TENSORS["target"], {"kind": "index", "out_of_range": which}, 13, (20, 5), {})
    assert (target == bad).sum() == 1
    assert np.count_nonzero((target < 0) | (target >= 5)) == 1


def test_negative_out_of_range_avoids_the_ignore_index():
    target = make_tensor(TENSORS["target"], {"kind": "index", "out_of_range": "negative"}, 13, (20, 5), {"ignore_index": -2})
    assert (target == -3).sum() == 1 and not (target == -2).any()


@pytest.mark.parametrize("dtype, numpy_dtype", [("int32", np.int32), ("uint8", np.uint8), ("bool", np.bool_),
                                                ("int64", np.int64)])
def test_index_target_dtype(dtype, numpy_dtype):
    target = make_tensor(TENSORS["target"], {"kind": "index", "dtype": dtype}, 14, (10, 2), {})
    assert target.dtype == numpy_dtype


@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 2, 2), (7,)])
def test_probabilities_are_normalised_along_the_class_dim(shape):
    target = make_tensor(TENSORS["target"], {"kind": "probabilities"}, 15, shape, {})
    assert target.shape == shape and np.all(target >= 0)
    dim = 0 if len(shape) == 1 else 1
    rows = np.moveaxis(target, dim, -1).reshape(-1, shape[dim])
    for row in rows:
        assert abs(math.fsum(row) - 1.0) <= 2.0 ** -52  # each element within half an ulp: the sum within 1 ulp


def test_unnormalised_probabilities_are_plain_uniforms():
    target = make_tensor(TENSORS["target"], {"kind": "probabilities", "normalized": False}, 15, (50, 4), {})
    assert np.all((target >= 0) & (target < 1))
    assert not np.allclose(target.sum(axis=1), 1.0)


def test_one_hot_probabilities_have_one_one_per_row():
    target = make_tensor(TENSORS["target"], {"kind": "probabilities", "one_hot": True}, 16, (5, 4, 3), {})
    assert target.shape == (5, 4, 3)
    assert set(np.unique(target)) == {0.0, 1.0}
    assert np.array_equal(target.sum(axis=1), np.ones((5, 3)))


def test_log_probabilities_are_the_logs_of_normalised_probabilities():
    probabilities = make_tensor(TENSORS["target"], {"kind": "probabilities"}, 17, (6, 5), {})
    logs = make_tensor(TENSORS["target"], {"kind": "log_probabilities"}, 17, (6, 5), {})
    assert np.all(logs <= 0)
    assert ulp_distance(logs, np.log(probabilities)).max() <= 1  # numpy's log is within an ulp of mpmath's
    for row in logs:
        assert abs(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in row) - 1) < 1e-15


def test_log_probabilities_with_neg_inf():
    logs = make_tensor(TENSORS["target"], {"kind": "log_probabilities", "neg_inf": 0.2}, 17, (6, 5), {})
    assert (logs == -np.inf).sum() == 6 and np.all(logs[np.isfinite(logs)] <= 0)


def test_float_target_defaults_to_the_input_shape():
    assert make_tensor(TENSORS["target"], {}, 18, (3, 4), {}).shape == (3, 4)


# --- transforms --------------------------------------------------------------------------------------------------


def test_log_softmax_transform_normalises_each_row_in_mpmath():
    spec = {"shape": [4, 6, 3], "scale": 5}
    raw = make_tensor(TENSORS["input"], spec, 19)
    logs = make_tensor(TENSORS["input"], {**spec, "transform": "log_softmax"}, 19)
    assert logs.shape == raw.shape and np.all(logs <= 0)
    for i in range(4):
        for k in range(3):  # rows run along the class dim 1
            row, out = raw[i, :, k], logs[i, :, k]
            with mpmath.workprec(200):
                total = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in row))
                wanted = [float(mpmath.mpf(v) - total) for v in row]
            assert ulp_distance(out, wanted).max() <= 1


def test_softmax_transform_rows_sum_to_one_along_an_explicit_dim():
    probabilities = make_tensor(TENSORS["input"], {"shape": [3, 5], "transform": "softmax", "dim": 0, "scale": 4}, 20)
    assert np.all(probabilities > 0)
    for column in probabilities.T:
        assert abs(math.fsum(column) - 1) <= 4 * 2.0 ** -53


def test_log_softmax_transform_of_a_row_without_a_finite_maximum_is_nan():
    logs = make_tensor(TENSORS["input"], {"shape": [2, 3], "transform": "log_softmax", "dist": "constant", "value": "-inf"}, 0)
    assert np.all(np.isnan(logs))


# --- literal values ----------------------------------------------------------------------------------------------


def test_literal_values_accept_hex_floats_decimals_and_non_finite_strings():
    values = make_tensor(TENSORS["input"], {"values": [["0x1.8p+1", "-0x1p-1074", 0.1, "1e-3"], ["inf", "-inf", "nan", 2]]}, 0)
    assert values.dtype == np.float64 and values.shape == (2, 4)
    assert values[0, 0] == 3.0 and values[0, 1] == -5e-324 and values[0, 2] == 0.1 and values[0, 3] == 0.001
    assert values[1, 0] == np.inf and values[1, 1] == -np.inf and np.isnan(values[1, 2]) and values[1, 3] == 2.0


def test_literal_values_ignore_the_seed_and_a_0d_literal():
    assert np.array_equal(make_tensor(TENSORS["input"], {"values": [1, 2]}, 1), make_tensor(TENSORS["input"], {"values": [1, 2]}, 2))
    assert make_tensor(TENSORS["input"], {"values": 2.5}, 0).shape == ()


def test_literal_index_values_are_int64():
    target = make_tensor(TENSORS["target"], {"kind": "index", "values": [[0, 2], [1, -100]]}, 0, (2, 3, 2), {})
    assert target.dtype == np.int64 and target.tolist() == [[0, 2], [1, -100]]
    assert make_tensor(TENSORS["target"], {"dtype": "int32", "values": [1, 2]}, 0, (2, 3), {}).dtype == np.int32


@pytest.mark.parametrize("text, value", [("0x1.8p+1", 3.0), ("0X1P-2", 0.25), ("-0x1.0p0", -1.0), ("+inf", np.inf),
                                         (" -inf ", -np.inf), ("1.5e3", 1500.0), (7, 7.0), ("-0.0", -0.0)])
def test_parse_number(text, value):
    parsed = parse_number(text)
    assert parsed == value and math.copysign(1, parsed) == math.copysign(1, value)


# --- rounding to the dtype under test ----------------------------------------------------------------------------


def test_rounded_inputs_round_floats_and_keep_integers():
    arrays = make_inputs(ce_case())
    rounded = rounded_inputs(arrays, "float16")
    assert np.array_equal(rounded["input"], round_to(arrays["input"], "float16"))
    assert np.array_equal(rounded["input"], arrays["input"].astype(np.float16).astype(np.float64))
    assert rounded["target"].dtype == np.int64 and np.array_equal(rounded["target"], arrays["target"])
    assert np.array_equal(rounded_inputs(arrays, "float64")["input"], arrays["input"])


def test_grad_output_is_seeded_rounded_and_independent_of_the_inputs():
    first = make_grad_output(21, (4, 3), "bfloat16")
    assert np.array_equal(first, make_grad_output(21, (4, 3), "bfloat16"))
    assert np.array_equal(first, round_to(make_grad_output(21, (4, 3), "float64"), "bfloat16"))
    assert not np.array_equal(make_grad_output(22, (4, 3), "float64"), make_grad_output(21, (4, 3), "float64"))
    assert not np.array_equal(make_grad_output(21, (12,), "float64"), make_tensor(TENSORS["input"], {"shape": [12]}, 21))
