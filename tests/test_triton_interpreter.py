"""The Triton interpreter shims (conformance/backends/_triton_interpreter.py): the bfloat16 rounding they
install, checked against torch's and against hand values, and, where triton is installed, each shim on a small
kernel run by the interpreter in a fresh process (TRITON_INTERPRET is read when a kernel is decorated)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conformance.backends._triton_interpreter import bfloat16_bits, bfloat16_values


@pytest.mark.parametrize("value, expected", [
    (1.0, 0x3F80), (1 + 2 ** -8 + 2 ** -10, 0x3F81),  # above the tie: up (the interpreter truncated to 0x3F80)
    (1 + 2 ** -8, 0x3F80), (1 + 3 * 2 ** -8, 0x3F82),  # ties to even, down and up
    (float(np.nextafter(np.float32(2.0), np.float32(0))), 0x4000),  # the carry into the exponent
    (-0.0, 0x8000), (float("inf"), 0x7F80), (3.4e38, 0x7F80)])  # rounds to inf past bfloat16's largest
def test_bfloat16_rounding_by_hand(value, expected):
    assert int(bfloat16_bits(np.float32(value))) == expected


def test_bfloat16_rounding_matches_torch_and_round_trips():
    torch = pytest.importorskip("torch")
    values = np.random.default_rng(0).standard_normal(10_000).astype(np.float32) * 10.0 ** np.arange(-20, 20, 0.004)
    ours = bfloat16_bits(values)
    theirs = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(ours, theirs)
    assert np.array_equal(bfloat16_bits(bfloat16_values(ours)), ours)
    assert np.isnan(bfloat16_values(bfloat16_bits(np.float32("nan"))))


KERNELS = textwrap.dedent('''
    import os, numpy as np, torch, triton, triton.language as tl
    from conformance.backends._triton_interpreter import install
    install()
    from triton.language.extra import libdevice

    @triton.jit
    def scale_and_cap(x_ptr, out_ptr, bf_ptr, factor, cap, BLOCK: tl.constexpr):
        offsets = tl.arange(0, BLOCK)
        x = tl.load(x_ptr + offsets)
        factor = factor.to(tl.float32)  # a GPU passes a float argument as a float32 scalar
        tl.store(out_ptr + offsets, cap * libdevice.tanh(x * factor / cap))
        as_bf16 = x.to(tl.bfloat16)
        tl.store(bf_ptr + offsets, (as_bf16 * as_bf16).to(tl.float32))

    x = torch.tensor([1 + 2 ** -8 + 2 ** -10, 1.5, -3.0, 0.25] * 4)
    out, squares = torch.empty_like(x), torch.empty_like(x)
    scale_and_cap[(1,)](x, out, squares, 2.0, 5.0, BLOCK=16)
    wanted = 5.0 * torch.tanh(x * 2.0 / 5.0)
    rounded = x.to(torch.bfloat16)
    print(float((out - wanted).abs().max()), bool(torch.equal(squares, (rounded * rounded).float())))
''')


def test_the_shims_on_a_kernel_in_the_interpreter():
    pytest.importorskip("triton", reason='the interpreter shims need triton: pip install "loss-conformance[liger]"')
    environment = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run([sys.executable, "-c", KERNELS], capture_output=True, text=True, env=environment,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    error, bfloat16_products = result.stdout.split()
    assert float(error) < 1e-6, "softcap through the libdevice tanh shim"
    assert bfloat16_products == "True", "bfloat16 products computed in float32 and rounded once, as on a GPU"
