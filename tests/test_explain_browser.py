"""The Course lab in a real headless Chromium, on the real offline models.

Open the app from a lab link (the tab opens pre-filled), run every demo, check the
figure and the table appear, branch the next-token demo, and make sure HTML typed
into a demo is shown, never run. Screenshots go to test-output/browser/lab-*.png.
"""

from __future__ import annotations

import shutil
from urllib.parse import quote

import pytest
from browser import OUTPUT, chromium
from conftest import ROOT, free_port

from assistant.explain import DEMOS, loaded

pytestmark = pytest.mark.e2e
SENTENCE = "The trophy didn't fit in the suitcase because it was too big"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from assistant.config import Settings
    from assistant.service import Service
    from assistant.ui import launch

    loaded.clear()  # real models only
    root = tmp_path_factory.mktemp("lab-browser")
    shutil.copytree(ROOT / "corpus", root / "corpus")
    # the chat runs on fakes (it is not under test here); the lab loads the real models
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", cache_dir=ROOT / ".cache",
                        feedback_path=root / "feedback.jsonl", embedder="fake-hash", model="fake",
                        prompts_dir=ROOT / "prompts")
    demo = launch(Service(settings), port=(port := free_port()))
    yield f"http://127.0.0.1:{port}/"
    demo.close()
    loaded.clear()


@pytest.fixture(scope="module")
def page():
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1300})
        page.on("dialog", lambda d: pytest.fail(f"a script ran: dialog {d.message!r}"))
        yield page


def run_demo(page, key: str, timeout: float = 180_000) -> str:
    """Click Run on a demo and wait for its figure; returns the table's text."""
    page.locator(f"#lab-{key}-run").click()
    page.locator(f"#lab-{key}-plot img").wait_for(timeout=timeout)
    page.locator(f"#lab-{key}-out table, #lab-{key}-out .lab-error").first.wait_for(timeout=timeout)
    page.screenshot(path=str(OUTPUT / f"lab-{key}.png"), full_page=True)
    return page.inner_text(f"#lab-{key}-out")


def test_a_lab_link_opens_the_demo_prefilled(app_url, page):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.goto(f"{app_url}?lab=attention&text={quote(SENTENCE)}", wait_until="load")
    box = page.locator("#lab-attention-text textarea")
    box.wait_for(state="visible", timeout=60_000)
    page.wait_for_function(f"document.querySelector('#lab-attention-text textarea').value === "
                           f"{SENTENCE!r}", timeout=30_000)
    table = run_demo(page, "attention")
    assert "attends to" in table and "Course section:" in table


@pytest.mark.parametrize("key", [k for k in DEMOS if k != "attention"])
def test_every_demo_runs_in_the_browser(app_url, page, key):
    if not page.url.startswith(app_url):
        page.goto(f"{app_url}?lab={key}", wait_until="load")
    page.get_by_role("tab", name="Course lab").click()
    page.get_by_role("tab", name=DEMOS[key].title).click()
    table = run_demo(page, key)
    assert "Course section:" in table and "⚠️" not in table


def test_branching_appends_the_chosen_token(app_url, page):
    page.goto(f"{app_url}?lab=next-token", wait_until="load")
    box = page.locator("#lab-next-token-text textarea")
    box.wait_for(state="visible", timeout=60_000)
    run_demo(page, "next-token")
    before = box.input_value()
    page.locator("#lab-branch label").first.click()
    page.locator("#lab-next-token-append").click()
    page.wait_for_function("document.querySelector('#lab-next-token-text textarea').value.length > "
                           f"{len(before)}", timeout=60_000)
    assert box.input_value().startswith(before)


def test_html_typed_into_a_demo_is_shown_not_run(app_url, page):
    evil = '<img src=x onerror="window.pwned=1"> tokens'
    page.goto(f"{app_url}?lab=tokens", wait_until="load")
    box = page.locator("#lab-tokens-text textarea")
    box.wait_for(state="visible", timeout=60_000)
    box.fill(evil)
    table = run_demo(page, "tokens")
    assert "img" in table and page.evaluate("window.pwned") is None
    assert page.locator("#lab-tokens-out img").count() == 0


def test_a_corpus_section_with_a_missing_figure_links_to_its_demo(app_url, page):
    page.goto(app_url, wait_until="load")
    page.get_by_text("Ready ·").wait_for(timeout=120_000)
    page.get_by_role("tab", name="Corpus").click()
    section = page.get_by_label("Section")
    section.click()
    section.fill("A little bit about")
    page.get_by_role("option", name="A little bit about Transformers").click()
    link = page.locator("a.lab-link", has_text="Attention").first
    link.wait_for(timeout=30_000)
    assert "?lab=attention" in link.get_attribute("href")
    page.screenshot(path=str(OUTPUT / "lab-corpus-link.png"), full_page=True)
