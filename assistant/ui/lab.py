"""The Prompt Lab tab: templates x models side by side, and a template editor.

Cards show each pair's answer, latency and tokens, with the exact rendered prompt
(its token count for that model and what was dropped to fit) one click away. The
editor validates as you type and saves a new file; it replaces an existing one only
when "overwrite" is ticked.
"""

from __future__ import annotations

import re

import gradio as gr

from assistant.errors import CourselabError
from assistant.service import Service
from assistant.ui.html import ANSWERS_AT_ONCE, escape

LAB_CSS = """
.lab-cards {display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 12px}
.lab-card {border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px}
.lab-card .lab-head {font-weight: 600; margin-bottom: 6px}
.lab-card .lab-stats {font-size: .85em; opacity: .8; margin-top: 6px}
.lab-card pre {white-space: pre-wrap; font-size: .8em; max-height: 24em; overflow: auto}
.lab-error {border-left: 4px solid #b91c1c; background: #fef2f2; color: #7f1d1d; padding: 6px 10px}
"""


def card(cell) -> str:
    """One template x model result as an HTML card (all text escaped)."""
    head = f"{escape(cell.template)} · {escape(cell.model)}"
    if cell.error:
        return (f'<div class="lab-card"><div class="lab-head">{head}</div>'
                f'<div class="lab-answer">⚠️ {escape(cell.error)}</div></div>')
    a = cell.answer
    size = a.timings.get("batch_size", 1)
    batch = f" (one call for {size})" if size > 1 else ""
    tokens_in, tokens_out = a.tokens.get("input", 0), a.tokens.get("output", 0)
    stats = (f"{a.timings.get('generate_s', 0.0):.2f} s{batch} · {tokens_in} tokens in, "
             f"{tokens_out} out · abstained: {'yes' if a.abstained else 'no'}")
    # a <pre> scrolls: tabindex lets a keyboard reach it (axe's scrollable-region-focusable)
    reasoning = (f"<details><summary>Whole reply</summary><pre tabindex='0'>{escape(a.reasoning)}"
                 "</pre></details>" if a.reasoning else "")
    prompt = ""
    if a.prompt:
        dropped = (f" · dropped to fit: {escape('; '.join(cell.dropped))}" if cell.dropped else "")
        prompt = (f"<details><summary>Rendered prompt: {tokens_in} tokens of a "
                  f"{cell.window}-token window{dropped}</summary><pre tabindex='0'>{escape(a.prompt)}</pre>"
                  "</details>")
    return (f'<div class="lab-card"><div class="lab-head">{head}</div>'
            f'<div class="lab-answer">{escape(a.answer)}</div>'
            f'<div class="lab-stats">{stats}</div>{reasoning}{prompt}</div>')


def cards(comparison) -> str:
    sections = "; ".join(dict.fromkeys(h.section for h in comparison.prepared.hits))
    intro = (f"<p>One retrieval ({comparison.prepared.retrieve_s:.2f} s) for every card: "
             f"{escape(sections)}</p>")
    return intro + '<div class="lab-cards">' + "".join(card(c) for c in comparison.cells) + "</div>"


def lab_tab(service: Service, chat_template: gr.Dropdown):
    """The tab; `chat_template` is the chat's selector, refreshed when a template is saved.
    Returns the template checkboxes and the "Start from" selector (refreshed on page load)."""
    names = service.templates()
    with gr.Row():
        question = gr.Textbox(label="Question", value="What is BERT?", scale=4, elem_id="lab-question")
        k = gr.Slider(1, 10, value=service.settings.k, step=1, label="k", scale=1)
    with gr.Row():
        templates = gr.CheckboxGroup(names, value=[n for n in ("default", "zero-shot") if n in names],
                                     label="Templates", elem_id="lab-templates")
        models = gr.CheckboxGroup(service.model_choices(), value=[service.default_model],
                                  label="Models", elem_id="lab-models")
    run = gr.Button("Compare", variant="primary", elem_id="lab-compare")
    output = gr.HTML(elem_id="lab-cards")
    gr.Markdown("### Edit a template")
    start = gr.Dropdown(names, value=names[0] if names else None, label="Start from")
    editor = gr.Code(service.template_text(names[0]) if names else "", language="yaml",
                     label="Template (YAML)", elem_id="lab-editor", interactive=True)
    verdict = gr.Markdown(elem_id="lab-validation")
    with gr.Row():
        overwrite = gr.Checkbox(False, label="Overwrite an existing template of the same name")
        save = gr.Button("Save as a new template", elem_id="lab-save")
    saved = gr.Markdown(elem_id="lab-saved")

    def compare(q, chosen, picked, n):
        try:
            return cards(service.compare(q, list(chosen or []), list(picked or []), int(n)))
        except CourselabError as e:
            raise gr.Error(str(e)) from None

    def check(text):
        try:
            t = service.check_template(text)
        except CourselabError as e:
            return template_problem(str(e), text or ""), gr.Button(interactive=False)
        return (f"✅ valid {escape(t.kind)} template `{escape(t.name)}` ({len(t.variables)} "
                f"variables): Save writes prompts/{escape(t.name)}.yaml"), gr.Button(interactive=True)

    def store(text, confirmed):
        try:
            path = service.save_template(text, bool(confirmed))
        except CourselabError as e:
            return (f"⚠️ Not saved: {escape(e)}", gr.skip(), gr.skip(), gr.skip(), gr.skip())
        names = service.templates()
        return (f"✅ Saved {escape(path.name)}", gr.CheckboxGroup(choices=names),
                gr.Dropdown(choices=names), gr.Dropdown(choices=names), False)

    run.click(compare, [question, templates, models, k], output, api_name="compare",
              concurrency_id="answer", concurrency_limit=ANSWERS_AT_ONCE)
    start.change(lambda n: service.template_text(n), start, editor, api_visibility="private")
    editor.change(check, editor, [verdict, save], api_visibility="private", queue=False)
    save.click(store, [editor, overwrite], [saved, templates, start, chat_template, overwrite],
               api_visibility="private")
    return templates, start


def template_problem(message: str, text: str = "") -> str:
    r"""A template error as a styled alert: the field, its line in the YAML, and the problem.

    >>> "line 2" in template_problem("the edited template: template: x: bad", "a: 1\ntemplate: b")
    True
    """
    parts = message.removeprefix("the edited template: ").split(": ")
    fields = []
    while len(parts) > 1 and re.fullmatch(r"[\w.-]{1,40}", parts[0]):
        fields.append(parts.pop(0))
    where = f"field <code>{escape(' › '.join(fields))}</code>" if fields else ""
    if fields:
        lines = text.splitlines()
        found = next((n for n, ln in enumerate(lines, 1) if ln.startswith(f"{fields[0]}:")), 0)
        where = f"line {found}, {where}" if found else where
    problem = escape(": ".join(parts))
    return (f'<div class="lab-error" role="alert">⚠️ <strong>Cannot be saved</strong>'
            f'{" (" + where + ")" if where else ""}: {problem}</div>')
