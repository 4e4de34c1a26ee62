"""PNG plots of a results file: the error distribution in units of the budget, and the worst error against size.

Both plots measure a value check by error_u / budget_u over the statuses passed, failed and xpassed (the same
checks as the summary's worst error); xfailed checks are declared deviations and are left out. matplotlib is
imported inside the drawing functions so that importing this module stays cheap.
"""
import io
import math
from collections import defaultdict

from ..verdict.results import MEASURED
from ..corpus.resources import write_atomic

RATIO_FLOOR = 1e-4  # ratios below this, exact results (0) included, are drawn at the floor of the log axis
RATIO_CAP = 1e3  # the axis ends here at most: one wild outlier must not squeeze the region around the budget
EMPTY_SIZE_AT = 0.5  # where an input of 0 elements is drawn on the log size axis
FIGURE_DPI = 100
DTYPE_COLOURS = {"float64": "#1f77b4", "float32": "#2ca02c", "float16": "#d62728", "bfloat16": "#9467bd"}
SPARE_COLOURS = ("#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
DISTRIBUTION_PNG = "error-distribution.png"
SIZE_PNG = "error-vs-size.png"


def budget_ratio(record):
    """error_u / budget_u of a measured value check (inf for a NaN or infinite error), or None for any other."""
    error, budget = record.get("error_u"), record.get("budget_u")
    if record.get("status") not in MEASURED or error is None or not budget or budget <= 0:
        return None
    ratio = error / budget
    return math.inf if math.isnan(ratio) else ratio


def ratios_by_function(records):
    """{function: {dtype: [ratio, ...]}} over the measured value checks, in record order."""
    ratios = defaultdict(lambda: defaultdict(list))
    for record in records:
        ratio = budget_ratio(record)
        if ratio is not None:
            ratios[record["function"]][record["dtype"]].append(ratio)
    return {function: dict(by_dtype) for function, by_dtype in ratios.items()}


def worst_by_case(records):
    """({function: {dtype: [(size, worst ratio), ...]}}, the number of (case, dtype) pairs without a size).

    The worst ratio of a (case, dtype) pair is the largest over its measured value checks; pairs with none are
    not counted at all.
    """
    worst, sizes = {}, {}
    for record in records:
        ratio = budget_ratio(record)
        if ratio is None:
            continue
        key = (record["function"], record["case"], record["dtype"])
        worst[key] = max(worst.get(key, ratio), ratio)
        if isinstance(record.get("size"), (int, float)):
            sizes[key] = record["size"]
    points = defaultdict(lambda: defaultdict(list))
    for key, ratio in worst.items():
        if key in sizes:
            points[key[0]][key[2]].append((sizes[key], ratio))
    unsized = sum(key not in sizes for key in worst)
    return {function: dict(by_dtype) for function, by_dtype in points.items()}, unsized


def dtype_colour(dtype, dtypes):
    """A fixed colour per known dtype, so every report draws float16 in the same colour."""
    if dtype in DTYPE_COLOURS:
        return DTYPE_COLOURS[dtype]
    unknown = sorted(d for d in dtypes if d not in DTYPE_COLOURS)
    return SPARE_COLOURS[unknown.index(dtype) % len(SPARE_COLOURS)]


def ordered_dtypes(dtypes):
    """Known dtypes from widest to narrowest, then any others alphabetically."""
    known = [d for d in DTYPE_COLOURS if d in dtypes]
    return known + sorted(d for d in dtypes if d not in DTYPE_COLOURS)


class RatioAxis:
    """The log axis of error / budget shared by the panels of one plot.

    It runs from RATIO_FLOOR to ``top``, the power of ten above the largest finite ratio, at least 10 and at most
    RATIO_CAP; ratios beyond ``top`` and non-finite ones (off the scale) are drawn at ``edge``, 3x further out.
    """

    def __init__(self, ratios):
        finite = [r for r in ratios if math.isfinite(r)]
        largest = max(10.0, 1.5 * max(finite, default=0.0))
        self.top = min(10.0 ** math.ceil(math.log10(largest)), RATIO_CAP)
        self.off_scale = sum(self.is_off_scale(r) for r in ratios)
        self.edge = 3 * self.top if self.off_scale else self.top
        self.limits = (RATIO_FLOOR / 1.5, self.edge * 1.5)

    def is_off_scale(self, ratio):
        return not math.isfinite(ratio) or ratio > self.top

    def place(self, ratio):
        """Where a ratio is drawn: clipped to the floor below, to the edge when off the scale."""
        return self.edge if self.is_off_scale(ratio) else max(ratio, RATIO_FLOOR)

    def off_scale_text(self):
        return f"beyond {self.top:g} or non-finite"


def _panel_grid(count):
    """A Figure with one axes per function (up to 3 per row), and the axes in reading order."""
    from matplotlib.figure import Figure

    columns = max(1, min(3, count))
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(max(4.6 * columns, 7.0), 3.6 * rows + 0.9), dpi=FIGURE_DPI, layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel().tolist()
    for spare in axes[count:]:
        spare.set_axis_off()
    return figure, axes[:count] or axes[:1]


def _title(figure, text):
    """A figure title wrapped to the figure's width (about 11 characters per inch at the default font size)."""
    import textwrap

    figure.suptitle(textwrap.fill(text, width=int(figure.get_figwidth() * 11)))


def _no_data(axes, text):
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="#555555")
    axes.set_xticks([])
    axes.set_yticks([])


def _mark_off_scale(axes, axis, vertical):
    """A dotted line at the edge where off-scale errors are drawn, labelled so it is not read as a value."""
    style = {"color": "#777777", "linestyle": ":", "linewidth": 1.2}
    if vertical:
        axes.axvline(axis.edge, **style)
        axes.text(axis.edge, 0.5, axis.off_scale_text() + " ", rotation=90, ha="right", va="center",
                  color="#555555", fontsize="small", transform=axes.get_xaxis_transform())
    else:
        axes.axhline(axis.edge, **style)
        axes.text(0.01, axis.edge, " " + axis.off_scale_text(), ha="left", va="top", color="#555555",
                  fontsize="small", transform=axes.get_yaxis_transform())


def _style_ratio_axes(axes, function, axis, vertical):
    """What both plots share: log scales, the floor band, the budget line (vertical: ratio on x), title, grid."""
    axes.set_xscale("log")
    if vertical:
        axes.set_xlim(*axis.limits)
        axes.axvspan(axis.limits[0], RATIO_FLOOR, color="#e8e8e8", zorder=0)
        axes.axvline(1.0, color="black", linestyle="--", linewidth=1.0)
    else:
        axes.set_yscale("log")
        axes.set_ylim(*axis.limits)
        axes.axhspan(axis.limits[0], RATIO_FLOOR, color="#e8e8e8", zorder=0)
        axes.axhline(1.0, color="black", linestyle="--", linewidth=1.0)
    axes.set_title(function)
    axes.grid(True, which="major", alpha=0.3)


def _ecdf_panel(axes, function, by_dtype, axis, all_dtypes):
    """Draw one function's ECDF per dtype on the log ratio axis, with the budget line at 1."""
    for dtype in ordered_dtypes(by_dtype):
        ratios = by_dtype[dtype]
        values = sorted(axis.place(r) for r in ratios)
        fractions = [(i + 1) / len(values) for i in range(len(values))]
        zeros, off_scale = sum(r == 0 for r in ratios), sum(axis.is_off_scale(r) for r in ratios)
        extra = "".join([f", {zeros} exact" if zeros else "", f", {off_scale} off scale" if off_scale else ""])
        axes.step([RATIO_FLOOR, *values], [0.0, *fractions], where="post", linewidth=1.6,
                  color=dtype_colour(dtype, all_dtypes), label=f"{dtype} (n={len(values)}{extra})")
    _style_ratio_axes(axes, function, axis, vertical=True)
    if any(axis.is_off_scale(r) for rs in by_dtype.values() for r in rs):
        _mark_off_scale(axes, axis, vertical=True)
    axes.set_ylim(0.0, 1.02)
    axes.set_xlabel(f"error / budget (log; 0 to {RATIO_FLOOR:g} drawn at {RATIO_FLOOR:g})")
    axes.set_ylabel("fraction of value checks \u2264 x")
    axes.legend(loc="best", fontsize="small")  # failing backends fill other corners than passing ones


def draw_error_distribution(records, path):
    """Write the ECDF of error / budget per function and dtype as a PNG at path.

    Returns (the number of checks drawn, the RatioAxis used).
    """
    ratios = ratios_by_function(records)
    axis = RatioAxis([r for by_dtype in ratios.values() for rs in by_dtype.values() for r in rs])
    all_dtypes = {d for by_dtype in ratios.values() for d in by_dtype}
    figure, panels = _panel_grid(len(ratios))
    for axes, function in zip(panels, sorted(ratios)):
        _ecdf_panel(axes, function, ratios[function], axis, all_dtypes)
    if not ratios:
        _no_data(panels[0], "no measured value checks in this file")
    _title(figure, "Distribution of value-check errors in units of their budget (dashed line: the budget)")
    save_png(figure, path)
    return sum(len(rs) for by_dtype in ratios.values() for rs in by_dtype.values()), axis


def _size_panel(axes, function, by_dtype, axis, all_dtypes):
    """Draw one function's worst ratio per (case, dtype) against input size; off-scale ones as triangles."""
    for dtype in ordered_dtypes(by_dtype):
        placed = [(size if size > 0 else EMPTY_SIZE_AT, axis.place(ratio), axis.is_off_scale(ratio))
                  for size, ratio in by_dtype[dtype]]
        for marker, off_scale in (("o", False), ("^", True)):
            chosen = [(x, y) for x, y, off in placed if off == off_scale]
            if chosen:
                axes.scatter([x for x, _ in chosen], [y for _, y in chosen], s=40 if off_scale else 16,
                             marker=marker, alpha=0.6, color=dtype_colour(dtype, all_dtypes), edgecolors="none")
    _style_ratio_axes(axes, function, axis, vertical=False)
    if any(axis.is_off_scale(r) for ps in by_dtype.values() for _, r in ps):
        _mark_off_scale(axes, axis, vertical=False)
    axes.set_xlabel(f"elements of the input (log; empty inputs drawn at {EMPTY_SIZE_AT:g})")
    axes.set_ylabel(f"worst error / budget (log; 0 at {RATIO_FLOOR:g})")


def _dtype_legend(figure, points, axis, all_dtypes):
    """One legend below the panels: a circle per dtype with its (case, dtype) pairs, and the off-scale marker."""
    from matplotlib.lines import Line2D

    def proxy(marker, colour):
        return Line2D([], [], linestyle="none", marker=marker, markersize=7, color=colour, alpha=0.8)

    handles, labels = [], []
    for dtype in ordered_dtypes(all_dtypes):
        pairs = sum(len(by_dtype.get(dtype, ())) for by_dtype in points.values())
        handles.append(proxy("o", dtype_colour(dtype, all_dtypes)))
        labels.append(f"{dtype} ({pairs} case{'s' if pairs != 1 else ''})")
    if axis.off_scale:
        handles.append(proxy("^", "#777777"))
        labels.append(f"error {axis.off_scale_text()} (drawn at the top)")
    if handles:
        figure.legend(handles, labels, loc="outside lower center", ncols=len(handles))


def draw_error_vs_size(records, path):
    """Write the worst error / budget per (case, dtype) against input size as a PNG at path.

    Returns (pairs drawn, pairs left out because their records have no size, the RatioAxis used).
    """
    points, unsized = worst_by_case(records)
    axis = RatioAxis([r for by_dtype in points.values() for ps in by_dtype.values() for _, r in ps])
    all_dtypes = {d for by_dtype in points.values() for d in by_dtype}
    figure, panels = _panel_grid(len(points))
    for axes, function in zip(panels, sorted(points)):
        _size_panel(axes, function, points[function], axis, all_dtypes)
    _dtype_legend(figure, points, axis, all_dtypes)
    if not points:
        _no_data(panels[0], "no measured value check has an input size" if unsized else
                 "no measured value checks in this file")
    _title(figure, "Worst error per case and dtype in units of the budget, against input size "
                   "(dashed line: the budget)")
    save_png(figure, path)
    return sum(len(ps) for by_dtype in points.values() for ps in by_dtype.values()), unsized, axis


def save_png(figure, path):
    """Save a figure as PNG atomically; no Software or date metadata, so equal data give equal bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, metadata={"Software": None})
    write_atomic(path, buffer.getvalue())
