"""The tasks a worker pool has still to run, handed out so that each worker keeps to cases of one shape.

A framework that compiles per shape (XLA under JAX, inductor under torch.compile) compiles each distinct program
once per process: when cases of one function on the same input shapes go to different workers, every worker
compiles them. So the tasks are grouped by ``affinity`` (the first input's shape) and a worker takes the
next task of its own group first, then the first group no other worker holds, and only then steals from the
tail of the largest group. Measured (JAX, float32 softmax, log_softmax and cross_entropy, two workers, an empty
compilation cache): 63.6 s handed out in corpus order, 44.6 s grouped.

Returned work (the rest of a case whose worker failed, a pair to re-run alone) goes first, to any worker; a
re-run only to a fresh one (isolation.py).
"""
from collections import OrderedDict, deque


def affinity(case):
    """The group of a case: the shape of its first input (the logits, the input of kl_div, the hidden states of
    linear_cross_entropy), which fixes the shapes most of a loss's operations work on, whatever the function:
    grouping by it ran the float32 softmax, log_softmax and cross_entropy cases on JAX in 44.6 s; by function,
    form and every input's shape in 50.4 s."""
    _, spec = next(iter(case.inputs.items()))
    return repr(spec.get("shape", spec.get("values")) if isinstance(spec, dict) else spec)


class TaskQueue:
    """(case, dtypes, rerun) tasks by affinity group, in the order the groups first appear."""

    def __init__(self, tasks=()):
        self.returned = deque()
        self.groups = OrderedDict()
        for case, dtypes, rerun in tasks:
            self.groups.setdefault(affinity(case), deque()).append((case, dtypes, rerun))

    def __bool__(self):
        return bool(self.returned or self.groups)

    def appendleft(self, task):
        """Work handed back: run before the rest."""
        self.returned.appendleft(task)

    def take(self, reruns, own, held):
        """The next task for a worker whose group is ``own`` while other workers hold the groups ``held``
        (re-runs only when ``reruns``), or None."""
        index = next((i for i, task in enumerate(self.returned) if reruns or not task[2]), None)
        if index is not None:
            task = self.returned[index]
            del self.returned[index]
            return task
        if not self.groups:
            return None
        if own not in self.groups:
            own = next((key for key in self.groups if key not in held), None)
        if own is not None:
            return self._pop(own, self.groups[own].popleft)
        largest = max(self.groups, key=lambda key: len(self.groups[key]))
        return self._pop(largest, self.groups[largest].pop)  # its tail: the worker holding it keeps its front

    def _pop(self, key, pop):
        task = pop()
        if not self.groups[key]:
            del self.groups[key]
        return task
