"""Shared figure helpers: a headless matplotlib figure, safe labels, the course caption, PNG out.

Every text drawn comes from `label()`: '$' would start matplotlib's mathtext, so it is
escaped, and long labels are cut. Each figure carries a caption naming its course section.
"""

from __future__ import annotations

from pathlib import Path

from assistant.errors import InputError

LABEL_CHARS = 40


def label(text: object, limit: int = LABEL_CHARS) -> str:
    """Text as a literal matplotlib label: no mathtext, control characters shown, bounded."""
    s = "".join(c if c.isprintable() else "·" for c in str(text))
    s = s if len(s) <= limit else s[: limit - 1] + "…"
    return s.replace("\\", "\\\\").replace("$", r"\$")


def figure(width: float = 8.0, height: float = 4.5, rows: int = 1, cols: int = 1, **kw):
    """A new figure and its axes, off-screen (the Agg backend; no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(width, height), **kw)
    return fig, axes


def caption(fig, demo_key: str, note: str = "") -> None:
    """The caption under a figure: the course section it illustrates (and a note)."""
    from assistant.explain.catalog import DEMOS

    text = label(DEMOS[demo_key].caption, 200) + (f"\n{label(note, 200)}" if note else "")
    fig.text(0.5, 0.005, text, ha="center", va="bottom", fontsize=8,
             color="#444444", wrap=True)
    fig.tight_layout(rect=(0, 0.07 if note else 0.045, 1, 1))


def save_png(fig, path: Path | str) -> Path:
    """Write the figure as PNG (and close it); a bad path is a one-line error."""
    import matplotlib.pyplot as plt

    target = Path(path)
    if target.suffix.lower() != ".png":
        raise InputError(f"--png needs a .png file name, got {target.name!r}")
    try:
        fig.savefig(target, dpi=110)
    except OSError as e:
        raise InputError(f"cannot write {target}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
    return target


def close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def to_image(fig):
    """The figure as a PIL image (and close it): what the app's image boxes show."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        close(fig)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")
