"""The huge tier's comparison: every element judged by the suite's own checks, without a float64 copy of the whole.

A row of a kind that holds the same bits as the kind's first row has the same errors as that row (the checks are
elementwise functions of the value and the certified one, which is the kind's): the first rows are checked in
full, then a pass over the tensor, a chunk of rows at a time, compares each row's bits with its kind's first row
and checks in full only the rows that differ. The counts (n, bad) are those of every element all the same.
"""
import numpy as np

from ..expected.calls import Wanted
from ..verdict.compare import CheckResult, check_result_dtype, compare_array, element_checks
from .tensors import row_chunks

CHUNK_ELEMENTS = 1 << 24  # a chunk: 32 MiB of a 16-bit tensor; 128 MiB as float64 where its rows are checked


def _rows_of(wanted, kinds_of_rows):
    return Wanted(wanted.hi[kinds_of_rows], wanted.lo[kinds_of_rows], wanted.scale[kinds_of_rows])



class Tally:
    """The checks of parts of a tensor, each part standing for ``weight`` copies of itself, merged into one
    CheckResult per check: counts summed, the largest error with its (row, class), the first failure's listing."""

    def __init__(self):
        self.parts = {}

    def add(self, results, weight, rows):
        for result in results:
            self.parts.setdefault(result.check, []).append((result, int(weight), np.asarray(rows)))

    def merged(self):
        return [self._merge(check, parts) for check, parts in self.parts.items()]

    @staticmethod
    def _merge(check, parts):
        merged = CheckResult(check, "passed", n=sum(r.n * w for r, w, _ in parts),
                             bad=sum(r.bad * w for r, w, _ in parts))
        measured = [(r, rows) for r, w, rows in parts if r.error_u is not None and w]
        if measured:
            worst, rows = max(measured, key=lambda part: part[0].error_u)
            merged.error_u, merged.budget_u, merged.grade = worst.error_u, worst.budget_u, worst.grade
            merged.max_abs = max((r.max_abs for r, _ in measured if r.max_abs is not None), default=None)
            merged.max_rel = max((r.max_rel for r, _ in measured if r.max_rel is not None), default=None)
            if worst.worst:
                local = worst.worst["index"]
                merged.worst = {**worst.worst, "index": [int(rows[local[0]])] + local[1:]}
        failed = [(r, w, rows) for r, w, rows in parts if r.status == "failed" and w]
        if failed:
            result, weight, rows = failed[0]
            shown = ", ".join(str(int(r)) for r in rows[:8]) + (", ..." if len(rows) > 8 else "")
            alike = f", standing for {weight} rows of its kind with the same bits" if weight > 1 else ""
            merged.status = "failed"
            merged.message = (f"{merged.bad} bad elements of {merged.n}. First failing rows checked: {shown}{alike} "
                              f"(positions below are (i, class), i counting those rows):\n{result.message}")
        return merged


def _row(tensor, class_dim, row):
    view = tensor.movedim(class_dim, -1)
    return view[np.unravel_index(row, tuple(view.shape[:-1]))]


def compare_rows(torch, tensor, expected_shape, class_dim, wanted, kinds, dtype, budget, prefix=""):
    """The checks of a tensor of the logits' shape (log-probabilities, an input gradient) against its kinds'
    certified rows ``wanted`` ((K, C)), as compare_array's: shape, dtype, NaN/inf pattern, value, relative."""
    shape_check = CheckResult(f"{prefix}shape", "passed", n=1)
    if tuple(tensor.shape) != tuple(expected_shape):
        shape_check = CheckResult(f"{prefix}shape", "failed", f"shape {tuple(tensor.shape)}, but should be "
                                  f"{tuple(expected_shape)}", n=1, bad=1)
    results = [shape_check, check_result_dtype(str(tensor.dtype).removeprefix("torch."), dtype, f"{prefix}dtype")]
    if shape_check.status != "passed":
        return results
    bits = {2: torch.int16, 4: torch.int32, 8: torch.int64}[tensor.element_size()]
    firsts = kinds.first_rows()
    first_bits = torch.stack([_row(tensor, class_dim, int(r)) for r in firsts]).view(bits)
    tally, same_counts = Tally(), np.zeros(len(firsts), dtype=np.int64)
    chunk_rows = max(1, CHUNK_ELEMENTS // wanted.hi.shape[-1])
    for first, chunk in row_chunks(tensor.detach(), class_dim, chunk_rows):
        kinds_here = kinds.pattern[first:first + chunk.shape[0]]
        same = (chunk.view(bits) == first_bits[torch.from_numpy(kinds_here).to(chunk.device)]).all(dim=1)
        same = same.cpu().numpy()
        same_counts += np.bincount(kinds_here[same], minlength=len(firsts))
        differing = np.flatnonzero(~same)
        if differing.size:
            got = chunk[torch.from_numpy(differing).to(chunk.device)].to(torch.float64).cpu().numpy()
            tally.add(element_checks(got, _rows_of(wanted, kinds_here[differing]), dtype, budget, prefix), 1,
                      first + differing)
    for kind, row in enumerate(firsts):
        got = _row(tensor, class_dim, int(row)).detach().to(torch.float64).cpu().numpy()[None]
        tally.add(element_checks(got, _rows_of(wanted, [kind]), dtype, budget, prefix), same_counts[kind], [row])
    return results + tally.merged()


def compare_losses(torch, tensor, wanted, kinds, shape, dtype, budget, result_dtype):
    """The checks of a cross_entropy loss: a 'none' loss of the positions' shape against its kinds' values, or a
    reduced one against the certified scalar."""
    if wanted.hi.ndim:
        wanted = Wanted(*(part[kinds.pattern].reshape(shape) for part in wanted))
    got = tensor.detach().to(torch.float64).cpu().numpy()
    return compare_array(got, str(tensor.dtype).removeprefix("torch."), wanted, dtype, budget,
                         result_dtype=result_dtype)
