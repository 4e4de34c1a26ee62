"""torch: the backward of nll_loss on a non-contiguous 4-dim input raises "grad_input must be contiguous" (the
suite: nll_loss/layout-channels_last-NCHW-mean, grad_input.value, every dtype; pytorch#175084).

nll_loss_nd sends a 4-dim input (N, C, H, W) to nll_loss2d without .contiguous() (the 3-dim and 5-dim+ paths make
it contiguous first), and nll_loss2d's CPU backward allocates grad_input like the input (channels-last here) and
then requires it to be contiguous. The forward value is right; cross_entropy is not affected (its log_softmax
output is contiguous). A channels-last (or permuted) input is a valid torch tensor of the documented shape.
"""
import torch
import torch.nn.functional as F

print("torch", torch.__version__)
x = torch.randn(2, 7, 3, 4, dtype=torch.float64).log_softmax(1)
target = torch.randint(0, 7, (2, 3, 4))
for name, layout in (("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last)):
    leaf = x.clone(memory_format=layout).requires_grad_()
    loss = F.nll_loss(leaf, target)
    try:
        loss.backward()
        print(f"{name:14} loss {loss.item():.6f} backward ok, gradient sum {leaf.grad.sum().item():.6f}")
    except RuntimeError as error:
        print(f"{name:14} loss {loss.item():.6f} backward raised RuntimeError: {error}")
