"""A first look at the oracle: certified values for a few documented calls, beside torch's where installed.

``loss-conformance demo`` shows each value the oracle certifies and, when torch is importable, how far torch's
float64 and float32 results on CPU are from it, in units of the dtype's unit roundoff u relative to the
oracle's scale (|error| / (u * scale)).
"""
import warnings

import mpmath
import numpy as np

import oracle

from .. import spec

UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24}


def _examples(rng):
    """(function, args, kwargs): the documented calls of each function's record."""
    return [(name, args, kwargs) for name in spec.FUNCTIONS for args, kwargs in spec.get(name).examples(rng)]


def _torch_errors(name, args, kwargs):
    """Worst |torch - oracle| / (u * scale) per dtype, or None when torch is not installed."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    errors = {}
    for dtype_name, u in UNIT_ROUNDOFF.items():
        dtype = getattr(torch, dtype_name)
        tensors = [torch.tensor(a).to(dtype) if a.dtype.kind == "f" else torch.tensor(a) for a in args]
        torch_kwargs = {k: torch.tensor(v, dtype=dtype) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        # The oracle is fed the values rounded to the dtype, so only torch's arithmetic is measured.
        rounded_args = [t.double().numpy() if t.is_floating_point() else t.numpy() for t in tensors]
        rounded_kwargs = {k: v.double().numpy() if isinstance(v, torch.Tensor) else v for k, v in torch_kwargs.items()}
        reference = oracle.certify(spec.get(name).oracle_functions()[0], *rounded_args, **rounded_kwargs)
        wanted = np.array([float(v) for v in reference.value.flat])
        scale = np.array([float(v) for v in reference.scale.flat])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = getattr(F, name)(*tensors, **torch_kwargs).double().numpy().ravel()
        errors[dtype_name] = float(np.max(np.abs(got - wanted) / (u * np.maximum(scale, np.abs(wanted)))))
    return errors


def run_demo(seed=0, prec=None):
    rng = np.random.default_rng(seed)
    print(f"oracle {oracle.__version__}: certified at {prec or oracle.DEFAULT_PREC} bits (checked at twice that)")
    header = f"{'call':72s} {'oracle value (first element)':>30s}  {'torch f64 [u]':>13s} {'torch f32 [u]':>13s}"
    print(header)
    print("-" * len(header))
    for name, args, kwargs in _examples(rng):
        certified = oracle.certify(spec.get(name).oracle_functions()[0], *args, prec=prec, **kwargs)
        first = certified.value.flat[0]
        call = f"{name}({', '.join(str(a.shape) for a in args)}{''.join(f', {k}=' + _short(v) for k, v in kwargs.items())})"
        errors = _torch_errors(name, args, kwargs)
        columns = ("torch not installed", "") if errors is None else (f"{errors['float64']:.2f}", f"{errors['float32']:.2f}")
        print(f"{call:72s} {mpmath.nstr(first, 20):>30s}  {columns[0]:>13s} {columns[1]:>13s}")
    return 0


def _short(value):
    return f"<{value.shape}>" if isinstance(value, np.ndarray) else repr(value)
