"""Shims that make Triton's CPU interpreter (TRITON_INTERPRET=1) compute what a GPU computes, for running real
Triton kernels on a CPU-only machine (docs/extensions.md, "Liger-Kernel on the CPU").

Measured on triton 3.9.0's interpreter (tests/test_triton_interpreter.py keeps each):
- a float32 -> bfloat16 cast truncates (``1 + 2**-8 + 2**-10`` becomes 1.0; a GPU's ``cvt.rn`` gives
  1.0078125), and its "round to nearest even" mode rounds ties up and does not carry into the exponent;
- arithmetic on bfloat16 operands runs on their uint16 storage (bfloat16 1.5 * 2.0 is integer multiplication of
  the bit patterns), where a GPU computes in float32 and rounds once;
- a Python float passed as a scalar argument stays a float, so a kernel's ``x.to(tl.float32)`` fails, where a GPU
  gets a float32 scalar;
- libdevice functions are stubs that return None (``tanh``, which softcapping kernels call).
``install()`` replaces those four operations (once per process, idempotent); nothing else of the interpreter
changes. Importing this module needs triton; it is imported only by the adapters that run Triton kernels.
"""
import numpy as np

_INSTALLED = []


def bfloat16_bits(values):
    """float32 values as bfloat16 bit patterns (uint16), rounded to nearest, ties to even; NaN stays NaN."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(values, dtype=np.float32))
    return np.where(nan, np.uint16(0x7FC0) | ((bits >> 16).astype(np.uint16) & np.uint16(0x8000)), rounded)


def bfloat16_values(bits):
    """bfloat16 bit patterns (uint16) as float32 values (exact)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def install():
    """Patch the interpreter's builder: round-to-nearest bfloat16 casts, bfloat16 arithmetic in float32, and float
    scalar arguments as float32. Returns the patched builder class."""
    from triton.runtime import interpreter

    builder = interpreter.InterpreterBuilder
    if _INSTALLED:
        return builder
    tl = interpreter.tl
    cast_impl, binary_op = builder.cast_impl, builder.binary_op

    def cast(self, src, dst_type):
        source, target = src.dtype.scalar, dst_type.scalar
        if source == tl.float32 and target == tl.bfloat16:
            return interpreter.TensorHandle(bfloat16_bits(src.data), target)
        if source == tl.bfloat16 and target == tl.float32:
            return interpreter.TensorHandle(bfloat16_values(src.data), target)
        return cast_impl(self, src, dst_type)

    def arithmetic(self, lhs, rhs, op):
        if lhs.dtype.scalar == tl.bfloat16 and rhs.dtype.scalar == tl.bfloat16:
            as_float = op(bfloat16_values(lhs.data), bfloat16_values(rhs.data))
            if as_float.dtype == np.float32:  # an arithmetic result; comparisons stay booleans
                return interpreter.TensorHandle(bfloat16_bits(as_float), tl.bfloat16)
            return interpreter.TensorHandle(as_float, tl.int1)
        return binary_op(self, lhs, rhs, op)

    builder.cast_impl, builder.binary_op = cast, arithmetic
    _float_scalars(interpreter)
    _libdevice_tanh(interpreter)
    _INSTALLED.append(True)
    return builder


def _libdevice_tanh(interpreter):
    """libdevice's tanh, a stub that returns None in the interpreter, as numpy's tanh in the operand's dtype (a
    GPU's libdevice tanh is within 2 ulp of it). Kernels bind it at import: install() before importing them."""
    from triton.language.extra import libdevice

    def tanh(x, **_):
        data = x.handle.data
        return interpreter.tl.tensor(interpreter.TensorHandle(np.tanh(data).astype(data.dtype), x.handle.dtype),
                                     x.type)

    libdevice.tanh = tanh


def _float_scalars(interpreter):
    """A Python float argument becomes a float32 scalar tensor, as the GPU launcher passes it."""
    implicit = interpreter._implicit_cvt

    def convert(arg):
        if isinstance(arg, float):
            return interpreter.tl.tensor(interpreter.TensorHandle(np.array([arg], dtype=np.float32),
                                                                  interpreter.tl.float32), interpreter.tl.float32)
        return implicit(arg)

    interpreter._implicit_cvt = convert
