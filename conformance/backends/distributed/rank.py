"""One rank of a vocab-parallel world: ``python -m conformance.backends.distributed.rank``.

It is started with torchrun's environment variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), by the
coordinator (world.py) or by any launcher that sets them, torchrun across machines included, and with
LOSS_CONFORMANCE_COORDINATOR (host:port) and LOSS_CONFORMANCE_AUTHKEY (hex) saying where its calls come from. It
joins the process group (``gloo`` on the CPU, ``nccl`` on CUDA), loads the implementation, and answers each
request with its rank's loss and gradient shard. A rank whose coordinator is gone exits, even while blocked in a
collective.
"""
import os
import sys
import threading
import time
from datetime import timedelta
from multiprocessing.connection import Client

import numpy as np

from ..torch_backend import exact_tensor, read_tensor, same_bits

COORDINATOR_VARIABLE, AUTHKEY_VARIABLE = "LOSS_CONFORMANCE_COORDINATOR", "LOSS_CONFORMANCE_AUTHKEY"
SPAWNED_VARIABLE = "LOSS_CONFORMANCE_SPAWNED"  # set by the coordinator that started this rank
CONNECT_PATIENCE_S = 300.0


def _watch():
    """Exit when the coordinator that started this rank is gone: the main thread may be blocked in a collective
    that will never complete, and an orphaned rank must not outlive its run."""
    def watch():
        parent = os.getppid()
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(3)

    if os.environ.get(SPAWNED_VARIABLE):
        threading.Thread(target=watch, daemon=True).start()


def _tensor(torch, array, dtype, padding, fill):
    """A fresh tensor of the values in ``dtype``, ``padding`` columns of ``fill`` appended on the last axis."""
    tensor = exact_tensor(np.asarray(array, dtype=np.float64), dtype)
    if padding:
        tensor = torch.cat([tensor, torch.full(tensor.shape[:-1] + (padding,), fill, dtype=tensor.dtype)], -1)
    return tensor


def answer(torch, implementation, request, group, device):
    """{"value", "dtype", "grad", "grad_dtype", "padding_grad", "error", "grad_error", "unsupported", "modified"}
    of one request on this rank; the implementation's failures are results, never exceptions."""
    shard, dtype = request["shard"], request["dtype"]
    logits = _tensor(torch, request["logits"], dtype, shard.padding, float("-inf")).to(device)
    target = torch.from_numpy(np.array(request["target"])).to(device)
    weight = None if request["weight"] is None else _tensor(torch, request["weight"], dtype, shard.padding, 0.0)
    weight = None if weight is None else weight.to(device)
    wants_grad = request["grad_output"] is not None
    logits.requires_grad_(wants_grad)
    given = {"input": logits.detach().clone(), "target": target.clone()}
    if weight is not None:
        given["weight"] = weight.clone()
    reply = {"error": None, "grad_error": None, "unsupported": None}
    try:
        loss = implementation.cross_entropy(logits, target, shard=shard, group=group, weight=weight,
                                            **request["kwargs"])
        reply["value"], reply["dtype"] = read_tensor(loss)
    except NotImplementedError as error:
        reply["unsupported"] = (type(error).__name__, str(error))
        return reply
    except Exception as error:  # noqa: BLE001 -- the implementation failed: its result on this rank
        reply["error"] = (type(error).__name__, str(error))
    if reply["error"] is None and wants_grad:
        _backward(torch, logits, loss, request, reply)
    now = {"input": logits, "target": target, "weight": weight}
    reply["modified"] = [name for name, before in given.items() if not same_bits(now[name], before)]
    return reply


def _backward(torch, logits, loss, request, reply):
    shard = request["shard"]
    try:
        upstream = np.asarray(request["grad_output"], dtype=np.float64).reshape(loss.shape)
        grad_output = torch.tensor(upstream, dtype=torch.float64).to(dtype=loss.dtype, device=loss.device)
        (grad,) = torch.autograd.grad(loss, [logits], grad_output, allow_unused=True)
        grad = torch.zeros_like(logits) if grad is None else grad
        values, reply["grad_dtype"] = read_tensor(grad)
        reply["grad"], reply["padding_grad"] = values[..., :shard.classes], values[..., shard.classes:]
    except Exception as error:  # noqa: BLE001
        reply["grad_error"] = (type(error).__name__, str(error))


def _join(torch, device, seconds):
    """The default process group of this rank, from torchrun's variables; gloo on the CPU, nccl on CUDA."""
    import torch.distributed as dist

    if device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", init_method="env://",
                            timeout=timedelta(seconds=seconds))
    return dist.group.WORLD


def serve(connection):
    """Join the world the coordinator's first message describes, then answer its requests until "stop"."""
    _, spec, device, group_timeout = connection.recv()  # ("setup", spec, device, seconds)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    try:
        import torch

        from .contract import load_implementation

        torch.set_num_threads(1)  # R ranks share the machine's cores
        group = _join(torch, device, group_timeout)
        implementation = load_implementation(spec)
        setup = getattr(implementation, "setup", None)
        if callable(setup):
            setup(group=group, rank=rank, world_size=world_size)
    except BaseException as error:  # noqa: BLE001 -- say why, then stop: the coordinator reports it
        connection.send(("fatal", rank, f"{type(error).__name__}: {error}"))
        return
    connection.send(("ready", rank, os.getpid()))
    while True:
        message = connection.recv()
        if message[0] == "stop":
            return
        connection.send(("reply", message[1], answer(torch, implementation, message[2], group, device)))


def _connect(address, authkey, patience=CONNECT_PATIENCE_S):
    """A connection to the coordinator, retried while it is not yet listening (a launcher may start the ranks
    first); SystemExit with one line when it never answers."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return Client(address, authkey=authkey)
        except (ConnectionRefusedError, FileNotFoundError):
            if time.monotonic() > deadline:
                raise SystemExit(f"no loss-conformance coordinator at {address[0]}:{address[1]} within "
                                 f"{patience:g} s") from None
            time.sleep(0.5)


def main():
    _watch()  # first: a coordinator may die while this rank is still starting
    host, _, port = os.environ[COORDINATOR_VARIABLE].rpartition(":")
    # A coordinator that started this rank listened before it did: a refusal means it is gone; a launcher's ranks
    # may come up before their coordinator and wait for it
    patience = 0.0 if os.environ.get(SPAWNED_VARIABLE) else CONNECT_PATIENCE_S
    connection = _connect((host, int(port)), bytes.fromhex(os.environ[AUTHKEY_VARIABLE]), patience)
    connection.send(("hello", int(os.environ["RANK"]), os.getpid()))
    try:
        serve(connection)
    except (EOFError, OSError, KeyboardInterrupt):  # the coordinator is gone
        pass
    finally:
        sys.stdout.flush()
        os._exit(0)  # no process-group teardown: a peer may be gone, and gloo's destructor would wait for it


if __name__ == "__main__":
    main()
