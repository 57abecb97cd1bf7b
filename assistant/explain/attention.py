"""Attention weights per layer and head: the full matrix and what one word attends to.

MiniLM (a BERT encoder) is bidirectional: every token sees every other. SmolLM2 is a
causal decoder: a mask hides the tokens that come later, so everything above the
diagonal is 0. Models are loaded with eager attention (SDPA returns no weights).
Layers and heads are numbered from 1, as a student counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.errors import InputError, ModelError
from assistant.explain import loaded
from assistant.explain.plots import caption, figure, label
from assistant.explain.tokens import check_text

DEFAULT_TEXT = "The animal didn't cross the street because it was too tired"
MAX_TOKENS = 64


@dataclass
class AttentionResult:
    model: str
    causal: bool
    tokens: list[str]
    layers: int
    heads: int
    layer: int  # 1-based
    head: int  # 1-based
    matrix: list[list[float]]  # [query][key] for the chosen layer and head
    focus: int  # index of the word whose row is shown

    def to_dict(self) -> dict:
        return {"model": self.model, "causal": self.causal, "tokens": self.tokens,
                "layers": self.layers, "heads": self.heads, "layer": self.layer,
                "head": self.head, "matrix": self.matrix, "focus_token": self.tokens[self.focus],
                "focus_index": self.focus, "focus_row": self.matrix[self.focus]}

    def figure(self):
        return draw(self)


def weights(pair, text: str):
    """Token strings and the attention tensor [layers, heads, n, n] for `text`."""
    import torch

    encoder = pair.kind == "encoder"
    enc = pair.tokenizer(text, return_tensors="pt")  # with [CLS]/[SEP], or Gemma's <bos>
    ids = enc["input_ids"]
    if ids.shape[1] > MAX_TOKENS:
        raise InputError(f"the text has {ids.shape[1]} tokens; the attention view takes up to "
                         f"{MAX_TOKENS} (a shorter sentence reads better anyway)")
    if ids.shape[1] == 0:
        raise InputError("the text has no tokens")
    device = next(pair.model.parameters()).device
    out = pair.model(**{k: v.to(device) for k, v in enc.items() if k != "token_type_ids"
                        or encoder}, output_attentions=True)
    if not out.attentions or out.attentions[0] is None:
        raise ModelError(f"{pair.name} returned no attention weights (load it with eager attention)")
    stacked = torch.stack([a[0].float().cpu() for a in out.attentions])
    return pair.tokenizer.convert_ids_to_tokens(ids[0].tolist()), stacked


def find_word(tokens: list[str], word: str | None) -> int:
    """The index of the first token spelling `word` (default 'it', else the last token)."""
    wanted = (word or "it").strip().lower()
    for i, t in enumerate(tokens):
        if _bare(t) == wanted:
            return i
    if word:
        raise InputError(f"{word!r} is not one token of this text; tokens: "
                         f"{', '.join(_bare(t) for t in tokens[:20])}")
    return len(tokens) - 1


def _shown(token: str) -> str:
    """A piece as a reader sees it: BPE's space markers dropped."""
    return token.replace("Ġ", " ").replace("▁", " ").strip() or token


def _bare(token: str) -> str:
    return token.replace("##", "").replace("Ġ", "").replace("▁", "").strip().lower()


def pick_head(att, focus: int) -> tuple[int, int]:
    """(layer, head), 0-based, where the focus token looks hardest at one earlier or later word.

    Itself, its neighbours, the first and the last token are left out: many heads just
    look at the previous token or park their weight on [CLS], [SEP] or the first token.
    """
    import torch

    n = att.shape[-1]
    row = att[:, :, focus, :].clone()
    for j in {focus - 1, focus, focus + 1, 0, n - 1}:
        if 0 <= j < n and n > 4:
            row[:, :, j] = 0
    flat = int(torch.argmax(row.amax(dim=-1)))
    return divmod(flat, att.shape[1])


def attention(text: str = DEFAULT_TEXT, model: str = loaded.ENCODER, layer: int | None = None,
              head: int | None = None, word: str | None = None, cache_dir=None) -> AttentionResult:
    """The attention of one layer and head; without a layer and head, the most focused one."""
    text = check_text(text or DEFAULT_TEXT, 1000)
    pair = loaded.get(model, cache_dir)
    with loaded.compute():
        tokens, att = weights(pair, text)
    layers, heads = att.shape[0], att.shape[1]
    focus = find_word(tokens, word)
    auto_layer, auto_head = pick_head(att, focus)
    chosen_layer = auto_layer if layer is None else _index(layer, layers, "layer")
    chosen_head = auto_head if head is None else _index(head, heads, "head")
    matrix = att[chosen_layer, chosen_head].tolist()
    return AttentionResult(model, pair.kind != "encoder", tokens, layers, heads, chosen_layer + 1,
                           chosen_head + 1, matrix, focus)


def _index(value: int, count: int, what: str) -> int:
    if not 1 <= int(value) <= count:
        raise InputError(f"{what} must be between 1 and {count}, got {value}")
    return int(value) - 1


def draw(result: AttentionResult):
    """A heatmap of the matrix and a bar chart of the focus word's row, tokens as labels."""
    import numpy as np

    n = len(result.tokens)
    fig, (ax, bx) = figure(12, 6.2, 1, 2, gridspec_kw={"width_ratios": [1.35, 1]})
    names = [label(_shown(t), 14) for t in result.tokens]
    image = ax.imshow(np.array(result.matrix), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(n), names, rotation=70, fontsize=8, ha="right")
    ax.set_yticks(range(n), names, fontsize=8)
    ax.set_xlabel("attended-to token (key)")
    ax.set_ylabel("attending token (query)")
    kind = ("causal decoder: nothing above the diagonal" if result.causal
            else "bidirectional encoder: the full matrix")
    ax.set_title(label(f"{result.model} · layer {result.layer}/{result.layers} · head "
                       f"{result.head}/{result.heads}", 80) + "\n" + kind, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    row = result.matrix[result.focus]
    bx.barh(range(n), row, color=["#f0a35e" if i == result.focus else "#6a8fc7" for i in range(n)])
    bx.set_yticks(range(n), names, fontsize=8)
    bx.invert_yaxis()
    bx.set_xlim(0, 1)
    bx.set_xlabel("attention weight")
    bx.set_title(label(f"what “{_shown(result.tokens[result.focus])}” attends to", 60),
                 fontsize=9)
    caption(fig, "attention", "each row sums to 1: a weighted average over the tokens it can see")
    return fig
