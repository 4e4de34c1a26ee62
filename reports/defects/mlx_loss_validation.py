"""MLX: two calls that its own rules, or any loss, should reject return a value (the suite:
cross_entropy/error-label_smoothing=nan, nll_loss/error-NC-C=0).

1. nn.losses.cross_entropy checks `if label_smoothing < 0 or label_smoothing >= 1: raise ValueError(...)`, which
   NaN passes (every comparison with NaN is false): the loss is computed with a NaN smoothing, every value NaN.
2. nn.losses.nll_loss on logits with no class (shape (3, 0)) gathers from an empty axis and returns 0
   (the read is out of bounds: "Indexing out of bounds is undefined behavior").
"""
import math

import mlx.core as mx
import mlx.nn as nn

mx.set_default_device(mx.cpu)
print("mlx", mx.__version__)
logits, targets = mx.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]]), mx.array([0, 2])
for smoothing in (1.5, -0.1, math.nan):
    try:
        print(f"cross_entropy label_smoothing={smoothing}:",
              nn.losses.cross_entropy(logits, targets, label_smoothing=smoothing, reduction="mean"))
    except ValueError as error:
        print(f"cross_entropy label_smoothing={smoothing}: raised ValueError: {error}")
print("nll_loss of (3, 0) logits, targets [0, 0, 0]:",
      nn.losses.nll_loss(mx.zeros((3, 0)), mx.array([0, 0, 0]), reduction="mean"))
