"""The Gradio app: a chat over the course, and a tab to search, browse and grow the corpus.

`build(service)` makes the Blocks; `launch()` serves it and only then starts loading
the index and models in the background, so the page is up within seconds.
Everything shown is escaped first: no HTML from a question, an answer or a file runs.
Beyond this machine it is served only with a login; the queue and Gradio's temp files are bounded.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

import gradio as gr

from assistant.errors import InputError
from assistant.service import Service
from assistant.ui.chat import CHAT_CSS, chat_tab
from assistant.ui.corpus import corpus_tab
from assistant.ui.course_lab import COURSE_LAB_CSS, TAB_LABEL, course_lab_tab
from assistant.ui.evals import evals_tab
from assistant.ui.history import browser_secret
from assistant.ui.lab import LAB_CSS, lab_tab

# contrast the theme leaves below 4.5:1 (axe-core's color-contrast), found by tests/test_ui_browser.py
APP_CSS = """
footer, footer a, footer button, footer span {color: #3d3d3d !important; opacity: 1 !important}
button[role="tab"][aria-selected="true"] {color: #c2410c !important}
button.primary, button.primary:hover {background: #c2410c !important; color: #fff !important;
  border-color: #c2410c !important}
.cm-gutterElement {color: #595959 !important}
.cm-content, .cm-line span {color: #1f2937 !important}
.upload-container .or {color: #595959 !important}
button.stop, button.stop:hover {background: #b91c1c !important; color: #fff !important;
  border-color: #b91c1c !important}
.min_value, .max_value, .tab-like-container input {color: #3d3d3d !important; opacity: 1 !important}
"""
# Gradio names each chat message by its raw Markdown ("bot's message: **Sources** <details…")
# and the upload box by words it does not show: those labels go, so the visible text names
# them; empty figures carry a label no plain div may have
A11Y_JS = """() => {
  const unlabel = '#chat [data-testid=bot][aria-label], #chat [data-testid=user][aria-label], '
    + '.upload-container[aria-label], div.empty[aria-label]';
  const fix = () => {
    document.querySelectorAll(unlabel).forEach(e => e.removeAttribute('aria-label'));
    // a figure is a button around an image without words: name it
    document.querySelectorAll('.image-container button:not([aria-label])').forEach(
      b => b.setAttribute('aria-label', 'Figure (select to view it larger)'));
    // the code editor scrolls: it must be reachable by keyboard
    document.querySelectorAll('.cm-scroller[tabindex="-1"]').forEach(e => e.tabIndex = 0);
  };
  new MutationObserver(fix).observe(document.body, {subtree: true, childList: true,
    attributes: true, attributeFilter: ['aria-label', 'tabindex']});
  fix();
}"""
MAX_QUEUE = 64  # waiting requests beyond this are refused at once ("too busy"), not queued
TEMP_FILES_S = 3600  # Gradio's copies of uploads are deleted after an hour (checked hourly)


def build(service: Service, secret: str | None = None, history_dir: Path | None = None
          ) -> gr.Blocks:
    """The whole app, ready to launch."""
    with gr.Blocks(title="courselab", delete_cache=(TEMP_FILES_S, TEMP_FILES_S)) as demo:
        gr.Markdown("# courselab · ask the course on Transformers, LLMs and GenAI",
                    elem_id="title")
        status = gr.Markdown("⏳ Starting…", elem_id="status")
        with gr.Tab("Chat"):
            chatbot, turns, saved, h, template = chat_tab(
                service, secret or secrets.token_urlsafe(32), history_dir)
        with gr.Tab("Prompt Lab"):
            lab_templates, lab_start = lab_tab(service, template)
        with gr.Tab("Corpus"):
            section_names, section = corpus_tab(service)
        with gr.Tab("Evals"):
            wire_evals = evals_tab(service)
        with gr.Tab(TAB_LABEL, id="course-lab"):
            course_lab = course_lab_tab(service)

        def tick():
            text, timer_update = h.status()
            return text, timer_update, section_names() if service.ready else gr.skip()

        timer = gr.Timer(1.0)
        timer.tick(tick, None, [status, timer, section], api_visibility="private", queue=False)
        demo.load(h.restore, saved, [chatbot, turns], api_visibility="private")

        def on_disk():  # every selector lists the templates on disk when the page loads
            names = service.templates()
            return (gr.Dropdown(choices=names), gr.CheckboxGroup(choices=names),
                    gr.Dropdown(choices=names))

        demo.load(on_disk, None, [template, lab_templates, lab_start], api_visibility="private",
                  queue=False)
        demo.load(tick, None, [status, timer, section], api_visibility="private", queue=False)
        demo.load(None, None, None, js=A11Y_JS)
        course_lab.wire(demo)
        wire_evals(demo)
    return demo


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """'user:password' as a pair, or None; anything else is an InputError."""
    if not value:
        return None
    user, sep, password = value.strip().partition(":")
    if not (sep and user and password):
        raise InputError("the login must be USER:PASSWORD")
    return user, password


def read_auth_file(path: Path) -> tuple[str, str]:
    """USER:PASSWORD from the first line of a file (so it never shows in `ps`)."""
    path = Path(path)
    try:
        if path.stat().st_size > 4096:
            raise InputError(f"{path}: expected one line USER:PASSWORD")
        line = path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the auth file {path}: {e}") from None
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise InputError(f"{path} can be read by other users: chmod 600 {path}")
    return parse_auth(line) or parse_auth(":")  # an empty file is an error too


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach ('localhost', 127.x, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, auth, allow_open: bool = False) -> str | None:
    """Refuse to serve beyond this machine without a login; a warning when allowed anyway."""
    if is_loopback(host) or auth:
        return None
    if not allow_open:
        raise InputError(f"refusing to serve on {host} without a login: anyone who can reach "
                         "it could use the app. Set COURSELAB_AUTH=USER:PASSWORD or --auth-file, "
                         "or pass --no-auth to accept that")
    return f"warning: the app is served on {host} WITHOUT a login"


def launch(service: Service, host: str = "127.0.0.1", port: int = 7860,
           auth: tuple[str, str] | None = None, secret_dir: Path | None = None,
           allow_open: bool = False) -> gr.Blocks:
    """Serve the app (never through a share link), then load models in the background."""
    check_exposure(host, auth, allow_open)
    secret = browser_secret(secret_dir) if secret_dir else None
    history = Path(secret_dir) / "conversations" if secret_dir else None
    demo = build(service, secret, history)
    demo.queue(default_concurrency_limit=service.settings.concurrency, max_size=MAX_QUEUE)
    try:
        demo.launch(server_name=host, server_port=port, auth=auth, share=False,
                    prevent_thread_lock=True, quiet=True, show_error=True, max_file_size="5mb",
                    css=APP_CSS + CHAT_CSS + LAB_CSS + COURSE_LAB_CSS, footer_links=["api"],
                    allowed_paths=[str(service.settings.runs_dir)])  # the Evals tab's plots
    except OSError as e:
        raise InputError(f"cannot serve on {host}:{port}: {e}") from None
    service.start()
    return demo
