"""The app as a first-time user meets it (issue 17), in headless Chromium at a laptop's and a
phone's size, with axe-core checking every tab.

The fake model answers (slowly, so a streaming answer can be watched) over the real course
with the hash embedder: nothing here is about the real model's words. Screenshots of every
tab at both sizes go to test-output/browser/.
"""

from __future__ import annotations

import shutil
import time

import pytest
from browser import OUTPUT, chromium
from conftest import ROOT, free_port
from test_app import make_run

pytestmark = pytest.mark.e2e
AXE = ROOT / ".npm-tools" / "node_modules" / "axe-core" / "axe.min.js"  # `make axe`
SIZES = {"laptop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
TABS = ["Chat", "Prompt Lab", "Corpus", "Evals", "Course lab"]
BROKEN = "name: broken\nkind: zero-shot\ntemplate: 'Context: {context} Answer:'\n"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from assistant.config import Settings
    from assistant.models.fake import FakeChatModel
    from assistant.service import Service
    from assistant.ui import launch

    class SlowFake(FakeChatModel):
        def _stream(self, *args, **kwargs):
            for chunk in super()._stream(*args, **kwargs):
                time.sleep(0.12)
                yield chunk

    root = tmp_path_factory.mktemp("ui")
    shutil.copytree(ROOT / "corpus", root / "corpus")
    shutil.copytree(ROOT / "prompts", root / "prompts")
    settings = Settings(corpus_dir=root / "corpus", prompts_dir=root / "prompts",
                        index_dir=root / "index", cache_dir=root / "cache", embedder="fake-hash",
                        model="fake", feedback_path=root / "feedback.jsonl", runs_dir=root / "runs")
    make_run(Settings(corpus_dir=ROOT / "tests" / "data" / "corpus", index_dir=root / "run-index",
                      cache_dir=root / "cache", embedder="fake-hash", model="fake"),
             root / "runs" / "tiny-run")
    service = Service(settings)
    slow, model = SlowFake(), service.model
    service.model = lambda name: slow if name == "fake" else model(name)  # load() and answers
    port = free_port()
    demo = launch(service, port=port, secret_dir=root)
    yield f"http://127.0.0.1:{port}/", settings
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(params=list(SIZES))
def page(request, browser, app):
    context = browser.new_context(viewport=SIZES[request.param])
    page = context.new_page()
    page.on("dialog", lambda d: pytest.fail(f"a dialog opened: {d.message!r}"))
    page.goto(app[0], wait_until="load")
    page.get_by_text("Ready ·").wait_for(timeout=120_000)
    page.size = request.param
    yield page
    context.close()


def shot(page, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}-{page.size}.png"), full_page=True)


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    assert AXE.is_file(), "run `make axe` (axe-core, pinned, into .npm-tools/)"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate("""async () => {
      const r = await axe.run(document, {resultTypes: ['violations']});
      return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
        .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' '
          + n.html.slice(0, 120) + ' ' + (n.any[0] || {}).message).join(' | '));
    }""")


def bots(page) -> list[str]:
    return page.eval_on_selector_all("#chat .bot", "els => els.map(e => e.innerText)")


def wait_answer(page, before: int, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        texts = bots(page)
        if len(texts) > before and ("Sources" in texts[-1] or "Closest sections" in texts[-1]
                                    or "⚠️" in texts[-1]):
            return texts[-1]
        time.sleep(0.1)
    raise AssertionError(f"no finished answer; saw {bots(page)[-1:]}")


def open_tab(page, name: str) -> None:
    """Click a tab; on a phone the last tabs sit behind "More tabs"."""
    tab = page.get_by_role("tab", name=name)
    if tab.count() and tab.is_visible():
        tab.click()
        return
    page.get_by_role("button", name="More tabs").click()
    page.locator(".overflow-dropdown button", has_text=name).click()


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    return bool(box) and box["y"] >= 0 and box["y"] + min(box["height"], 40) <= size["height"]


def test_the_start_screen_welcomes_and_is_accessible(page):
    """Items 10, 11, 12: a welcome, a clean status, labelled input, the phone's first screen."""
    assert page.locator("h1").count() == 1
    assert page.get_by_text("Ask the course").first.is_visible()  # the welcome, in the empty chat
    status = page.inner_text("#status")
    assert "index" not in status.lower() and "/" not in status
    assert page.get_by_role("textbox", name="Your question").count() == 1
    assert page.get_by_role("button", name="Ask", exact=True).count() == 1
    assert in_view(page, "#question textarea"), "the input is below the fold"
    assert in_view(page, "#chat ~ * button, .gallery button, button.gallery-item"), \
        "the first example is below the fold"
    assert page.locator("#models-missing").get_by_text("more models are not on this machine").count()
    shot(page, "chat-empty")
    found = serious_violations(page)
    assert not found, "\n".join(found)


def test_an_example_asks_and_the_answer_is_a_readable_card(page):
    """Items 6, 7, 8, 13, 14.8, and the phone: the answer stays in view while it streams."""
    page.get_by_text("What is self-attention?", exact=True).first.click()
    page.wait_for_function("document.querySelectorAll('#chat .bot').length >= 1", timeout=30_000)
    voted_while_pending = False
    deadline = time.time() + 60
    while time.time() < deadline:
        text = bots(page)[-1]
        if "Sources" in text or "Closest sections" in text:
            break
        likes = page.locator("#chat button[aria-label='Like']")
        visible = likes.count() > 0 and likes.last.is_visible()
        still = "Sources" not in bots(page)[-1]  # subtle: the answer may finish between the reads
        voted_while_pending |= visible and still
        time.sleep(0.05)
    assert not voted_while_pending, "vote buttons on an answer still being written"
    assert in_view(page, "#chat .bot >> nth=-1") or page.evaluate(
        "(() => { const c = document.querySelector('#chat [role=log], #chat .bubble-wrap');"
        " return !c || c.scrollTop + c.clientHeight >= c.scrollHeight - 4 })()")
    final = bots(page)[-1]
    scores = [float(s.split()[1]) for s in final.split("·") if s.strip().startswith("similarity")]
    assert scores == sorted(scores, reverse=True) and scores, final
    assert "tokens in, 0 out" not in final and "?." not in final
    assert page.locator("#chat button[aria-label='Like']").last.is_visible()
    assert page.locator("#chat a.lab-link").count() >= 1, "no 'See it live' link to the Course lab"
    page.locator("#chat details summary").first.click()
    shot(page, "chat-answered")
    found = serious_violations(page)
    assert not found, "\n".join(found)


def test_an_error_has_no_vote_buttons(page, app):
    """Item 13 (and item 1: a template written after the page was built is listed)."""
    (app[1].prompts_dir / "broken.yaml").write_text(BROKEN)
    try:
        page.reload(wait_until="load")
        page.get_by_text("Ready ·").wait_for(timeout=60_000)
        page.get_by_label("Prompt template").click()
        page.get_by_role("option", name="broken").click()
        before = len(bots(page))
        page.fill("#question textarea", "What is BERT?")
        page.keyboard.press("Enter")
        assert "⚠️" in wait_answer(page, before)
        row = page.locator("#chat .message-row").last
        assert row.locator("button[aria-label='Like']").count() == 0 or \
            not row.locator("button[aria-label='Like']").is_visible()
    finally:
        (app[1].prompts_dir / "broken.yaml").unlink()


def test_clear_asks_first(page):
    """Item 10: 'Clear conversation' does not clear at one touch."""
    page.get_by_role("button", name="Clear conversation…").click()
    yes = page.get_by_role("button", name="Yes, clear it")
    yes.wait_for(timeout=10_000)
    page.get_by_role("button", name="Keep it").click()
    yes.wait_for(state="hidden", timeout=10_000)


def test_every_tab_is_accessible_and_shot(page):
    for tab in TABS:
        open_tab(page, tab)
        time.sleep(1.0)  # the tab fades in: axe would measure a colour halfway
        shot(page, tab.lower().replace(" ", "-"))
        found = serious_violations(page)
        assert not found, f"{tab}: " + "\n".join(found)


def test_saved_templates_survive_a_reload(page, app):
    """Item 1: every selector lists what is on disk when the page loads."""
    path = app[1].prompts_dir / "zero-shot-v2.yaml"
    path.write_text((app[1].prompts_dir / "zero-shot.yaml").read_text()
                    .replace("name: zero-shot", "name: zero-shot-v2", 1))
    try:
        page.reload(wait_until="load")
        page.get_by_text("Ready ·").wait_for(timeout=60_000)
        page.get_by_label("Prompt template").click()
        page.get_by_role("option", name="zero-shot-v2").wait_for(timeout=10_000)
        page.keyboard.press("Escape")
        open_tab(page, "Prompt Lab")
        page.locator("#lab-templates").get_by_label("zero-shot-v2").wait_for(timeout=10_000)
    finally:
        path.unlink()


def test_a_template_error_is_an_alert_and_save_waits(page):
    """Item 9."""
    open_tab(page, "Prompt Lab")
    save = page.locator("#lab-save")
    assert "<name>" not in save.inner_text()
    editor = page.locator("#lab-editor .cm-content")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nextra_field: 1")
    page.locator("#lab-validation [role=alert]").wait_for(timeout=10_000)
    assert save.is_disabled()
    assert "template: template:" not in page.inner_text("#lab-validation")


def test_corpus_search_has_a_button_and_a_readable_table(page):
    """Item 2."""
    open_tab(page, "Corpus")
    page.fill("#search textarea", "positional encoding")
    page.locator("#search-go").click()
    page.locator("#hits").get_by_text("similarity").first.wait_for(timeout=30_000)
    rows = page.locator("#hits").get_by_role("row")
    deadline = time.time() + 30
    while rows.count() < 4 and time.time() < deadline:  # the header and three hits
        time.sleep(0.2)
    assert rows.count() >= 4
    heads = [h.strip() for h in page.locator("#hits").get_by_role("columnheader").all_inner_texts()]
    assert heads and not any("\n" in h for h in heads), f"a header wraps: {heads}"
    if page.size == "laptop":
        section = page.locator("#hits").get_by_role("columnheader").nth(3).bounding_box()["width"]
        table = page.locator("#hits").get_by_role("row").first.bounding_box()["width"]
        assert section < 0.4 * table, (section, table)
    shot(page, "corpus-search")


def test_a_pdf_gets_one_clear_refusal(page, tmp_path):
    """Item 4."""
    pdf = tmp_path / "handout.pdf"
    pdf.write_bytes(b"%PDF-1.4 not text")
    open_tab(page, "Corpus")
    page.locator("#upload input[type=file]").set_input_files([str(pdf)])
    page.locator("#upload-result").get_by_text("Refused: handout.pdf").wait_for(timeout=30_000)
    page.get_by_role("button", name="Add to the corpus").click()
    time.sleep(1.5)
    text = page.inner_text("body")
    assert "Invalid file type" not in text
    assert page.locator(".toast-body.error, .toast-wrap .error").count() == 0


def test_an_eval_run_is_readable_and_accessible(page):
    """Item 3: the run open, an item drilled into; the means table fits, the plot is wide."""
    open_tab(page, "Evals")  # the newest run is shown, not only named, before any choice
    page.locator("#evals-table").get_by_text("key_facts").first.wait_for(timeout=30_000)
    page.get_by_label("Run").click()
    page.get_by_role("option", name="tiny-run").click()
    page.locator("#evals-table").get_by_text("key_facts").first.wait_for(timeout=30_000)
    page.get_by_label("Item").click()
    option = page.get_by_role("option", name="tiny_qa/t2")
    assert "multi-head attention" in option.inner_text()  # an item is found by its question
    option.click()
    page.locator("#evals-detail").get_by_text("✓ pass").or_(
        page.locator("#evals-detail").get_by_text("✗ fail")).first.wait_for(timeout=30_000)
    if page.size == "laptop":
        fits = page.evaluate("""(() => { const s = [...document.querySelectorAll('#evals-table *')]
          .find(e => e.scrollWidth > e.clientWidth + 2 && getComputedStyle(e).overflowX !== 'visible');
          return !s })()""")
        assert fits, "the means table scrolls sideways"
        plot = page.locator("#evals-metrics").bounding_box()
        assert plot["width"] > 1000, plot
    assert "[-1.693" not in page.inner_text("#evals-verdicts")
    shot(page, "evals-run")
    found = serious_violations(page)
    assert not found, "\n".join(found)


def test_a_lab_comparison_is_accessible(page):
    """axe on the Prompt Lab with its cards shown (the 'lab compared' state)."""
    open_tab(page, "Prompt Lab")
    page.click("#lab-compare")
    page.wait_for_function("document.querySelectorAll('#lab-cards .lab-card').length == 2",
                           timeout=60_000)
    page.locator("#lab-cards summary").first.click()
    shot(page, "prompt-lab-compared")
    found = serious_violations(page)
    assert not found, "\n".join(found)


def test_a_see_it_live_link_opens_the_course_lab_on_a_laptop_and_a_phone(page, app):
    """On a phone the Course lab tab sits behind "More tabs": the link must still open it."""
    page.goto(f"{app[0]}?lab=attention", wait_until="load")
    page.locator("#lab-attention-run").wait_for(state="visible", timeout=30_000)
