"""torch.compile: cross_entropy and nll_loss accept int32 and bool class indices, which eager torch rejects (the
suite: */error-NC-target-dtype=int32 and =bool, raises). The docs ask for int64 class indices; eager torch
raises "expected target dtype to be Long or Byte" for both, the compiled function returns a loss. (uint8, which
eager torch accepts, the compiled function rejects in gather's meta check: there it keeps to the docs.)
"""
import torch
import torch.nn.functional as F

x = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]], dtype=torch.float64)
print("torch", torch.__version__)
for dtype in (torch.int64, torch.int32, torch.bool, torch.uint8):
    target = torch.tensor([1, 0], dtype=dtype)
    for name, function in (("eager", F.cross_entropy), ("compiled", torch.compile(F.cross_entropy))):
        try:
            print(f"{str(dtype):12} {name:9} returned {function(x, target).item():.6f}")
        except Exception as error:  # noqa: BLE001 -- the point is which call raises
            print(f"{str(dtype):12} {name:9} raised {type(error).__name__}: {str(error).splitlines()[0][:70]}")
        torch._dynamo.reset()
