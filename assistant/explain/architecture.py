"""The architecture, drawn from the loaded model: encoder-only, decoder-only or encoder-decoder.

Layers, heads, hidden and feed-forward sizes and vocabulary come from the config; the
parameters per part are counted from the real modules (shared weights once), so the
parts add up to `num_parameters()`. The T5 is a FLAN-T5-base config, randomly
initialised on the meta device: no T5 weights exist here, but its shape is the lesson.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.explain import loaded
from assistant.explain.plots import caption, figure, label

KINDS = {"encoder": "encoder-only (BERT-style)", "causal": "decoder-only (GPT-style)",
         "seq2seq": "encoder-decoder (T5-style)"}
BLOCK_PARTS = ("attention", "cross-attention", "feed-forward", "norms")


@dataclass
class Architecture:
    model: str
    kind: str
    layers: dict[str, int]  # stack -> number of blocks
    heads: int
    kv_heads: int
    hidden: int
    feed_forward: int
    vocabulary: int
    parts: dict[str, int]  # part -> parameters; the values add up to `total`
    total: int
    tied_head: bool

    def to_dict(self) -> dict:
        return {"model": self.model, "kind": KINDS[self.kind], "layers": self.layers,
                "heads": self.heads, "kv_heads": self.kv_heads, "hidden_size": self.hidden,
                "feed_forward_size": self.feed_forward, "vocabulary": self.vocabulary,
                "parameters": self.parts, "total_parameters": self.total,
                "output_head_tied_to_embeddings": self.tied_head}

    def figure(self):
        return draw(self)


def part_of(name: str) -> str:
    """Which part a parameter belongs to, from its module path."""
    lower = name.lower()
    if "lm_head" in lower:
        return "output head"
    if "embed" in lower or lower.startswith("shared") or ".wte" in lower or ".wpe" in lower:
        return "embeddings"
    stack = "encoder" if "encoder." in lower else "decoder"
    if not any(k in lower for k in (".layer.", ".layers.", ".block.", ".h.")):
        return "final norm / pooler"
    if "encdecattention" in lower or "cross" in lower:
        return f"{stack}: cross-attention"
    if "attn" in lower or "attention" in lower:
        return f"{stack}: attention"
    if "norm" in lower:
        return f"{stack}: norms"
    return f"{stack}: feed-forward"


def count_parts(model) -> dict[str, int]:
    """Parameters per part; shared tensors (tied embeddings) are counted once."""
    parts: dict[str, int] = {}
    for name, param in model.named_parameters():  # named_parameters skips duplicates
        key = part_of(name)
        parts[key] = parts.get(key, 0) + param.numel()
    return parts


def _encoder_only(config) -> bool:
    return not getattr(config, "is_decoder", False) and "bert" in config.model_type


def describe(model: str = loaded.CAUSAL, cache_dir=None) -> Architecture:
    """The architecture of `model`, from its config and its modules."""
    pair = loaded.get(model, cache_dir)
    cfg = pair.model.config
    cfg = getattr(cfg, "text_config", None) or cfg
    if pair.kind == "encoder" or _encoder_only(cfg):
        kind = "encoder"
    else:
        kind = "seq2seq" if pair.kind == "seq2seq" else "causal"
    if kind == "seq2seq":
        layers = {"encoder": cfg.num_layers, "decoder": cfg.num_decoder_layers}
        heads, kv, hidden, ff = cfg.num_heads, cfg.num_heads, cfg.d_model, cfg.d_ff
    else:
        layers = {"encoder" if kind == "encoder" else "decoder": cfg.num_hidden_layers}
        heads, hidden, ff = cfg.num_attention_heads, cfg.hidden_size, cfg.intermediate_size
        kv = getattr(cfg, "num_key_value_heads", None) or heads
    parts = count_parts(pair.model)
    head = getattr(pair.model, "lm_head", None)
    tied = head is not None and not any("lm_head" in n for n, _ in pair.model.named_parameters())
    return Architecture(pair.name, kind, layers, heads, kv, hidden, ff, cfg.vocab_size, parts,
                        pair.model.num_parameters(), tied)


def _fmt(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n:,}"


def draw(arch: Architecture):
    """The stacks as boxes (left) and the parameters per part (right)."""
    fig, (ax, bx) = figure(12, 6, 1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.axis("off")
    stacks = list(arch.layers.items())
    width = 8.0 / len(stacks)
    for i, (stack, n) in enumerate(stacks):
        x = 1 + i * (width + 0.2)
        attn = "masked self-attention" if stack == "decoder" else "self-attention (sees all)"
        cross = "\n+ cross-attention to the encoder" if arch.kind == "seq2seq" and stack == "decoder" else ""
        block = (f"{stack} block × {n}\n{attn}{cross}\n{arch.heads} heads"
                 f"{f' ({arch.kv_heads} key/value)' if arch.kv_heads != arch.heads else ''}\n"
                 f"feed-forward {arch.hidden}→{arch.feed_forward}→{arch.hidden}")
        _box(ax, x, 2.6, width - 0.4, 4.6, block, "#cfe3ff" if stack == "encoder" else "#ffe0c2")
        _box(ax, x, 0.8, width - 0.4, 1.3, f"embeddings\n{arch.vocabulary:,} tokens × {arch.hidden}",
             "#e3f2d9")
        top = "next-token head (vocabulary)" if stack == "decoder" else "contextual vectors"
        _box(ax, x, 7.7, width - 0.4, 1.3, top, "#eeeeee")
    if arch.kind == "seq2seq":
        ax.annotate("", xy=(1 + width + 0.25, 5.0), xytext=(1 + width - 0.45, 5.0),
                    arrowprops={"arrowstyle": "->", "lw": 2})
    ax.set_title(label(f"{arch.model}: {KINDS[arch.kind]}", 90), fontsize=10)
    names = list(arch.parts)
    bx.barh(range(len(names)), [arch.parts[p] / 1e6 for p in names], color="#6a8fc7")
    bx.set_yticks(range(len(names)), [label(p) for p in names], fontsize=8)
    bx.invert_yaxis()
    bx.set_xlabel("parameters (millions)")
    bx.set_xlim(0, max(arch.parts.values()) / 1e6 * 1.2)
    for j, p in enumerate(names):
        bx.text(arch.parts[p] / 1e6, j, " " + _fmt(arch.parts[p]), va="center", fontsize=8)
    tied = " · output head tied to the embeddings" if arch.tied_head else ""
    bx.set_title(f"parameters per part · total {_fmt(arch.total)}{tied}", fontsize=9)
    caption(fig, "architecture")
    return fig


def _box(ax, x, y, w, h, text, color):
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color, ec="#556"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8, wrap=True)
