"""The chat in a real headless Chromium, on the real offline models.

Load the page, ask a course question and watch the answer stream, see a source
section, ask a follow-up, vote, reload and find the conversation again. A question
carrying HTML must show as text and run nothing. Screenshots go to test-output/browser/.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest
from browser import OUTPUT, chromium
from conftest import DATA, ROOT, free_port
from test_app import make_run

pytestmark = pytest.mark.e2e
LAST_BOT = "#chat .message-row.bot-row:last-of-type, #chat .bot .message:last-of-type"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from assistant.config import Settings
    from assistant.service import Service
    from assistant.ui import launch

    root = tmp_path_factory.mktemp("browser")
    shutil.copytree(ROOT / "corpus", root / "corpus")  # the upload test adds a file to it
    shutil.copytree(ROOT / "prompts", root / "prompts")  # the lab test saves a template
    settings = Settings(corpus_dir=root / "corpus", prompts_dir=root / "prompts",
                        index_dir=root / "index", cache_dir=ROOT / ".cache",
                        feedback_path=root / "feedback.jsonl", runs_dir=root / "runs")
    fake = Settings(corpus_dir=DATA / "corpus", index_dir=root / "fake-index", cache_dir=root / "cache",
                    embedder="fake-hash", model="fake")
    make_run(fake, root / "runs" / "tiny-run")  # for the Evals tab
    service = Service(settings)
    port = free_port()
    demo = launch(service, port=port, secret_dir=root)
    yield f"http://127.0.0.1:{port}/", settings.feedback_path, settings.corpus_dir, settings.prompts_dir
    demo.close()


@pytest.fixture(scope="module")
def page():
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.on("dialog", lambda d: pytest.fail(f"a script ran: dialog {d.message!r}"))
        yield page


def opened(page, url: str):
    """The app's page (tests selected alone start on a blank page)."""
    if not page.url.startswith(url):
        page.goto(url, wait_until="load")
        page.get_by_text("Ready ·").wait_for(timeout=240_000)
    return page


def bot_messages(page) -> list[str]:
    return page.eval_on_selector_all("#chat .bot", "els => els.map(e => e.innerText)")


def ask(page, question: str, answers_before: int) -> list[str]:
    """Type a question and return the distinct texts the answer showed while it streamed."""
    page.fill("#question textarea", question)
    page.keyboard.press("Enter")
    seen: list[str] = []
    deadline = time.time() + 180
    while time.time() < deadline:
        bots = bot_messages(page)
        if len(bots) > answers_before:
            text = bots[-1]
            if not seen or seen[-1] != text:
                seen.append(text)
            if "Sources" in text or "Closest sections" in text or "⚠️" in text:
                return seen
        time.sleep(0.1)
    raise AssertionError(f"no finished answer to {question!r}; saw {seen[-1:]}")


def test_chat_in_a_real_browser(app_url, page):
    url, feedback, *_ = app_url
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.goto(url, wait_until="load")  # a Gradio page never goes network-idle
    page.wait_for_selector("#question textarea")
    page.get_by_text("Ready ·").wait_for(timeout=240_000)

    seen = ask(page, "What is BERT?", 0)
    final = seen[-1]
    partial = [s for s in seen[:-1] if s.strip() and s.strip() != "…"]
    assert len(partial) >= 2, f"the answer did not stream: {seen}"
    assert "Sources" in final and "BERT" in page.inner_text("#chat details[id^=src] summary >> nth=0")
    assert "smollm2-135m-instruct" in final and "tokens in" in final

    final = ask(page, "and how many parameters does it have?", 1)[-1]
    assert "Searched for: How many parameters does BERT have?" in final
    page.screenshot(path=str(OUTPUT / "chat.png"), full_page=True)

    page.locator("#chat button[aria-label='Like']").last.click()
    deadline = time.time() + 10
    while time.time() < deadline and not feedback.exists():
        time.sleep(0.1)
    row = json.loads(feedback.read_text().splitlines()[-1])
    assert row["metadata"]["vote"] == "up"
    assert row["user_input"] == "How many parameters does BERT have?"

    page.reload(wait_until="load")
    page.wait_for_function("document.querySelectorAll('#chat .bot').length >= 2", timeout=30_000)
    users = page.eval_on_selector_all("#chat .user", "els => els.map(e => e.innerText)")
    assert [u.strip() for u in users] == ["What is BERT?", "and how many parameters does it have?"]
    page.screenshot(path=str(OUTPUT / "after-reload.png"), full_page=True)


def test_html_in_a_question_is_shown_not_run(app_url, page):
    evil = '<img src=x onerror="window.pwned=1"> Who won the FIFA World Cup?'
    opened(page, app_url[0])
    before = len(bot_messages(page))
    final = ask(page, evil, before)[-1]
    assert "does not cover" in final
    assert page.evaluate("window.pwned") is None
    assert page.locator("#chat img[src='x']").count() == 0
    assert evil.split(">")[0] in page.inner_text("#chat")  # shown as text
    page.locator("#chat").screenshot(path=str(OUTPUT / "html-in-question.png"))


def test_corpus_tab_refuses_bad_files_and_adds_a_good_one(app_url, page, tmp_path):
    pdf, binary, good = tmp_path / "slides.pdf", tmp_path / "bad.md", tmp_path / "moe-notes.md"
    pdf.write_bytes(b"%PDF-1.4 not text")
    binary.write_bytes(b"\xff\xfe\x00\x01 not utf-8")
    good.write_text("## Mixture of experts\n\nA router sends each token to two of eight experts.\n")
    opened(page, app_url[0])
    upload = page.locator("#upload input[type=file]")
    add = page.get_by_role("button", name="Add to the corpus")
    page.get_by_role("tab", name="Corpus").click()
    upload.set_input_files([str(pdf)])  # refused at once, in one line
    page.locator("#upload-result").get_by_text("Refused: slides.pdf").wait_for(timeout=30_000)
    upload.set_input_files([str(binary)])  # the server side refuses the content
    page.get_by_text("Upload complete").or_(page.locator("#upload .file-preview")).first.wait_for()
    add.click()
    page.get_by_text("Refused: bad.md is not UTF-8 text").wait_for(timeout=30_000)
    page.locator("#upload").get_by_role("button", name="Clear").click()
    upload.set_input_files([str(good)])
    page.locator("#upload").get_by_text("moe-notes.md").wait_for()
    add.click()
    try:
        page.get_by_text("added moe-notes.md: added 1").wait_for(timeout=60_000)
    finally:
        page.screenshot(path=str(OUTPUT / "corpus.png"), full_page=True)
    assert not (app_url[2] / "bad.md").exists()
    page.fill("#search textarea", "mixture of experts router")
    page.keyboard.press("Enter")
    page.get_by_role("grid").get_by_text("moe-notes.md").first.wait_for(timeout=30_000)


def test_clear_empties_the_conversation_for_good(app_url, page):
    opened(page, app_url[0])
    page.get_by_role("tab", name="Chat").click()
    page.get_by_role("button", name="Clear conversation…").click()
    page.get_by_role("button", name="Yes, clear it").click()
    page.wait_for_function("document.querySelectorAll('#chat .user').length == 0", timeout=10_000)
    time.sleep(0.5)  # the browser store is written after the click
    page.reload(wait_until="load")
    page.get_by_text("Ready ·").wait_for(timeout=60_000)
    time.sleep(1)
    assert page.locator("#chat .user").count() == 0


def test_four_simultaneous_api_clients_on_the_real_model(app_url):
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    questions = ["What is BERT?", "What is self-attention?", "What is positional encoding?",
                 "What does the decoder do?"]
    with ThreadPoolExecutor(4) as pool:
        turns = list(pool.map(lambda q: Client(app_url[0], verbose=False).predict(q, api_name="/ask"),
                              questions))
    for q, turn in zip(questions, turns):
        assert turn["question"] == q and turn["answer"] and not turn["error"]
        alone = Client(app_url[0], verbose=False).predict(q, api_name="/ask")
        assert [s["chunk_id"] for s in turn["sources"]] == [s["chunk_id"] for s in alone["sources"]]


def test_prompt_lab_compares_and_saves_an_edited_template(app_url, page):
    opened(page, app_url[0])
    prompts_dir = app_url[3]
    page.get_by_role("tab", name="Prompt Lab").click()
    page.fill("#lab-question textarea", "What percentage of words does BERT mask?")
    page.click("#lab-compare")  # default and zero-shot on the default model
    page.wait_for_function("document.querySelectorAll('#lab-cards .lab-card').length == 2",
                           timeout=120_000)
    heads = page.eval_on_selector_all("#lab-cards .lab-head", "els => els.map(e => e.innerText)")
    assert heads == ["default · smollm2-135m-instruct", "zero-shot · smollm2-135m-instruct"]
    page.locator("#lab-cards summary", has_text="Rendered prompt").first.click()
    prompt = page.locator("#lab-cards pre").first.inner_text()
    assert "What percentage of words does BERT mask?" in prompt and "<|im_start|>" in prompt

    page.get_by_label("Start from").click()
    page.get_by_role("option", name="default", exact=True).click()
    page.locator("#lab-editor").get_by_text("name: default").wait_for()
    editor = page.locator("#lab-editor .cm-content")
    editor.click()
    page.keyboard.press("Control+Home")
    page.keyboard.press("Shift+End")
    page.keyboard.type("name: {oops.__class__}")
    page.locator("#lab-validation [role=alert]").wait_for(timeout=10_000)
    page.keyboard.press("Control+Home")
    page.keyboard.press("Shift+End")
    page.keyboard.type("name: my-default")
    page.get_by_text("✅ valid few-shot template").wait_for(timeout=10_000)
    page.click("#lab-save")
    page.get_by_text("✅ Saved my-default.yaml").wait_for(timeout=10_000)
    assert (prompts_dir / "my-default.yaml").read_text().startswith("name: my-default\n")
    page.screenshot(path=str(OUTPUT / "prompt-lab.png"), full_page=True)

    before = (prompts_dir / "my-default.yaml").read_text()
    page.click("#lab-save")  # the same name again, without confirming
    page.get_by_text("already exists: tick \"Overwrite an existing template").wait_for(timeout=10_000)
    assert (prompts_dir / "my-default.yaml").read_text() == before

    page.locator("#lab-templates").get_by_label("my-default").wait_for()
    page.get_by_role("tab", name="Chat").click()
    page.get_by_label("Prompt template").click()
    page.get_by_role("option", name="my-default").wait_for()
    page.keyboard.press("Escape")


def test_evals_tab_shows_a_run_and_its_items(app_url, page):
    opened(page, app_url[0])
    page.get_by_role("tab", name="Evals").click()
    page.get_by_label("Run").click()
    page.get_by_role("option", name="tiny-run").click()
    page.locator("#evals-table").get_by_text("default · fake · k=4 hybrid").wait_for(timeout=30_000)
    # filtered first: on a long page the whole open list can reach outside the viewport
    item = page.get_by_label("Item")
    item.click()
    item.fill("multi-head")
    page.get_by_role("option", name="tiny_qa/t2").click()
    page.locator("#evals-detail").get_by_text("tiny_qa/t2: What is multi-head attention?").wait_for(
        timeout=30_000)
    assert "Retrieved:" in page.inner_text("#evals-detail")
    page.screenshot(path=str(OUTPUT / "evals.png"), full_page=True)
