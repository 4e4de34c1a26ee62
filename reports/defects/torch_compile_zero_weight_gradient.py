"""torch.compile: the gradient of nll_loss 'mean' with total weight 0 is NaN in every entry (the suite:
nll_loss/NC-mean-w=allzero-ii=-100, NCd1-..., NC-mean-w=sum0-literal; grad_input.nonfinite, every dtype).

The loss is 0/0 = NaN. The loss reads only the target entries, so the others have derivative 0: eager torch
scatters g / total_weight into the target entries and leaves the rest 0, as the oracle does. The compiled
backward forms (g / total_weight) * w * one_hot densely, and NaN * 0 = NaN reaches every entry.
"""
import torch
import torch.nn.functional as F

x = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]], dtype=torch.float64)
target = torch.tensor([1, 0])
weight = torch.zeros(3, dtype=torch.float64)
print("torch", torch.__version__)
for name, function in (("eager", F.nll_loss), ("compiled", torch.compile(F.nll_loss))):
    leaf = x.clone().requires_grad_()
    loss = function(leaf, target, weight=weight)
    loss.backward()
    print(f"{name:9} loss {loss.item()} gradient {leaf.grad.tolist()}")
print("expected  gradient NaN at the target entries (0, 1) and (1, 0), 0 elsewhere")
