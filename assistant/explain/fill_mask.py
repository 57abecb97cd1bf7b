"""Masked vs next-token: candidates for a [MASK] ranked with and without the words after it.

No model shipped here has a masked-LM head (MiniLM's checkpoint lacks it), so the blank
is filled honestly with the causal model, two ways: by the left context alone (what a
GPT-style model knows when it reaches the blank) and by the likelihood of the whole
sentence with the candidate in place, which also weighs the words after the blank (a
fair stand-in for BERT's bidirectional view). The gap between the two is the lesson.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.errors import InputError
from assistant.explain import loaded
from assistant.explain.plots import caption, figure, label
from assistant.explain.tokens import check_text

MASK = "[MASK]"
DEFAULT_TEXT = "How are [MASK] doing today?"
FROM_MODEL = 8  # candidates taken from the left-context prediction
MAX_CANDIDATES = 30
METHOD = ("No shipped model has a masked-LM head (MiniLM's checkpoint lacks it). Candidates are "
          "ranked by the causal model two ways: left context only, p(word | words before the "
          "blank), which is all a left-to-right model has when it reaches the blank; and whole "
          "sentence, p(sentence with the word in place), which also weighs the words after the "
          "blank, a stand-in for BERT's bidirectional masked-LM view.")


@dataclass
class Filled:
    word: str
    left_logprob: float  # log p(word | left context)
    sentence_logprob: float  # log p(word and the rest of the sentence | left context)
    left_share: float  # softmax over the candidates
    sentence_share: float

    def to_dict(self) -> dict:
        return {"word": self.word, "left_context_logprob": self.left_logprob,
                "whole_sentence_logprob": self.sentence_logprob,
                "left_context_share": self.left_share, "whole_sentence_share": self.sentence_share}


@dataclass
class FillMaskResult:
    model: str
    text: str
    candidates: list[Filled]  # best whole-sentence first
    method: str = METHOD

    def to_dict(self) -> dict:
        return {"model": self.model, "text": self.text, "method": self.method,
                "candidates": [c.to_dict() for c in self.candidates]}

    def figure(self):
        return draw(self)


def split_mask(text: str) -> tuple[str, str]:
    text = check_text(text or DEFAULT_TEXT, 500)
    if text.count(MASK) != 1:
        raise InputError(f"put exactly one {MASK} where the blank goes, e.g. {DEFAULT_TEXT!r}")
    left, right = text.split(MASK)
    return left.rstrip(" "), right


def parse_candidates(value: str | list[str] | None) -> list[str]:
    """'you, they' -> ['you', 'they']: words only, deduplicated, bounded."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    words: list[str] = []
    for item in items:
        word = " ".join(str(item).split())
        if not word:
            continue
        if len(word) > 30 or not re.fullmatch(r"[\w'’ -]+", word):
            raise InputError(f"a candidate must be a short word or phrase, got {word[:40]!r}")
        if word not in words:
            words.append(word)
    if len(words) > MAX_CANDIDATES:
        raise InputError(f"at most {MAX_CANDIDATES} candidates, got {len(words)}")
    return words


def fill(text: str = DEFAULT_TEXT, candidates: str | list[str] | None = None,
         model: str = loaded.CAUSAL, cache_dir=None) -> FillMaskResult:
    """The candidates for the blank, ranked by whole-sentence likelihood (and by left context)."""
    left, right = split_mask(text)
    words = parse_candidates(candidates)
    pair = loaded.get(model, cache_dir)
    with loaded.compute():
        words = words or _from_left(pair, left)
        left_lp, full_lp = _score(pair, left, words, right)
    left_share, full_share = _shares(left_lp), _shares(full_lp)
    rows = [Filled(w, a, b, c, d) for w, a, b, c, d in zip(words, left_lp, full_lp, left_share,
                                                         full_share, strict=True)]
    rows.sort(key=lambda r: -r.sentence_logprob)
    return FillMaskResult(model, f"{left} {MASK}{right}" if left else f"{MASK}{right}", rows)


def _start_ids(tokenizer) -> list[int]:
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return [start] if start is not None else []


def _from_left(pair, left: str) -> list[str]:
    """Whole-word candidates: the most likely next tokens after the left context."""
    import torch

    ids = _start_ids(pair.tokenizer) + pair.tokenizer(left, add_special_tokens=False)["input_ids"]
    logits = pair.model(input_ids=torch.tensor([ids])).logits[0, -1]
    words: list[str] = []
    for i in torch.topk(logits, 200).indices.tolist():
        piece = pair.tokenizer.decode([i])
        word = piece.strip()
        if (piece.startswith(" ") or not left) and word.isalpha() and word not in words:
            words.append(word)
        if len(words) == FROM_MODEL:
            break
    if not words:
        raise InputError("the model proposed no whole words here; give --candidates")
    return words


def _score(pair, left: str, words: list[str], right: str) -> tuple[list[float], list[float]]:
    """Per candidate: log p(word | left) and log p(word + right | left), in one batch."""
    import torch

    tok = pair.tokenizer
    start = _start_ids(tok)
    prefix = start + tok(left, add_special_tokens=False)["input_ids"]
    rows, spans = [], []
    for word in words:
        middle = tok((" " if left else "") + word, add_special_tokens=False)["input_ids"]
        tail = tok(right, add_special_tokens=False)["input_ids"] if right else []
        rows.append(prefix + middle + tail)
        spans.append((len(prefix), len(prefix) + len(middle), len(prefix) + len(middle) + len(tail)))
    if not prefix:
        raise InputError("the model has no start token, so the blank cannot come first")
    width = max(len(r) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    logp = torch.log_softmax(pair.model(input_ids=ids, attention_mask=mask).logits.float(), -1)
    # the token at position t is predicted by the logits at t - 1
    got = logp[:, :-1].gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    left_lp = [float(got[i, a - 1:b - 1].sum()) for i, (a, b, _) in enumerate(spans)]
    full_lp = [float(got[i, a - 1:c - 1].sum()) for i, (a, _, c) in enumerate(spans)]
    return left_lp, full_lp


def _shares(logprobs: list[float]) -> list[float]:
    import math

    top = max(logprobs)
    weights = [math.exp(x - top) for x in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def draw(result: FillMaskResult):
    """Two rankings side by side: left context only vs the whole sentence."""
    import numpy as np

    cands = result.candidates
    y = np.arange(len(cands))
    fig, (ax, bx) = figure(11, 1.8 + 0.32 * len(cands), 1, 2, sharey=True)
    names = [label(c.word, 20) for c in cands]
    ax.barh(y, [c.left_share for c in cands], color="#8fb3e0")
    ax.set_title("left context only (what a GPT sees at the blank)", fontsize=9)
    bx.barh(y, [c.sentence_share for c in cands], color="#f0a35e")
    bx.set_title("whole sentence (words on both sides, as BERT's MLM)", fontsize=9)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_ylabel("candidate for the blank")
    for axis in (ax, bx):
        axis.set_xlim(0, 1)
        axis.set_xlabel("share of probability among the candidates")
    fig.suptitle(label(f"{result.model}: {result.text}", 100), fontsize=10)
    caption(fig, "fill-mask", "method: causal-model likelihood as a stand-in (no model here has "
                              "a masked-LM head)")
    return fig
