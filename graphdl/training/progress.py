"""Training output: a small progress bar with live metrics, and loss/accuracy plots per epoch.

The bar redraws one line in place when its stream is a terminal and stays silent otherwise (a
log file or a CI run gets only what the caller prints itself). :func:`plot_history` needs
matplotlib (the ``viz`` extra) and writes its picture atomically.
"""
from __future__ import annotations

import sys
import time
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence

from ..core.errors import GraphError

History = Mapping[str, Sequence[float]] | Sequence[Mapping[str, float]]


class Progress:
    """``for batch in Progress(batches, desc="epoch 1"): ...; bar.set(loss=0.3)``.

    ``enabled`` defaults to whether ``file`` is a TTY; when disabled nothing is written.
    """

    def __init__(self, iterable: Iterable[Any], total: int | None = None, desc: str = "",
                 file: IO[str] | None = None, enabled: bool | None = None, width: int = 24):
        self.iterable = iterable
        self.total = total if total is not None else _len(iterable)
        self.desc, self.width = desc, width
        self.file = file if file is not None else sys.stderr
        self.enabled = _isatty(self.file) if enabled is None else enabled
        self.count = 0
        self.metrics: dict[str, float] = {}
        self.start = time.perf_counter()

    def set(self, **metrics: float) -> None:
        """Shows these metric values from the next redraw on."""
        self.metrics.update(metrics)
        self._draw()

    def __iter__(self) -> Iterator[Any]:
        self._draw()
        for item in self.iterable:
            yield item
            self.count += 1
            self._draw()
        self.close()

    def line(self) -> str:
        """The bar as text: ``desc 12/45 [######----] 3.1s loss=0.2134``."""
        if self.total:
            done = min(self.width, self.width * self.count // self.total)
            bar = f" {self.count}/{self.total} [" + "#" * done + "-" * (self.width - done) + "]"
        else:
            bar = f" {self.count}"
        secs = time.perf_counter() - self.start
        metrics = "".join(f" {k}={v:.4g}" for k, v in self.metrics.items())
        return f"{self.desc}{bar} {secs:.1f}s{metrics}".strip()

    def _draw(self) -> None:
        if self.enabled:
            self.file.write("\r" + self.line() + "\x1b[K")
            self.file.flush()

    def close(self) -> None:
        """Ends the bar's line (a finished bar stays visible)."""
        if self.enabled:
            self.file.write("\r" + self.line() + "\x1b[K\n")
            self.file.flush()
            self.enabled = False


def _len(iterable: Iterable[Any]) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def _isatty(f: IO[str]) -> bool:
    try:
        return bool(f.isatty())
    except (AttributeError, ValueError):
        return False


# -- plots -------------------------------------------------------------------------------------


def history_columns(history: History) -> dict[str, list[float]]:
    """``{"loss": [...], ...}`` from that form or from one ``{"loss": ..}`` dict per epoch."""
    if isinstance(history, Mapping):
        cols = {k: [float(x) for x in v] for k, v in history.items()}
    else:
        cols = {}
        for epoch in history:
            for k, v in epoch.items():
                cols.setdefault(k, []).append(float(v))
    if not cols or not any(cols.values()):
        raise GraphError("plot_history: the history is empty")
    return cols


def plot_history(history: History, path: str, title: str = "training") -> None:
    """Draws each metric per epoch: losses on the left panel, accuracies (any name containing
    'acc') on the right, and writes ``path`` (.png or .svg) atomically."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise GraphError("plot_history needs matplotlib: pip install 'graphdl[viz]'") from None
    import io

    from ..core.fileio import write_atomic

    fmt = path.rsplit(".", 1)[-1].lower()
    if fmt not in ("png", "svg"):
        raise GraphError(f"{path}: plot_history writes .png or .svg files")
    cols = history_columns(history)
    acc = {k: v for k, v in cols.items() if "acc" in k}
    rest = {k: v for k, v in cols.items() if k not in acc}
    panels = [(name, c) for name, c in (("loss", rest), ("accuracy", acc)) if c]
    fig = Figure(figsize=(5.0 * len(panels), 3.6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, series) in zip(axes, panels):
        for k, ys in series.items():
            ax.plot(range(1, len(ys) + 1), ys, marker="o", ms=3, label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100, bbox_inches="tight")
    data = buf.getvalue()
    write_atomic(path, lambda f: f.write(data))
