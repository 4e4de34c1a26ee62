"""round_to against independent conversions (numpy's float16/float32 casts, torch's bfloat16), and the formats."""
from fractions import Fraction

import numpy as np
import pytest

from conformance.spec.dtypes import DTYPES, FORMATS, float_format, round_to, rounded_by_formula


def same_values(a, b):
    """Equal elementwise, NaN where NaN, and the same sign of zero."""
    a, b = np.asarray(a), np.asarray(b)
    both_nan = np.isnan(a) & np.isnan(b)
    return both_nan | ((a == b) & (np.signbit(a) == np.signbit(b)))


def wide_sample(seed=20261122, n=40_000):
    """float64 values of every magnitude: random bit patterns, the neighbourhoods of every binade boundary of the
    small formats (subnormal, normal, overflow), midpoints (ties), signed zeros and non-finite values."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2 ** 64, size=n, dtype=np.uint64).view(np.float64)
    signs = np.where(rng.random(4 * n) < 0.5, -1.0, 1.0)
    spread = signs * np.ldexp(1.0 + rng.random(4 * n), rng.integers(-160, 130, size=4 * n))
    near_half = signs[:n] * np.ldexp(1.0 + rng.random(n), rng.integers(-27, 17, size=n))
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 5e-324, -5e-324, 1.7976931348623157e308,
               65504.0, 65519.99, 65520.0, 65519.999999999, 65536.0, -65520.0, 6e-8, 2.0 ** -24, 2.0 ** -25,
               3 * 2.0 ** -25, 2.0 ** -14, 2.0 ** -14 - 2.0 ** -25, 2.0 ** -149, 2.0 ** -150, 3 * 2.0 ** -150,
               2.0 ** -126, 3.4028234663852886e38, 3.4028235677973366e38, 3.40282357e38, 3.3895313892515355e38,
               3.3961e38, 1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 1 + 2.0 ** -24, 1 + 3 * 2.0 ** -24, 1 + 2.0 ** -8]
    # exact midpoints between neighbouring float16 / float32 values (ties), and one float64 step either side
    with np.errstate(over="ignore"):
        f16 = np.unique(np.abs(near_half.astype(np.float16).astype(np.float64)))
        f16_mid = (f16 + np.nextafter(f16.astype(np.float16), np.float16(np.inf)).astype(np.float64)) / 2
        f32 = np.unique(np.abs(spread[:n].astype(np.float32))).astype(np.float64)
        f32_mid = (f32 + np.nextafter(f32.astype(np.float32), np.float32(np.inf)).astype(np.float64)) / 2
    mids = np.concatenate([f16_mid, f32_mid])
    mids = mids[np.isfinite(mids)]
    return np.concatenate([bits, spread, near_half, special, mids, -mids, np.nextafter(mids, 0),
                           np.nextafter(mids, np.inf)])


SAMPLE = wide_sample()


@pytest.mark.parametrize("dtype, numpy_dtype", [("float16", np.float16), ("float32", np.float32)])
def test_round_to_matches_numpy_casts_on_a_wide_sample(dtype, numpy_dtype):
    with np.errstate(over="ignore", invalid="ignore"):
        wanted = SAMPLE.astype(numpy_dtype).astype(np.float64)
    got = round_to(SAMPLE, dtype)
    same = same_values(got, wanted)
    assert same.all(), f"{np.count_nonzero(~same)} differ, e.g. {SAMPLE[~same][:3]} -> {got[~same][:3]}"


def test_float32_by_cast_equals_the_formula_bit_for_bit():
    """round_to takes numpy's cast for float32 (faster); the formula, checked above against float16 casts and below
    against exact bfloat16 rounding, gives the same bits on the wide sample, NaN payloads included."""
    got, formula = round_to(SAMPLE, "float32"), rounded_by_formula(SAMPLE, FORMATS["float32"])
    assert np.array_equal(got.view(np.uint64), formula.view(np.uint64))


@pytest.mark.parametrize("value, rounded", [
    (65504.0, 65504.0), (65519.99, 65504.0), (65519.999999999, 65504.0), (65520.0, np.inf), (-65520.0, -np.inf),
    (1e300, np.inf), (1 + 2.0 ** -11, 1.0), (1 + 3 * 2.0 ** -11, 1 + 2.0 ** -9),  # ties to even
    (2.0 ** -25, 0.0), (-2.0 ** -25, -0.0), (3 * 2.0 ** -25, 2.0 ** -23), (2.0 ** -24, 2.0 ** -24),  # subnormal
    (2.0 ** -14 - 2.0 ** -25, 2.0 ** -14), (0.0, 0.0), (-0.0, -0.0), (np.inf, np.inf), (-np.inf, -np.inf)])
def test_float16_boundaries(value, rounded):
    assert same_values(round_to(np.array([value]), "float16"), [rounded]).all()


def test_nan_stays_nan_in_every_dtype():
    for dtype in DTYPES:
        assert np.isnan(round_to(np.array([np.nan, -np.nan]), dtype)).all()


def test_float64_is_a_copy():
    values = np.array([1.0, 2.0])
    rounded = round_to(values, "float64")
    assert rounded is not values and np.array_equal(rounded, values)


def test_round_to_keeps_the_shape_and_accepts_lists_and_scalars():
    assert round_to([[1.1, 2.2], [3.3, 4.4]], "float16").shape == (2, 2)
    assert round_to(0.1, "float32") == np.float64(np.float32(0.1))


def test_unknown_dtype_names_the_accepted_ones():
    with pytest.raises(ValueError, match="unknown dtype 'int8'; expected one of float64, float32, float16, bfloat16"):
        round_to([1.0], "int8")


def _bfloat16_from_bits(bits):
    return float(np.array([bits << 16], dtype=np.uint32).view(np.float32)[0])


def _exactly_nearest_bfloat16(value):
    """The nearest bfloat16 value to a finite float64 below the overflow threshold, ties to the even bit pattern,
    by exact rational arithmetic over the few bfloat16 values around float32(value)."""
    centre = int(np.array([value], dtype=np.float32).view(np.uint32)[0]) >> 16
    candidates = [(bits, _bfloat16_from_bits(bits)) for bits in range(max(centre - 2, 0), centre + 3)
                  if (bits & 0x7FFF) < 0x7F80 and ((bits ^ centre) & 0x8000) == 0]  # finite, the same sign
    candidates += [(0, 0.0), (0x8000, -0.0)]
    exact = Fraction(value)
    _, best = min(candidates, key=lambda c: (abs(Fraction(c[1]) - exact), c[0] & 1))
    return best


def test_round_to_bfloat16_matches_torch():
    torch = pytest.importorskip("torch")
    with np.errstate(over="ignore", invalid="ignore"):
        # torch converts float64 to bfloat16 through float32 (two roundings), so its reference input is the sample
        # rounded to float32 first; on those, one rounding to bfloat16 is all torch does
        sample32 = SAMPLE.astype(np.float32)
    wanted = torch.from_numpy(sample32).to(torch.bfloat16).to(torch.float64).numpy()
    got = round_to(sample32.astype(np.float64), "bfloat16")
    same = same_values(got, wanted)
    assert same.all(), f"{np.count_nonzero(~same)} differ, e.g. {sample32[~same][:3]} -> {got[~same][:3]}"


def test_round_to_bfloat16_of_float64_rounds_once():
    torch = pytest.importorskip("torch")
    wanted = torch.from_numpy(SAMPLE).to(torch.bfloat16).to(torch.float64).numpy()
    got = round_to(SAMPLE, "bfloat16")
    differ = ~same_values(got, wanted)
    # torch's float64 -> float32 -> bfloat16 differs only where the first rounding lands on a bfloat16 midpoint
    with np.errstate(over="ignore", invalid="ignore"):
        as32 = SAMPLE.astype(np.float32)
    midpoint = (as32.view(np.uint32) & 0xFFFF) == 0x8000
    assert not (differ & ~midpoint).any()
    finite = differ & np.isfinite(got) & (np.abs(SAMPLE) < 3.38e38)
    for value, rounded in zip(SAMPLE[finite][:200], got[finite][:200]):
        assert rounded == _exactly_nearest_bfloat16(value)


def test_round_to_bfloat16_is_the_exactly_nearest_value():
    rng = np.random.default_rng(5)
    finite = SAMPLE[np.isfinite(SAMPLE) & (np.abs(SAMPLE) < 3.38e38)]
    chosen = rng.choice(finite, size=400, replace=False)
    midpoints = np.array([float.fromhex("0x1.01p0"), float.fromhex("0x1.03p0"), float.fromhex("-0x1.01p-130"),
                          float.fromhex("0x1.0100000000001p0"), float.fromhex("0x1.00fffffffffffp0")])
    for value in np.concatenate([chosen, midpoints]):
        assert same_values(round_to(np.array([value]), "bfloat16"), [_exactly_nearest_bfloat16(value)]).all(), value


def test_ties_in_bfloat16_go_to_even():
    one_ulp = 2.0 ** -7
    values = np.array([1 + one_ulp / 2, 1 + 3 * one_ulp / 2, -(1 + one_ulp / 2)])
    assert same_values(round_to(values, "bfloat16"), [1.0, 1 + 2 * one_ulp, -1.0]).all()


@pytest.mark.parametrize("name, numpy_dtype", [("float64", np.float64), ("float32", np.float32),
                                               ("float16", np.float16)])
def test_format_constants_agree_with_numpy(name, numpy_dtype):
    fmt, info = float_format(name), np.finfo(numpy_dtype)
    assert fmt.unit_roundoff == float(info.eps) / 2
    assert fmt.smallest_normal == float(info.smallest_normal)
    assert fmt.largest == float(info.max)
    assert fmt.precision == info.nmant + 1


def test_format_constants_of_float16_and_bfloat16():
    half, brain = FORMATS["float16"], FORMATS["bfloat16"]
    assert (half.unit_roundoff, half.smallest_normal, half.largest) == (2.0 ** -11, 2.0 ** -14, 65504.0)
    assert brain.unit_roundoff == 2.0 ** -8
    assert brain.smallest_normal == 2.0 ** -126
    assert brain.largest == float.fromhex("0x1.fep+127")


def test_bfloat16_constants_agree_with_torch():
    torch = pytest.importorskip("torch")
    info, fmt = torch.finfo(torch.bfloat16), FORMATS["bfloat16"]
    assert fmt.unit_roundoff == info.eps / 2
    assert fmt.smallest_normal == info.smallest_normal
    assert fmt.largest == info.max


def test_largest_is_the_last_value_before_overflow():
    for name in ("float32", "float16", "bfloat16"):
        fmt = FORMATS[name]
        assert round_to(np.array([fmt.largest]), name)[0] == fmt.largest
        half_ulp = 2.0 ** (fmt.max_exponent - fmt.precision)
        assert round_to(np.array([fmt.largest + half_ulp]), name)[0] == np.inf  # the tie rounds up to even: inf
        assert round_to(np.array([fmt.largest + half_ulp * 0.999]), name)[0] == fmt.largest
