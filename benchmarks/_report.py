"""What the issue #9 benchmark scripts print and draw, in one place.

compare.py, latency.py, growth.py and serve.py each print a markdown section that
benchmarks/run.py stitches into docs/benchmarks.md, and draw PNG charts beside it. This
module holds what they share: number formats, ``median (min–max)`` cells, nearest-rank
percentiles, markdown tables, the versions line, progress lines on stderr, and the
matplotlib plumbing (loading it, horizontal bar panels, saving, linking a chart from
the markdown). Everything here is a pure function of its arguments except the
progress printer (stderr) and :func:`save` (writes one file); all of it is safe to call
from any thread, though matplotlib's pyplot itself is not thread-safe.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Format = Callable[[float], str]

# Bar colours: mqlog's rows stand out, every other system is grey.
MQLOG_COLOR = "#d62728"
PEER_COLOR = "#7f7f7f"
NO_MATPLOTLIB = "matplotlib is not installed (pip install mqlog[bench])"


# -- numbers ---------------------------------------------------------------------------------

def fmt_rate(x: float) -> str:
    """Records/s, short: ``5.12M``, ``380k``, ``2.5k``, ``950``."""
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e4:
        return f"{x / 1e3:.0f}k"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def fmt_ratio(x: float) -> str:
    """A same-run ratio: two decimals."""
    return f"{x:.2f}"


def spread(xs: Sequence[float], fmt: Format) -> str:
    """``median (min–max)`` of the runs' figures, or the one figure of a single run.

    Raises:
        ValueError: ``xs`` is empty (a cell with no figure is the caller's ``–``).
    """
    if not xs:
        raise ValueError("spread() needs at least one figure; print '–' for none")
    if len(xs) == 1:
        return fmt(xs[0])
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))}–{fmt(max(xs))})"


def nearest_rank(sorted_xs: Sequence[Any], q: float) -> Any:
    """The nearest-rank percentile ``q`` (0 < q <= 1) of an ascending, non-empty
    sequence: the smallest element with at least ``q`` of the elements at or below."""
    return sorted_xs[min(len(sorted_xs) - 1, max(0, int(q * len(sorted_xs) + 0.5) - 1))]


# -- markdown ---------------------------------------------------------------------------------

def row(cells: Iterable[object]) -> str:
    """One markdown table row: ``| a | b |``."""
    return "| " + " | ".join(map(str, cells)) + " |"


def table(heads: Sequence[str], rows: Iterable[Iterable[object]], align: str = "") -> list[str]:
    """A markdown table: the header, the separator, then the rows.

    ``align`` has one letter per column, ``l`` (``---``) or ``r`` (``---:``); by
    default the first column is left-aligned and the others right-aligned (figures).

    Raises:
        ValueError: ``align`` does not have one ``l`` or ``r`` per column.
    """
    align = align or "l" + "r" * (len(heads) - 1)
    if len(align) != len(heads) or set(align) - {"l", "r"}:
        raise ValueError(f"align {align!r} needs one 'l' or 'r' per column of {heads!r}")
    separator = "|" + "".join(" ---: |" if a == "r" else " --- |" for a in align)
    return [row(heads), separator, *map(row, rows)]


def versions(own: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(component, version)`` pairs to print: the OS and Python, then ``own`` (each
    pair once, in order), then matplotlib when it is installed."""
    out = [(platform.system(), platform.release()), ("Python", platform.python_version())]
    out += [v for v in dict.fromkeys(own) if v not in out]
    try:
        import matplotlib
    except ImportError:
        pass
    else:
        out.append(("matplotlib", matplotlib.__version__))
    return out


def versions_line(pairs: Iterable[tuple[str, str]]) -> str:
    return "Versions: " + ", ".join(f"{name} {v}" for name, v in pairs) + "."


def skipped_lines(skipped: dict[str, str]) -> list[str]:
    """``Skipped here:`` and one item per system that could not run (none: nothing)."""
    if not skipped:
        return []
    return ["", "Skipped here:", *(f"- {name}: {why}" for name, why in skipped.items())]


def emit(text: str, notes: str, markdown: bool) -> None:
    """Print a script's result: with ``--markdown`` the section run.py stitches into
    docs/benchmarks.md (the text, then the notes), else the text alone."""
    print(text + "\n\n" + notes if markdown else "\n" + text + "\n")


def progress_printer(tag: str, clock: bool = False) -> Callable[[str], None]:
    """A function printing ``[tag] text`` (with ``clock``: ``[tag   12 s] text``, the
    seconds since this call) to stderr, flushed: progress that leaves stdout, the
    markdown, alone."""
    started = time.monotonic()

    def progress(text: str) -> None:
        stamp = f" {time.monotonic() - started:5.0f} s" if clock else ""
        print(f"[{tag}{stamp}] {text}", file=sys.stderr, flush=True)
    return progress


# -- charts ---------------------------------------------------------------------------------

def pyplot() -> tuple[Any, str | None]:
    """matplotlib's pyplot on the non-interactive Agg backend, or ``(None, reason)``
    when matplotlib is not installed (charts are optional: the bench extra)."""
    try:
        import matplotlib
    except ImportError:
        return None, NO_MATPLOTLIB
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt, None


def bar_panel(ax: Any, labels: Sequence[str], bars: dict[str, list[float]],
              every: Sequence[float], title: str, fmt: Format) -> None:
    """Horizontal bars on ``ax``: one per label that has figures in ``bars``, at the
    median with a min–max error bar and its value written beside it.

    Every panel of a figure lists all ``labels`` in the same order (with the y axis
    shared, the names show once) on a log x axis spanning ``every`` figure of the
    figure, so bars compare across panels. mqlog's bars are red, the others grey.
    """
    from matplotlib.ticker import NullFormatter

    names = [x for x in labels if bars.get(x)]
    meds = [statistics.median(bars[x]) for x in names]
    lo = [m - min(bars[x]) for x, m in zip(names, meds)]
    hi = [max(bars[x]) - m for x, m in zip(names, meds)]
    colors = [MQLOG_COLOR if "mqlog" in x else PEER_COLOR for x in names]
    ypos = [labels.index(x) for x in names]
    ax.barh(ypos, meds, height=0.6, xerr=[lo, hi], color=colors, capsize=3)
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xscale("log")
    ax.set_xlim(min(every) / 2, max(every) * 6)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title, fontsize=10)
    for y, m, h in zip(ypos, meds, hi):
        ax.text(m + h, y, "  " + fmt(m), va="center", fontsize=8)


def save(plt: Any, fig: Any, out_dir: str, name: str) -> str:
    """Write ``fig`` to ``out_dir/name`` (created if missing), close it, return the path.

    No software tag in the metadata, so a regenerated chart only differs where its
    figures do.
    """
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return path


def chart_link(chart: str) -> str:
    """The chart's path as the markdown links it.

    The markdown goes beside the charts' folder: docs/benchmarks.md and docs/img/, or
    run.py ``--out``'s file and the ``img/`` folder run.py puts beside it. So the link
    is relative to the folder holding the charts' folder, wherever that is, never to
    the repository's docs/.
    """
    return os.path.relpath(chart, os.path.dirname(os.path.dirname(os.path.abspath(chart))))
