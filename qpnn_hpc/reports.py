"""What every kind's report shares: figures saved as PNG, and report.md written atomically
(a killed report leaves no truncated file). Imports nothing from the package."""
from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display on a cluster node)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, out: Path, name: str) -> str:
    """Save ``fig`` as ``out/name`` (tight layout, 90 dpi) and close it; returns ``name``."""
    plt = pyplot()
    fig.tight_layout()
    fig.savefig(Path(out) / name, dpi=90)
    plt.close(fig)
    return name


def write_markdown(out: Path, lines: list[str], figures: list[str] = ()) -> Path:
    """``out/report.md``: the lines, then one image link per figure; returns its path."""
    target = Path(out) / "report.md"
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text("\n".join([*lines, *(f"![{p}]({p})" for p in figures)]) + "\n")
    tmp.replace(target)
    return target
