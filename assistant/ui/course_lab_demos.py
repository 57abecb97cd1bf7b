"""The Course lab's demo panels, one builder per demo (each returns its main text box),
and the helpers they share: escaped tables and notes, errors shown as messages."""

from __future__ import annotations

import gradio as gr

from assistant.errors import CourselabError
from assistant.explain import DEMOS
from assistant.explain import loaded as lab_models
from assistant.explain.plots import to_image
from assistant.service import Service
from assistant.ui.html import escape


def message(error: Exception) -> str:
    return f'<p class="lab-error">⚠️ {escape(str(error))}</p>'


def table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="lab"><tr>{head}</tr>{body}</table>'


def note(key: str, extra: str = "") -> str:
    text = DEMOS[key].caption + (f" · {extra}" if extra else "")
    return f'<p class="lab-note">{escape(text)}</p>'


def safely(run):
    """A demo handler that shows a user error as a message, never a stack trace."""

    def handler(*args):
        try:
            return run(*args)
        except CourselabError as e:
            return None, message(e)
        except (TypeError, ValueError) as e:  # a raw API call with a bad argument
            return None, message(ValueError(f"bad input: {e}"))

    return handler


def causal_choices() -> list[str]:
    return [n for n in lab_models.CAUSAL_CHOICES if lab_models.available(n)] or [lab_models.CAUSAL]


def _run_button(key: str) -> gr.Button:
    return gr.Button("Run", variant="primary", elem_id=f"lab-{key}-run")


def tokens_panel(service: Service, outputs):
    from assistant.explain import tokens

    text = gr.Textbox("Embeddings are unaffable", label="Text", elem_id="lab-tokens-text")
    run = _run_button("tokens")
    image, html = outputs("tokens")

    @safely
    def go(value):
        result = tokens.compare(value, cache_dir=service.settings.cache_dir)
        rows = [[r.scheme, len(r.ids), " | ".join(r.pieces[:80]),
                 "; ".join(f"{w} → {' '.join(p)}" for w, p in r.split_words.items())]
                for r in result.rows]
        rows += [[name, "", f"skipped: {why}", ""] for name, why in result.skipped.items()]
        return to_image(result.figure()), table(["tokenizer", "tokens", "pieces",
                                                 "words that fell apart"], rows) + note("tokens")

    run.click(go, text, [image, html], api_name="lab_tokens")
    text.submit(go, text, [image, html], api_visibility="private")
    return text


def next_token_panel(service: Service, outputs):
    from assistant.explain import next_token

    text = gr.Textbox("The capital of France is", label="Prompt", elem_id="lab-next-token-text")
    with gr.Row():
        model = gr.Dropdown(causal_choices(), value=lab_models.CAUSAL, label="Model")
        temperature = gr.Slider(0, 2, value=1.0, step=0.05, label="Temperature")
        top_k = gr.Slider(0, 100, value=0, step=1, label="Top-k (0: off)")
        top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="Top-p")
    run = _run_button("next-token")
    image, html = outputs("next-token")
    with gr.Row():
        pick = gr.Radio([], label="Branch from here: append a token", elem_id="lab-branch",
                        type="value", scale=4)
        append = gr.Button("Append and predict again", elem_id="lab-next-token-append", scale=1)

    def go(prompt, name, t, k, p):
        try:
            result = next_token.predict(prompt, name, float(t), int(k), float(p),
                                        cache_dir=service.settings.cache_dir)
        except (CourselabError, TypeError, ValueError) as e:
            return None, message(e), gr.Radio(choices=[])
        rows = [[repr(c.token), c.token_id, f"{c.probability:.3f}", f"{c.shaped:.3f}"]
                for c in result.candidates]
        choices = [(f"{c.token!r} ({c.probability:.2f})", str(c.token_id)) for c in result.candidates]
        return (to_image(result.figure()),
                table(["next token", "id", "model", "after sampling settings"], rows)
                + note("next-token", f"{result.kept} tokens keep a non-zero probability"),
                gr.Radio(choices=choices, value=None))

    def branch(prompt, name, token_id):
        if not token_id:
            return gr.skip()
        try:
            return next_token.branch(prompt, int(token_id), name, service.settings.cache_dir)
        except (CourselabError, TypeError, ValueError):
            return gr.skip()

    inputs = [text, model, temperature, top_k, top_p]
    run.click(go, inputs, [image, html, pick], api_name="lab_next_token")
    append.click(branch, [text, model, pick], text, api_visibility="private").then(
        go, inputs, [image, html, pick], api_visibility="private")
    return text


def attention_panel(service: Service, outputs):
    from assistant.explain import attention

    text = gr.Textbox(attention.DEFAULT_TEXT, label="Sentence", elem_id="lab-attention-text")
    with gr.Row():
        model = gr.Dropdown([lab_models.ENCODER, *causal_choices()], value=lab_models.ENCODER,
                            label="Model (MiniLM: bidirectional; SmolLM2/Gemma: causal)")
        layer = gr.Number(0, label="Layer (0: the most focused)", precision=0, minimum=0)
        head = gr.Number(0, label="Head (0: the most focused)", precision=0, minimum=0)
        word = gr.Textbox("it", label="Word to follow")
    run = _run_button("attention")
    image, html = outputs("attention")

    @safely
    def go(sentence, name, n_layer, n_head, focus):
        result = attention.attention(sentence, name, int(n_layer or 0) or None,
                                     int(n_head or 0) or None, focus or None,
                                     cache_dir=service.settings.cache_dir)
        row = sorted(zip(result.matrix[result.focus], result.tokens, strict=True), reverse=True)
        rows = [[token, f"{weight:.3f}"] for weight, token in row[:8]]
        kind = "causal" if result.causal else "bidirectional"
        return to_image(result.figure()), table(
            [f"“{result.tokens[result.focus]}” attends to", "weight"], rows) + note(
            "attention", f"layer {result.layer}/{result.layers}, head {result.head}/"
                         f"{result.heads}, {kind}")

    run.click(go, [text, model, layer, head, word], [image, html], api_name="lab_attention")
    return text


def fill_mask_panel(service: Service, outputs):
    from assistant.explain import fill_mask

    text = gr.Textbox(fill_mask.DEFAULT_TEXT, label="Sentence with one [MASK]",
                      elem_id="lab-fill-mask-text")
    with gr.Row():
        candidates = gr.Textbox("", label="Candidates (comma-separated; empty: the model's guesses)")
        model = gr.Dropdown(causal_choices(), value=lab_models.CAUSAL, label="Model")
    gr.Markdown(fill_mask.METHOD, elem_classes=["lab-note"])
    run = _run_button("fill-mask")
    image, html = outputs("fill-mask")

    @safely
    def go(sentence, words, name):
        result = fill_mask.fill(sentence, words, name, cache_dir=service.settings.cache_dir)
        rows = [[c.word, f"{c.sentence_share:.3f}", f"{c.left_share:.3f}"] for c in result.candidates]
        return to_image(result.figure()), table(
            ["word", "whole sentence", "left context only"], rows) + note("fill-mask")

    run.click(go, [text, candidates, model], [image, html], api_name="lab_fill_mask")
    return text


def architecture_panel(service: Service, outputs):
    from assistant.explain import architecture

    names = [lab_models.ENCODER, *causal_choices(), lab_models.T5]
    model = gr.Dropdown(names, value=lab_models.CAUSAL, label="Model",
                        elem_id="lab-architecture-model")
    run = _run_button("architecture")
    image, html = outputs("architecture")

    @safely
    def go(name):
        arch = architecture.describe(name, cache_dir=service.settings.cache_dir)
        rows = [[part, f"{n:,}"] for part, n in arch.parts.items()] + [["total", f"{arch.total:,}"]]
        return to_image(arch.figure()), table(["part", "parameters"], rows) + note("architecture")

    run.click(go, model, [image, html], api_name="lab_architecture")
    return model


def finetune_panel(service: Service, outputs):
    from assistant.explain import finetune

    examples = gr.Slider(1, 80, value=32, step=1, label="Training examples per class (loss curves)",
                         elem_id="lab-finetune-examples")
    run = _run_button("finetune")
    image, html = outputs("finetune")

    @safely
    def go(n):
        result = finetune.finetune(int(n))
        rows = [[size] + [f"{acc[i]:.2f}" for acc in result.accuracy.values()]
                for i, size in enumerate(result.sizes)]
        return to_image(result.figure()), table(["examples per class", *result.accuracy],
                                                rows) + note("finetune")

    run.click(go, examples, [image, html], api_name="lab_finetune")
    return examples


def embeddings_panel(service: Service, outputs):
    from assistant.explain import embeddings

    text = gr.Textbox("How does attention work?", label="Question", elem_id="lab-embeddings-text")
    run = _run_button("embeddings")
    image, html = outputs("embeddings")

    @safely
    def go(question):
        result = embeddings.embedding_map(question, service.settings.corpus_dir)
        rows = [[name, f"{score:.3f}"] for name, score in result.nearest]
        return to_image(result.figure()), table(["nearest section", "cosine"], rows) + note(
            "embeddings")

    run.click(go, text, [image, html], api_name="lab_embeddings")
    text.submit(go, text, [image, html], api_visibility="private")
    return text


BUILDERS = {"tokens": tokens_panel, "next-token": next_token_panel, "attention": attention_panel,
            "fill-mask": fill_mask_panel, "architecture": architecture_panel,
            "finetune": finetune_panel, "embeddings": embeddings_panel}
