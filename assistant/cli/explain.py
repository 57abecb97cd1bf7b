"""`courselab explain ...`: the Course lab's demos on the command line, one per concept.

Each command prints a short text summary, or the numbers with `--json`, and can save
the figure with `--png FILE`. User errors end with one line and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from assistant.cli.common import _settings


def _png_path(ctx, param, value: Path | None) -> Path | None:
    """Checked before any model loads: a .png name in a folder that exists."""
    from assistant.errors import InputError

    if value is None:
        return None
    if value.suffix.lower() != ".png":
        raise InputError(f"--png needs a .png file name, got {value.name!r}")
    if not value.parent.resolve().is_dir():
        raise InputError(f"--png: no folder {value.parent}")
    return value


PNG = click.option("--png", "png", type=click.Path(dir_okay=False, path_type=Path),
                   callback=_png_path, help="save the figure to FILE (.png)")
JSON = click.option("--json", "as_json", is_flag=True, help="print the numbers as JSON")
CAUSAL = click.option("--model", default="smollm2", show_default=True,
                      help="causal model: smollm2 or gemma3 (when installed)")


def _show(result, as_json: bool, png: Path | None, text: list[str]) -> None:
    """The JSON or the text, then the figure when asked for."""
    if png is not None:
        from assistant.explain.plots import save_png

        save_png(result.figure(), png)
    click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) if as_json
               else "\n".join(text))
    if png is not None and not as_json:
        click.echo(f"figure: {png}")


@click.group("explain")
def explain_group() -> None:
    """The Course lab: the course's figures, live on the local models."""


@explain_group.command("tokens")
@click.argument("text")
@JSON
@PNG
@click.pass_context
def tokens_command(ctx, text, as_json, png) -> None:
    """TEXT through WordPiece (MiniLM), BPE (SmolLM2) and SentencePiece (Gemma) side by side."""
    from assistant.explain import tokens

    result = tokens.compare(text, cache_dir=_settings(ctx).cache_dir)
    lines = []
    for row in result.rows:
        lines.append(f"{row.scheme}: {len(row.ids)} tokens")
        lines.append("  " + " | ".join(row.pieces))
        for word, pieces in row.split_words.items():
            lines.append(f"  split: {word} -> {' '.join(pieces)}")
    lines += [f"{name}: skipped ({why})" for name, why in result.skipped.items()]
    _show(result, as_json, png, lines)


@explain_group.command("next-token")
@click.argument("prompt")
@CAUSAL
@click.option("--temperature", default=1.0, show_default=True, type=click.FloatRange(0, 5),
              help="0 puts all the probability on the most likely token")
@click.option("--top-k", default=0, show_default=True, type=click.IntRange(0, None),
              help="keep only the k most likely tokens (0: off)")
@click.option("--top-p", default=1.0, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="keep the smallest set of tokens whose probability reaches p")
@click.option("--shown", default=10, show_default=True, type=click.IntRange(1, 50),
              help="how many candidates to list")
@click.option("--steps", default=1, show_default=True, type=click.IntRange(1, 64),
              help="generate this many tokens one at a time, showing each step's candidates")
@click.option("--seed", default=0, show_default=True, type=int, help="seed of the sampler")
@JSON
@PNG
@click.pass_context
def next_token_command(ctx, prompt, model, temperature, top_k, top_p, shown, steps, seed,
                       as_json, png) -> None:
    """The top next tokens after PROMPT, before and after temperature, top-k and top-p."""
    from assistant.explain import loaded, next_token

    cache_dir = _settings(ctx).cache_dir
    if steps > 1:
        _steps(next_token.steps(prompt, steps, loaded.resolve(model), temperature, top_k, top_p,
                                seed, min(shown, 5), cache_dir), as_json, png)
        return
    result = next_token.predict(prompt, loaded.resolve(model), temperature, top_k, top_p, shown,
                                cache_dir=cache_dir)
    lines = [f"{result.model} · T={temperature:g} top-k={top_k or 'off'} top-p={top_p:g} · "
             f"{result.kept} tokens keep probability", f"{'token':<20}{'model':>9}{'reshaped':>10}"]
    lines += [f"{c.token!r:<20}{c.probability:>9.3f}{c.shaped:>10.3f}" for c in result.candidates]
    _show(result, as_json, png, lines)


def _steps(results: list, as_json: bool, png: Path | None) -> None:
    """Step-by-step generation: per step the candidates and the token picked."""
    if png is not None:
        from assistant.explain.plots import save_png

        save_png(results[-1].figure(), png)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        return
    texts = [r.prompt for r in results[1:]] + [results[-1].final]
    for i, (r, after) in enumerate(zip(results, texts, strict=True), 1):
        options = ", ".join(f"{c.token!r} {c.shaped:.2f}" for c in r.candidates)
        click.echo(f"step {i}: {options} -> {after[len(r.prompt):]!r}")
    click.echo(f"text: {results[-1].final}")


@explain_group.command("attention")
@click.argument("text", required=False)
@click.option("--model", default="minilm", show_default=True, help="minilm, smollm2 or gemma3")
@click.option("--layer", type=click.IntRange(1, None), help="layer, from 1 [default: the most focused]")
@click.option("--head", type=click.IntRange(1, None), help="head, from 1 [default: the most focused]")
@click.option("--word", help="the word whose attention is listed [default: 'it', else the last]")
@JSON
@PNG
@click.pass_context
def attention_command(ctx, text, model, layer, head, word, as_json, png) -> None:
    """Attention weights for TEXT [default: the animal/street sentence], per layer and head."""
    from assistant.explain import attention, loaded

    result = attention.attention(text or attention.DEFAULT_TEXT, loaded.resolve(model), layer,
                                 head, word, cache_dir=_settings(ctx).cache_dir)
    row = sorted(zip(result.matrix[result.focus], result.tokens, strict=True), reverse=True)
    lines = [f"{result.model} · layer {result.layer}/{result.layers} · head "
             f"{result.head}/{result.heads} · {'causal' if result.causal else 'bidirectional'}",
             f"{result.tokens[result.focus]!r} attends to:"]
    lines += [f"  {token!r:<16}{weight:.3f}" for weight, token in row[:6]]
    _show(result, as_json, png, lines)


@explain_group.command("fill-mask")
@click.argument("text", required=False)
@CAUSAL
@click.option("--candidates", help="comma-separated words to rank [default: the model's guesses]")
@JSON
@PNG
@click.pass_context
def fill_mask_command(ctx, text, model, candidates, as_json, png) -> None:
    """Rank words for the [MASK] in TEXT [default: 'How are [MASK] doing today?']."""
    from assistant.explain import fill_mask, loaded

    result = fill_mask.fill(text or fill_mask.DEFAULT_TEXT, candidates, loaded.resolve(model),
                            cache_dir=_settings(ctx).cache_dir)
    lines = [result.text, f"method: {result.method}",
             f"{'word':<16}{'whole sentence':>16}{'left context':>14}"]
    lines += [f"{c.word:<16}{c.sentence_share:>16.3f}{c.left_share:>14.3f}"
              for c in result.candidates]
    _show(result, as_json, png, lines)


@explain_group.command("architecture")
@click.argument("model", default="smollm2")
@JSON
@PNG
@click.pass_context
def architecture_command(ctx, model, as_json, png) -> None:
    """The shape of MODEL (minilm, smollm2, gemma3, t5) and its parameters per part."""
    from assistant.explain import architecture, loaded

    arch = architecture.describe(loaded.resolve(model), cache_dir=_settings(ctx).cache_dir)
    lines = [f"{arch.model}: {architecture.KINDS[arch.kind]}",
             "layers: " + ", ".join(f"{k} {v}" for k, v in arch.layers.items())
             + f" · heads {arch.heads} (key/value {arch.kv_heads}) · hidden {arch.hidden}"
             f" · feed-forward {arch.feed_forward} · vocabulary {arch.vocabulary:,}"]
    lines += [f"  {part:<28}{n:>14,}" for part, n in arch.parts.items()]
    lines.append(f"  {'total':<28}{arch.total:>14,}")
    _show(arch, as_json, png, lines)


@explain_group.command("finetune")
@click.option("--examples", default=32, show_default=True, type=click.IntRange(1, None),
              help="training examples per class for the loss curves")
@click.option("--seed", default=0, show_default=True, type=int, help="random seed")
@JSON
@PNG
def finetune_command(examples, seed, as_json, png) -> None:
    """A linear classifier on frozen MiniLM embeddings vs on bag-of-words, trained live."""
    from assistant.explain import finetune

    result = finetune.finetune(examples, seed=seed)
    lines = [f"held-out accuracy ({result.held_out} sentences, classes: "
             f"{', '.join(result.labels)})", f"{'per class':<12}"
             + "".join(f"{name:>16}" for name in result.accuracy)]
    for i, size in enumerate(result.sizes):
        lines.append(f"{size:<12}" + "".join(f"{acc[i]:>16.2f}" for acc in result.accuracy.values()))
    _show(result, as_json, png, lines)


@explain_group.command("embeddings")
@click.argument("question")
@click.option("--k", default=5, show_default=True, type=click.IntRange(1, 20),
              help="how many nearest sections to list")
@JSON
@PNG
@click.pass_context
def embeddings_command(ctx, question, k, as_json, png) -> None:
    """QUESTION among the course's sections on a 2-D map (PCA of MiniLM embeddings)."""
    from assistant.explain import embeddings

    result = embeddings.embedding_map(question, _settings(ctx).corpus_dir, k)
    lines = ["nearest sections (cosine):"]
    lines += [f"  {score:.3f}  {name}" for name, score in result.nearest]
    _show(result, as_json, png, lines)
