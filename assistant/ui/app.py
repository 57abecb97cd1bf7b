"""The Gradio app: a chat over the course, and a tab to search, browse and grow the corpus.

`build(service)` makes the Blocks; `launch()` serves it and only then starts loading
the index and models in the background, so the page is up within seconds.
Everything shown is escaped first: no HTML from a question, an answer or a file runs.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import gradio as gr

from assistant.errors import InputError
from assistant.service import Service
from assistant.ui.chat import CHAT_CSS, browser_secret, chat_tab
from assistant.ui.corpus import corpus_tab
from assistant.ui.evals import evals_tab
from assistant.ui.lab import LAB_CSS, lab_tab


def build(service: Service, secret: str | None = None) -> gr.Blocks:
    """The whole app, ready to launch."""
    with gr.Blocks(title="courselab") as demo:
        gr.Markdown("## courselab · ask the course on Transformers, LLMs and GenAI")
        status = gr.Markdown("⏳ Starting…", elem_id="status")
        with gr.Tab("Chat"):
            chatbot, turns, saved, h, template = chat_tab(service, secret or secrets.token_urlsafe(24))
        with gr.Tab("Prompt Lab"):
            lab_tab(service, template)
        with gr.Tab("Corpus"):
            section_names, section = corpus_tab(service)
        with gr.Tab("Evals"):
            evals_tab(service)

        def tick():
            text, timer_update = h.status()
            return text, timer_update, section_names() if service.ready else gr.skip()

        timer = gr.Timer(1.0)
        timer.tick(tick, None, [status, timer, section], api_visibility="private", queue=False)
        demo.load(h.restore, saved, [chatbot, turns], api_visibility="private")
        demo.load(tick, None, [status, timer, section], api_visibility="private", queue=False)
    return demo


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """'user:password' as a pair, or None; anything else is an InputError."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not (sep and user and password):
        raise InputError("--auth takes USER:PASSWORD")
    return user, password


def launch(service: Service, host: str = "127.0.0.1", port: int = 7860,
           auth: tuple[str, str] | None = None, secret_dir: Path | None = None) -> gr.Blocks:
    """Serve the app (never through a share link), then load models in the background."""
    demo = build(service, browser_secret(secret_dir) if secret_dir else None)
    demo.queue(default_concurrency_limit=service.settings.concurrency)
    try:
        demo.launch(server_name=host, server_port=port, auth=auth, share=False,
                    prevent_thread_lock=True, quiet=True, show_error=True, max_file_size="5mb",
                    css=CHAT_CSS + LAB_CSS, footer_links=["api"],
                    allowed_paths=[str(service.settings.runs_dir)])  # the Evals tab's plots
    except OSError as e:
        raise InputError(f"cannot serve on {host}:{port}: {e}") from None
    service.start()
    return demo
