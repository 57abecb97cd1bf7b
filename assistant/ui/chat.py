"""The Chat tab: streamed answers with their sources, votes, and each browser's history
(kept on the server under an id the browser holds: see assistant.ui.history)."""

from __future__ import annotations

import re
import tempfile
import threading
from pathlib import Path

import gradio as gr

from assistant.chain import Prepared
from assistant.errors import CourselabError, InputError
from assistant.service import Service, Turn
from assistant.ui.course_lab import demo_links
from assistant.ui.history import HistoryStore, new_id, valid_id
from assistant.ui.html import ANSWERS_AT_ONCE, escape, short_section, snippet

EXAMPLES = [
    "What is self-attention?",
    "What is BERT and how is it trained?",
    "What does the decoder of a Transformer do?",
    "What is generative AI used for?",
]
MAX_TURNS = 100  # kept in the browser; older turns are dropped first
# an answer still being written, or an error, is nothing to vote on: this marker hides the
# message's vote buttons (CSS :has, below)
NO_VOTE = '<span class="cl-novote"></span>'
WELCOME = ("**Ask the course** on Transformers, LLMs and generative AI.\n\n"
           "Each answer quotes the course and lists its sources. Click an example below to start.")
CHAT_CSS = """
#status {min-height: 1.5em}
.message details summary {cursor: pointer}
.message details {margin: .2em 0}
#chat .message-row:has(.cl-novote) + .message-buttons button[aria-label="Like"],
#chat .message-row:has(.cl-novote) + .message-buttons button[aria-label="Dislike"] {display: none}
#chat-settings {min-width: 300px}
@media (max-width: 640px) {
  #chat {height: 300px !important; max-height: 300px}
  #chat-settings {min-width: 0}
  #title h1 {font-size: 1.35rem}
}
"""


def stats_line(turn: dict) -> str:
    """Device, model, latency and tokens of one answer; no model or tokens when none ran."""
    t, tok = turn.get("timings", {}), turn.get("tokens") or {}
    ran = bool(turn.get("prompt")) or any(tok.get(k) for k in ("input", "output"))
    parts = [turn.get("device") or "", turn.get("model") or ""] if ran else ["no model ran"]
    if "total_s" in t:
        first = f" (first token {t['first_token_s']:.2f} s)" if "first_token_s" in t and ran else ""
        parts.append(f"{t['total_s']:.2f} s{first}")
    if ran:
        parts.append(f"{tok.get('input', 0)} tokens in, {tok.get('output', 0)} out")
    return " · ".join(escape(p) for p in parts if p)


def link_citations(answer_html: str, sources: list[dict], number: int) -> str:
    """Turn the [n] a citing template writes into links to source n of this turn.

    >>> link_citations("Yes &#91;2&#93;.", [{"section": "A"}, {"section": "B"}], 3)
    'Yes <a href="#src-3-2" title="B">[2]</a>.'
    """
    def link(m):
        n = int(m.group(1))
        if not 1 <= n <= len(sources):
            return m.group(0)
        return f'<a href="#src-{number}-{n}" title="{escape(sources[n - 1]["section"])}">[{n}]</a>'

    return re.sub(r"&#91;(\d{1,2})&#93;", link, answer_html)  # brackets as `escape` writes them


def render_sources(turn: dict, number: int = 0) -> str:
    """Each chunk the model saw, most similar first: section, labelled similarity, and a
    preview (the quoted sentence when the answer quoted this chunk); expandable to the chunk."""
    if not turn.get("sources"):
        return ""
    title = "Closest sections" if turn.get("abstained") else "Sources"
    quoted = {q.get("chunk_id"): q["text"] for q in turn.get("quote") or [] if q.get("text")}
    order = sorted(enumerate(turn["sources"], 1), key=lambda p: -float(p[1].get("score", 0)))
    rows, shown = [f"**{title}** <sub>(by similarity to the question, 0-1)</sub>"], []
    for n, s in order:
        preview = quoted.get(s.get("chunk_id")) or s["text"]
        rows.append(
            f"<details id=\"src-{number}-{n}\"><summary>[{n}] <span title=\"{escape(s['section'])}\">"
            f"{escape(short_section(s['section'], shown))}</span> · similarity {s['score']:.2f} · "
            f"<i>{escape(snippet(preview))}</i></summary>\n\n{escape(s['text'])}\n\n</details>")
        shown.append(s["section"])
    return "\n".join(rows)


def render_quote(quote: list[dict]) -> str:
    """The course's own sentences, as a quote with their section."""
    if not quote:
        return ""
    lines = [f"> {_marked_span(q)}" for q in quote]
    sections = "; ".join(dict.fromkeys(escape(q["section"]) for q in quote))
    return "\n>\n".join(lines) + f"\n>\n> <sub>— the course, {sections}</sub>"


def _marked_span(q: dict) -> str:
    """The quote with the span that answers the question in bold."""
    text, span = q["text"], q.get("span")
    if not span:
        return escape(text)
    start, end = span
    return f"{escape(text[:start])}**{escape(text[start:end])}**{escape(text[end:])}"


def mark_unsupported(answer_html: str, claims: list[str]) -> str:
    """Each unsupported claim highlighted in the escaped answer, as a whole word and never
    inside a character reference ('&amp;', '&#91;2&#93;').

    >>> mark_unsupported(escape("a & b [2] amp 2"), ["amp", "2"])
    'a &amp; b &#91;2&#93; <mark>amp</mark> <mark>2</mark>'
    """
    for claim in claims:
        pattern = r"(?<![&#\w;])" + re.escape(escape(claim)) + r"(?![\w&])"
        answer_html = re.sub(pattern, lambda m: f"<mark>{m.group(0)}</mark>", answer_html, count=1)
    return answer_html


def why_quote_leads(support: dict) -> str:
    """Why the course's words come before the model's answer, by the grounding check's verdict.

    >>> why_quote_leads({"verdict": "unsupported", "unsupported": ["11B"]}).split(";")[0]
    "⚠️ The model's answer was not supported by the course (not in the course: 11B)"
    >>> why_quote_leads({"verdict": "supported"}).split(";")[0]
    "The model's answer is in the passages but does not say what the course's sentence above says"
    """
    claims = support.get("unsupported") or []
    why = f" (not in the course: {escape(', '.join(claims))})" if claims else ""
    if support.get("verdict") == "unsupported":
        return (f"⚠️ The model's answer was not supported by the course{why}; the course's own "
                "words are above.")
    if support.get("verdict") == "partial":
        return (f"⚠️ The model's answer is only partly in the course{why}; the course's own words "
                "are above.")
    return ("The model's answer is in the passages but does not say what the course's sentence "
            "above says; read the course first.")


def render_card(turn: dict, number: int = 0) -> str:
    """What the student reads first (the lead), then the rest of the answer card."""
    answer = link_citations(escape(turn["answer"]), turn.get("sources", []), number)
    quote = render_quote(turn.get("quote") or [])
    if turn.get("abstained"):
        said = re.split(r" The closest (?:passage|sections are):", turn["answer"])[0]
        # one passage, as the answer says, and nothing in bold: it does not answer the question
        closest = render_quote([{**q, "span": None} for q in (turn.get("quote") or [])[:1]])
        return escape(said) + (
            f"\n\nThe closest passage:\n\n{closest}" if turn.get("missing") and closest else "")
    if turn.get("lead_from") == "quote":
        if turn["answer"] == turn.get("lead") or not turn.get("support"):
            return quote  # the extractive baseline: the quote is the answer, no model ran
        support = turn["support"]
        claims = support.get("unsupported") or []
        marked = link_citations(mark_unsupported(escape(turn["answer"]), claims),
                                turn.get("sources", []), number)
        return (f"{quote}\n\n{why_quote_leads(support)}\n\n<details><summary>The model's "
                f"answer</summary>\n\n{marked}\n\n</details>")
    badge = "<sub>✓ supported by the passages it saw</sub>" if turn.get("support") else ""
    return "\n\n".join(x for x in (answer, badge, quote) if x)


def render_turn(turn: dict, number: int = 0, corpus_dir=None) -> str:
    """The assistant's message for a finished turn (`number`: its place in the chat), with
    the Course lab demos of its sources ("See it live: ...") when they have any."""
    if turn.get("error"):
        return f"⚠️ {escape(turn['error'])}{NO_VOTE}"
    lines = [render_card(turn, number)]
    if turn["query"] != turn["question"]:
        lines.append(f"<sub>Searched for: {escape(turn['query'])}</sub>")
    lines.append(f"<sub>{stats_line(turn)}</sub>")
    sources = render_sources(turn, number)
    if sources and not turn.get("abstained"):
        links = demo_links([s["section"] for s in turn["sources"]], corpus_dir,
                           text=turn["question"])
        if links:
            lines.append(links.strip())
    return "\n\n".join(lines + ([sources] if sources else []))


def render_pending(quote: list[dict], text: str) -> str:
    """While the model writes: the course's words first, the model's words streaming under them."""
    head = render_quote(quote)
    body = f"**Model:** {escape(text)} ▌" if text else "<sub>the model is writing…</sub>"
    return (f"{head}\n\n{body}" if head else body) + NO_VOTE


def messages_of(turns: list[dict], corpus_dir=None) -> list[dict]:
    """Chat messages for the kept turns: always a user and an assistant message per turn."""
    messages = []
    for number, turn in enumerate(turns, 1):
        messages.append({"role": "user", "content": escape(turn["question"])})
        messages.append({"role": "assistant", "content": render_turn(turn, number, corpus_dir)})
    return messages


class ChatHandlers:
    """The chat's event functions, bound to a shared Service."""

    def __init__(self, service: Service, history: HistoryStore | None = None):
        self.service = service
        self.history = history or HistoryStore(Path(tempfile.mkdtemp(prefix="courselab-chat-")),
                                               MAX_TURNS)
        self._turns_lock = threading.Lock()

    def messages(self, turns: list[dict]) -> list[dict]:
        return messages_of(turns, self.service.settings.corpus_dir)

    def respond(self, question, turns, model, template, k):
        question = (question or "").strip()
        if not question:
            raise gr.Error("Type a question first.")
        shared = turns if isinstance(turns, list) else []  # the session's own list (gr.State)
        turns = list(shared)
        pending = self.messages(turns) + [{"role": "user", "content": escape(question)},
                                        {"role": "assistant", "content": "…"}]
        yield "", pending, gr.skip()
        while not self.service.wait(0.5) and self.service.error is None:
            pending[-1]["content"] = f"⏳ Still starting ({escape(self.service.status())}); " \
                                     "your question is answered as soon as it is ready."
            yield gr.skip(), pending, gr.skip()
        turn, quote = None, []
        try:
            text = ""
            earlier = [t["query"] for t in turns if not t.get("error")]
            for piece in self.service.answer_stream(question, earlier, model, template, int(k)):
                if isinstance(piece, Turn):
                    turn = piece
                elif isinstance(piece, Prepared):  # the course's words, before the model starts
                    quote = [q.to_dict() for q in piece.quote] if not piece.abstained else []
                    pending[-1]["content"] = render_pending(quote, "")
                    yield gr.skip(), pending, gr.skip()
                elif isinstance(piece, str):
                    text += piece
                    pending[-1]["content"] = render_pending(quote, text)
                    yield gr.skip(), pending, gr.skip()
        except CourselabError as e:
            turn = Turn(question, question, template=template, error=str(e))
        # subtle: the session's list, not the copy taken at the start: a second question the
        # same browser asked meanwhile (an example clicked while typing) added its turn there,
        # and a copy would drop it when this answer's state is written back
        with self._turns_lock:
            shared.append(turn.to_dict())
            del shared[:-MAX_TURNS]
            kept = list(shared)
        yield gr.skip(), self.messages(kept), shared

    def vote(self, data: gr.LikeData, turns):
        index = data.index if isinstance(data.index, int) else data.index[0]
        turns = turns or []
        if index % 2 == 0 or index // 2 >= len(turns) or data.liked in (None, ""):
            return
        turn = turns[index // 2]
        if turn.get("error"):
            raise gr.Error("There is no answer to vote on here.")
        liked = data.liked if isinstance(data.liked, bool) else data.liked == "Like"
        vote = "up" if liked else "down"
        if self.service.voted(turn.get("id")) == vote:
            gr.Info("Your vote on this answer is already saved.")
            return
        try:
            self.service.vote(turn.get("id"), vote)
        except InputError as e:
            gr.Warning(f"This vote was not saved: {e}")
            return
        gr.Info("Thanks! Your vote was saved to the feedback file.")

    def restore(self, key):
        """The conversation of this browser's id (the browser holds nothing else)."""
        turns = self.history.load(key)
        return self.messages(turns), turns

    def keep(self, key, turns):
        """Store the turns under this browser's id, minting one the first time."""
        key = key if valid_id(key) else new_id()
        self.history.save(key, turns or [])
        return key

    def clear(self, key):
        self.history.forget(key)
        return [], [], key

    def status(self):
        s = self.service
        if s.error:
            return f"⚠️ The app could not start: {escape(s.error)}", gr.Timer(active=False)
        if s.ready:
            return (f"Ready · default model **{escape(s.default_model)}** · "
                    f"{len(s.sections())} course sections"), gr.Timer(active=False)
        return f"⏳ Starting: {escape(s.status())}…", gr.Timer(active=True)

    def ask(self, question: str, history: list | None = None, model: str = "",
            template: str = "", k: int = 4) -> dict:
        """API: answer a question (with earlier questions for follow-ups) and list the sources.

        Every argument is checked here: an API call gets none of the components' checks.
        """
        try:
            if not isinstance(question, str) or not question.strip():
                raise InputError("the question is empty")
            earlier = _history(history)
            k = self.service.check_k(k)
            if model:
                self.service.check_model(model)
            if template:
                self.service.template_file(str(template))
            self.service.wait(600)
            turn = self.service.answer(question, earlier, model=model or None,
                                       template=template or None, k=k)
        except CourselabError as e:
            raise gr.Error(str(e)) from None
        return turn.to_dict()


def _history(history) -> list[str]:
    """Earlier questions from an API call: a short list of strings, else an InputError."""
    from assistant.config import MAX_QUESTION_CHARS

    if history is None:
        return []
    if not isinstance(history, list) or len(history) > MAX_TURNS or not all(
            isinstance(q, str) and len(q) <= MAX_QUESTION_CHARS for q in history):
        raise InputError(f"history must be a list of at most {MAX_TURNS} earlier questions of at "
                         f"most {MAX_QUESTION_CHARS} characters")
    return [q for q in history if q.strip()]


def chat_tab(service: Service, secret: str, history_dir: Path | None = None):
    h = ChatHandlers(service, HistoryStore(history_dir, MAX_TURNS) if history_dir else None)
    # only an opaque id lives in the browser: the turns stay on the server
    saved = gr.BrowserState("", storage_key="courselab-chat-id", secret=secret)
    turns = gr.State([])
    with gr.Row():
        with gr.Column(scale=4):
            chatbot = gr.Chatbot(label="Course assistant", show_label=False, height=520,
                                 elem_id="chat", sanitize_html=True, placeholder=WELCOME,
                                 feedback_options=("Like", "Dislike"), buttons=["copy"])
            question = gr.Textbox(placeholder="Ask about the course…", label="Your question",
                                  show_label=False, max_length=1000, elem_id="question",
                                  submit_btn="Ask")
            examples = gr.Examples(EXAMPLES, inputs=question, label="Try one of these (click to ask)")
        with gr.Column(scale=1, elem_id="chat-settings"):
            model = gr.Dropdown(service.model_choices(), value=service.default_model, label="Model")
            gr.Markdown(missing_note(service.missing_models()), elem_id="models-missing")
            template = gr.Dropdown(service.templates(), value=service.default_template,
                                   label="Prompt template")
            k = gr.Slider(1, 10, value=service.settings.k, step=1, label="Passages to retrieve (k)")
            clear = gr.Button("Clear conversation…", variant="secondary", size="sm")
            with gr.Row(visible=False) as confirm:
                yes = gr.Button("Yes, clear it", variant="stop", size="sm")
                keep = gr.Button("Keep it", size="sm")
    ask_inputs = [question, turns, model, template, k]
    question.submit(h.respond, ask_inputs, [question, chatbot, turns],
                    api_visibility="private", concurrency_id="answer",
                    concurrency_limit=ANSWERS_AT_ONCE) \
        .then(h.keep, [saved, turns], saved, api_visibility="private")
    examples.load_input_event.then(h.respond, ask_inputs, [question, chatbot, turns],
                                   api_visibility="private", concurrency_id="answer",
                                   concurrency_limit=ANSWERS_AT_ONCE) \
        .then(h.keep, [saved, turns], saved, api_visibility="private")
    chatbot.like(h.vote, [turns], None, api_visibility="private")
    clear.click(lambda: gr.Row(visible=True), None, confirm, api_visibility="private", queue=False)
    keep.click(lambda: gr.Row(visible=False), None, confirm, api_visibility="private", queue=False)
    yes.click(h.clear, saved, [chatbot, turns, saved], api_visibility="private") \
        .then(lambda: gr.Row(visible=False), None, confirm, api_visibility="private", queue=False)
    chatbot.clear(lambda key: h.clear(key)[1:], saved, [turns, saved], api_visibility="private")
    gr.api(h.ask, api_name="ask", concurrency_id="answer", concurrency_limit=ANSWERS_AT_ONCE)
    return chatbot, turns, saved, h, template


def missing_note(names: list[str]) -> str:
    """Models this machine lacks the weights of, with the one command that gets each."""
    if not names:
        return ""
    rows = "".join(f"<li>{escape(n)}: <code>courselab models pull {escape(n)}</code></li>"
                   for n in names)
    return (f"<details><summary>{len(names)} more models are not on this machine</summary>"
            f"<p>Not offered until downloaded, with:</p><ul>{rows}</ul></details>")
