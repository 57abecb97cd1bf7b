"""Embeddings: the course's sections and a question as points on a 2-D map.

Sentence vectors come from MiniLM itself (mean pooling over the tokens, then unit
length: what all-MiniLM-L6-v2's sentence-transformers head does), so the lab shares one
copy of the encoder with the attention and tokens demos. The map is a PCA of the
section vectors; the nearest sections are ranked by cosine in the full 384 dimensions.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from assistant.explain import loaded
from assistant.explain.plots import caption, figure, label
from assistant.explain.tokens import check_text

BATCH = 32
MAX_TOKENS = 256  # what all-MiniLM-L6-v2 was trained with
MEMO = 4096
_memo: OrderedDict[str, object] = OrderedDict()
_memo_lock = threading.Lock()
_memo_owner: list[object] = [None]  # the encoder the memo's vectors come from


def embed(texts: list[str]):
    """Unit-length sentence vectors (numpy, one row per text); repeated texts come from a memo."""
    import numpy as np

    pair = loaded.get(loaded.ENCODER)
    with _memo_lock:
        if _memo_owner[0] is not pair.model:  # another encoder: its vectors are not these
            _memo.clear()
            _memo_owner[0] = pair.model
    missing = [t for t in dict.fromkeys(texts) if t not in _memo]
    if missing:
        with loaded.compute():
            for start in range(0, len(missing), BATCH):
                chunk = missing[start:start + BATCH]
                for text, vec in zip(chunk, _encode(pair, chunk), strict=True):
                    _remember(text, vec)
    return np.stack([_memo[t] for t in texts])


def _encode(pair, texts: list[str]):
    import torch

    enc = pair.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS,
                         return_tensors="pt")
    hidden = pair.model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1).float().numpy()


def _remember(text: str, vec) -> None:
    with _memo_lock:
        _memo[text] = vec
        while len(_memo) > MEMO:
            _memo.popitem(last=False)


@dataclass
class EmbeddingMap:
    question: str
    sections: list[str]
    points: list[tuple[float, float]]  # one per section
    question_point: tuple[float, float]
    nearest: list[tuple[str, float]]  # (section, cosine), best first
    variance: tuple[float, float]  # share of the variance each axis keeps

    def to_dict(self) -> dict:
        return {"question": self.question, "question_point": list(self.question_point),
                "sections": [{"section": s, "x": p[0], "y": p[1]}
                             for s, p in zip(self.sections, self.points, strict=True)],
                "nearest": [{"section": s, "cosine": c} for s, c in self.nearest],
                "explained_variance": list(self.variance)}

    def figure(self):
        return draw(self)


def course_sections(corpus_dir: Path) -> list[tuple[str, str]]:
    """(heading path, text) for every section of the course files."""
    from assistant.corpus.chunks import corpus_files, sections
    from assistant.text import plain_text

    out = []
    for path in corpus_files(corpus_dir):
        for heading, lines in sections(path.read_text(errors="replace")):
            body = plain_text("\n".join(lines)).strip()
            if heading and body:
                out.append((heading, f"{heading}\n{body}"))
    return out


def project(vectors, extra):
    """PCA to 2-D fitted on `vectors`; returns their points, `extra`'s point, variance shares."""
    import numpy as np

    mean = vectors.mean(axis=0)
    _, s, vt = np.linalg.svd(vectors - mean, full_matrices=False)
    axes = vt[:2]
    total = float((s ** 2).sum()) or 1.0
    shares = tuple(float(x ** 2 / total) for x in s[:2])
    return (vectors - mean) @ axes.T, (extra - mean) @ axes.T, shares


def embedding_map(question: str, corpus_dir: Path | None = None, k: int = 5) -> EmbeddingMap:
    """The question among the course's sections, and the `k` nearest sections."""
    question = check_text(question, 1000)
    if corpus_dir is None:
        from assistant.config import Settings

        corpus_dir = Settings().corpus_dir
    found = course_sections(Path(corpus_dir))
    vectors = embed([text for _, text in found])
    q = embed([question])[0]
    points, q_point, shares = project(vectors, q)
    cosines = vectors @ q
    order = cosines.argsort()[::-1][:k]
    names = [name for name, _ in found]
    return EmbeddingMap(question, names, [(float(x), float(y)) for x, y in points],
                        (float(q_point[0]), float(q_point[1])),
                        [(names[i], float(cosines[i])) for i in order], (shares[0], shares[1]))


def draw(m: EmbeddingMap):
    """Sections as labelled dots, the question as a star, lines to its nearest sections."""
    fig, ax = figure(11, 7)
    xs, ys = [p[0] for p in m.points], [p[1] for p in m.points]
    ax.scatter(xs, ys, s=28, color="#6a8fc7", label="course section")
    near = {name for name, _ in m.nearest[:3]}
    for name, (x, y) in zip(m.sections, m.points, strict=True):
        short = name.rsplit(" > ", 1)[-1]
        ax.annotate(label(short, 34), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points",
                    color="#b0461c" if name in near else "#333333")
        if name in near:
            ax.plot([m.question_point[0], x], [m.question_point[1], y], color="#f0a35e", lw=1)
    ax.scatter(*m.question_point, marker="*", s=260, color="#d9480f", label="your question",
               zorder=3)
    ax.set_xlabel(f"principal component 1 ({m.variance[0]:.0%} of the variance)")
    ax.set_ylabel(f"principal component 2 ({m.variance[1]:.0%} of the variance)")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(label(f"MiniLM embeddings: “{m.question}”", 100), fontsize=10)
    caption(fig, "embeddings", "nearest by cosine in all 384 dimensions: "
            + "; ".join(f"{n.rsplit(' > ', 1)[-1]} ({c:.2f})" for n, c in m.nearest[:3]))
    return fig
