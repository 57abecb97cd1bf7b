"""The Course lab tab: each of the course's missing figures as a live demo on the local models.

One sub-tab per demo (tokens, next token, attention, fill-mask, architecture, fine-tuning,
embeddings), each with its inputs, a Run button, the figure and a table. Tables and
messages are escaped; figures escape their own labels. A link `?lab=<demo>&text=...`
(see `assistant.explain.lab_link`) opens the app on a demo, pre-filled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from assistant.explain import DEMOS, demos_for_section, lab_link, prefill_text
from assistant.service import Service
from assistant.ui.course_lab_demos import BUILDERS
from assistant.ui.html import escape

TAB_LABEL = "Course lab"
COURSE_LAB_CSS = """
table.lab { border-collapse: collapse; font-size: 0.9em; }
table.lab td, table.lab th { border: 1px solid #ddd; padding: 2px 8px; }
.lab-note { color: #555; font-size: 0.9em; }
@media (max-width: 640px) {
  /* a figure as wide as the phone, its height following, not a thumbnail in a tall frame */
  div[id^="lab-"][id$="-plot"] { height: auto !important; }
  div[id^="lab-"][id$="-plot"] img { width: 100% !important; height: auto !important;
    max-height: none !important; object-fit: contain; }
}
"""


@dataclass
class CourseLab:
    """What app.py wires: the demo tabs and each demo's main text box, for pre-filling."""

    tabs: gr.Tabs
    texts: dict[str, gr.components.Component] = field(default_factory=dict)

    def wire(self, demo: gr.Blocks) -> None:
        """Pre-fill from the page URL (?lab=attention&text=...) and open the Course lab tab."""
        outputs = [self.tabs, *self.texts.values()]
        demo.load(self.from_query, None, outputs, api_visibility="private", queue=False)
        demo.load(None, None, None, js=OPEN_TAB_JS)

    def prefill(self, key: str, text: str = "") -> list:
        """Updates for [tabs, *texts]: `key`'s tab selected and its box filled."""
        if key not in DEMOS:
            return [gr.skip()] * (1 + len(self.texts))
        fill = prefill_text(key, text) if text else None
        return [gr.Tabs(selected=key)] + [fill if k == key and fill else gr.skip()
                                          for k in self.texts]

    def from_query(self, request: gr.Request):
        params = dict(request.query_params) if request else {}
        return self.prefill(str(params.get("lab", "")), str(params.get("text", ""))[:2000])


OPEN_TAB_JS = f"""() => {{
  if (!new URLSearchParams(window.location.search).get("lab")) return;
  // on a phone the last tabs sit behind "More tabs": open it, then pick the tab there
  let opened = false;
  const pick = () => {{
    const tab = [...document.querySelectorAll('button[role="tab"], .overflow-dropdown button')]
      .find(b => b.textContent.trim() === {TAB_LABEL!r} && b.offsetParent !== null);
    const more = document.querySelector('button[aria-label="More tabs"]');
    if (tab) {{ tab.click(); return; }}
    if (more && more.offsetParent !== null && !opened) {{ opened = true; more.click(); }}
    setTimeout(pick, 200);
  }};
  pick();
}}"""


def demo_links(sections: str | list[str], corpus_dir=None, text: str = "") -> str:
    """'See it live: Attention · Architecture' (links, escaped) for the demos that draw the
    figures of a section, or of several (an answer's sources), each once; '' when none."""
    found: dict[str, object] = {}
    for section in [sections] if isinstance(sections, str) else sections:
        for d in demos_for_section(section, corpus_dir):
            found.setdefault(d.key, d)
    if not found:
        return ""
    links = " · ".join(f'<a href="{escape(lab_link(d.key, text))}" target="_blank" '
                       f'class="lab-link">{escape(d.title)}</a>' for d in found.values())
    return f"See it live: {links}\n\n"


def _outputs(key: str):
    image = gr.Image(label="Figure", type="pil", interactive=False, elem_id=f"lab-{key}-plot",
                     height=560)
    html = gr.HTML(elem_id=f"lab-{key}-out")
    return image, html


def course_lab_tab(service: Service) -> CourseLab:
    """The tab's contents (call inside `with gr.Tab(TAB_LABEL)`)."""
    gr.Markdown("The course's figures, drawn live on the models on this machine. "
                "Each demo names the course section it illustrates.", elem_id="course-lab")
    with gr.Tabs(elem_id="course-lab-demos") as tabs:
        lab = CourseLab(tabs)
        for key, build in BUILDERS.items():
            with gr.Tab(DEMOS[key].title, id=key, elem_id=f"lab-tab-{key}"):
                lab.texts[key] = build(service, _outputs)
    return lab
