"""The Corpus tab: search the index, browse by section, add files to the course and remove them."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from assistant.errors import CourselabError
from assistant.service import Service
from assistant.ui.course_lab import demo_links
from assistant.ui.html import escape, short_section, snippet


def corpus_tab(service: Service):
    """Search the index, browse it by section, add and remove files; returns what refreshes
    the section list and the list itself (the app refreshes it on load)."""
    _search_panel(service)
    section_names, section = _browse_panel(service)
    _files_panel(service, section_names, section)
    return section_names, section


def _search_panel(service: Service) -> None:
    with gr.Row(equal_height=True):
        query = gr.Textbox(label="Search the index", placeholder="e.g. positional encoding", scale=4,
                           elem_id="search")
        k = gr.Slider(1, 20, value=5, step=1, label="Hits", scale=1)
        go = gr.Button("Search", variant="primary", scale=0, min_width=100, elem_id="search-go")
    gr.Markdown("<sub>Hits in ranking order by relevance: similarity to the question plus shared "
                "keywords and section, so a lower similarity can rank higher.</sub>")
    hits = gr.Dataframe(headers=["#", "relevance", "similarity", "section", "text", "source"],
                        datatype="str", interactive=False, wrap=True, label="Hits", elem_id="hits",
                        # in pixels: on a phone the table scrolls sideways with readable columns
                        # (percentages squeezed "relevance" to a letter a line)
                        column_widths=["44px", "96px", "108px", "220px", "520px", "170px"])

    def search(text, n):
        try:
            found = service.search(text, service.check_k(n))  # an API call skips the slider
        except CourselabError as e:
            raise gr.Error(str(e)) from None
        return [[h.rank, f"{h.relevance:.3f}" if h.relevance is not None else "", f"{h.score:.3f}",
                 short_section(h.section, []), snippet(h.text, 240, near=text),
                 h.source] for h in found]

    query.submit(search, [query, k], hits, api_name="search")
    go.click(search, [query, k], hits, api_visibility="private")


def _browse_panel(service: Service):
    gr.Markdown("### Browse by section")
    section = gr.Dropdown([], label="Section", allow_custom_value=False)
    chunks = gr.Markdown()

    def section_names():
        try:
            return gr.Dropdown(choices=list(service.sections()))
        except CourselabError:
            return gr.Dropdown(choices=[])

    def browse(name):
        try:
            parts = service.sections().get(name or "", [])
        except CourselabError as e:  # e.g. still starting
            raise gr.Error(str(e)) from None
        text = "\n\n---\n\n".join(f"<sub>{escape(c.source)}</sub>\n\n{escape(c.text)}" for c in parts)
        return demo_links(name or "", service.settings.corpus_dir) + text

    section.change(browse, section, chunks, api_visibility="private")
    return section_names, section


def _files_panel(service: Service, section_names, section) -> None:
    gr.Markdown("### Add files to the course\n.md or .txt, up to 1 MB each; "
                "the index is updated incrementally.")
    # every file is accepted by the browser and checked here: one clear refusal, not two
    files = gr.File(file_count="multiple", label="Files (.md or .txt)", elem_id="upload")
    add = gr.Button("Add to the corpus", variant="primary")
    result = gr.Markdown(elem_id="upload-result")
    gr.Markdown("### Remove an added file\nOnly files added here can be removed, not the course's own.")
    with gr.Row():
        added = gr.Dropdown(service.uploaded_files(), value=None, label="Added files", scale=4,
                            elem_id="added-files")
        remove = gr.Button("Remove from the corpus", variant="stop", scale=1)

    def added_names():
        return gr.Dropdown(choices=service.uploaded_files(), value=None)

    def upload(paths, progress=gr.Progress()):  # noqa: B008 (how gradio injects progress)
        if not paths:
            return ("Choose one or more .md or .txt files first.", gr.skip(), gr.skip(),
                    gr.skip())
        try:
            uploads = [(Path(p).name, _read_and_delete(p)) for p in paths]
            message = service.add_files(
                uploads, progress=lambda done, total: progress(done / max(total, 1), desc="embedding"))
        except CourselabError as e:
            return (f"⚠️ Refused: {escape(str(e))}. The corpus was left as it was.", gr.skip(),
                    gr.skip(), gr.skip())
        return f"✅ {escape(message)}", section_names(), None, added_names()

    def remove_file(name):
        if not name:  # a message where the result goes: gr.Error would mark every output red
            return "⚠️ Choose an added file first.", gr.skip(), gr.skip()
        try:
            message = service.remove_file(name)
        except CourselabError as e:
            return f"⚠️ {escape(str(e))}", gr.skip(), gr.skip()
        return f"✅ {escape(message)}", section_names(), added_names()

    files.upload(_precheck, files, [result, files], api_visibility="private")
    add.click(upload, files, [result, section, files, added], api_visibility="private",
              concurrency_limit=1)
    remove.click(remove_file, added, [result, section, added], api_visibility="private",
                 concurrency_limit=1)
    added.focus(added_names, None, added, api_visibility="private", queue=False)  # other users'


def _precheck(paths):
    """Refuse a wrong file type as soon as it is chosen, and drop it."""
    wrong = [Path(p).name for p in paths or [] if Path(p).suffix.lower() not in (".md", ".txt")]
    if not wrong:
        return "", gr.skip()
    for p in paths:
        Path(p).unlink(missing_ok=True)
    return (f"⚠️ Refused: {escape(', '.join(wrong))}: only .md and .txt files can be added. "
            "Nothing was added.", None)


def _read_and_delete(path) -> bytes:
    """An uploaded temp file's bytes; the temp copy goes at once (Gradio would keep it)."""
    try:
        return Path(path).read_bytes()
    finally:
        Path(path).unlink(missing_ok=True)
