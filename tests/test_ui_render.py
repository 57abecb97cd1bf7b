"""What the app renders for a first-time user (issue 17), without a browser: the answer card's
sources, its info line, the Course lab links, template errors, and `courselab models pull`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from assistant.ui.chat import NO_VOTE, missing_note, render_pending, render_turn
from assistant.ui.html import short_section
from assistant.ui.lab import template_problem

BERT = "Popular Modern LLMs > 1. BERT (Bidirectional Encoder Representation from Transformers)"


def turn(**overrides) -> dict:
    base = {"question": "How many parameters has BERT?", "query": "How many parameters has BERT?",
            "answer": "BERT large has 340M parameters.", "abstained": False, "model": "m",
            "device": "cpu", "prompt": "p", "timings": {"total_s": 1.0},
            "tokens": {"input": 10, "output": 5}, "lead_from": "answer",
            "quote": [{"text": "BERT large has 340M parameters.", "section": BERT,
                       "chunk_id": "c2", "span": None}],
            "sources": [
                {"section": BERT + " > 14. RoBERTa", "text": "14. 1 year later RoBERTa came.",
                 "score": 0.50, "chunk_id": "c1"},
                {"section": BERT, "text": "10. Why is BERT Training Fast? ... BERT large has "
                 "340M parameters.", "score": 0.51, "chunk_id": "c2"}]}
    return {**base, **overrides}


def summaries(html: str) -> list[str]:
    return [part.split("</summary>")[0] for part in html.split("<summary>")[1:]]


def test_sources_are_sorted_by_the_labelled_score_shown():
    rows = summaries(render_turn(turn()))
    assert "similarity 0.51" in rows[0] and "similarity 0.50" in rows[1]
    assert "score " not in "".join(rows)


def test_a_source_preview_shows_the_quoted_sentence():
    first = summaries(render_turn(turn()))[0]
    assert "340M parameters" in first and "Why is BERT Training Fast" not in first


def test_a_repeated_long_section_path_is_shortened():
    rows = summaries(render_turn(turn()))
    assert "… &gt; 14. RoBERTa" in rows[1]
    assert short_section(BERT, []).endswith("…") and len(short_section(BERT, [])) < len(BERT)
    assert short_section("A > B > C", ["A > B"]) == "… > C"
    assert "same section" in short_section("A > B", ["A > B"])


def test_an_abstention_has_no_token_line_and_no_doubled_stop():
    html = render_turn(turn(abstained=True, prompt="", tokens={"input": 0, "output": 0},
                            answer="The course does not cover this question. The closest "
                                   "sections are: What is Language Modeling?", quote=[]))
    assert "tokens in" not in html and "?." not in html and "no model ran" in html
    assert "Closest sections" in html


def test_the_card_says_why_the_quote_leads_by_the_verdict_and_nothing_for_the_quote_alone():
    quoted = "BERT large has 340M parameters."
    extractive = render_turn(turn(model="extractive", lead_from="quote", answer=quoted,
                                  lead=quoted, support={"verdict": "supported"}))
    assert "⚠️" not in extractive and "The model's answer" not in extractive
    for verdict, said in (("unsupported", "was not supported by the course"),
                          ("partial", "only partly in the course"),
                          ("supported", "is in the passages but does not say")):
        html = render_turn(turn(lead_from="quote", lead=quoted, answer="BERT has 11B parameters.",
                                support={"verdict": verdict, "unsupported": []}))
        assert said in html and "<summary>The model's answer</summary>" in html, verdict


def test_a_near_miss_shows_one_closest_passage_with_nothing_in_bold():
    near = turn(abstained=True, missing="how many GPUs", prompt="", tokens={"input": 0, "output": 0},
                answer="The course does not say how many GPUs trained BioGPT. The closest passage: "
                       "BioGPT is trained on PubMed.",
                quote=[{"text": "BioGPT is trained on PubMed.", "section": "BioGPT", "chunk_id": "a",
                        "span": None},
                       {"text": "1 year later RoBERTa came.", "section": BERT, "chunk_id": "b",
                        "span": [0, 1]}])
    html = render_turn(near)
    assert "BioGPT is trained on PubMed." in html and "RoBERTa" not in html.split("<details")[0]
    assert "**" not in html.split("<sub>")[0]


def test_votes_are_hidden_on_a_pending_or_failed_answer_only():
    assert NO_VOTE in render_pending([], "partial") and NO_VOTE in render_pending([], "")
    assert NO_VOTE in render_turn(turn(error="the model failed"))
    assert NO_VOTE not in render_turn(turn())


def test_the_card_offers_the_course_lab_demo_of_its_sources():
    attention = turn(sources=[{"section": "Attention is all you need: Introducing Transformer "
                               "Architecture", "text": "Self-attention ...", "score": 0.6,
                               "chunk_id": "c9"}], quote=[])
    html = render_turn(attention)
    assert "See it live:" in html and "?lab=" in html and "text=How" in html
    assert "See it live" not in render_turn(turn(sources=[], quote=[]))


def test_a_template_error_names_the_line_and_field_and_is_styled():
    text = "name: mine\nkind: few-shot\ntemplate: |\n  Context: {context}\n"
    html = template_problem("the edited template: template: variables: declared but not used: "
                            "question", text)
    assert 'role="alert"' in html and "line 3" in html and "declared but not used" in html
    assert "template: template:" not in html


def test_missing_models_name_the_command_that_gets_them():
    note = missing_note(["flan-t5-small"])
    assert "courselab models pull flan-t5-small" in note
    assert missing_note([]) == ""


def test_models_pull_offline_is_one_clear_line(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    from assistant.cli.main import cli

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("no connection")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    result = CliRunner().invoke(cli, ["models", "pull", "flan-t5-small"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "offline" in lines[0]


@pytest.mark.parametrize("name, error", [("nope", "unknown model"),
                                         ("fake", "unknown model")])
def test_models_pull_refuses_what_it_cannot_pull(name, error):
    from assistant.cli.main import cli

    result = CliRunner().invoke(cli, ["models", "pull", name])
    assert result.exit_code == 2 and error in result.output


def test_models_pull_downloads_with_a_progress_bar(monkeypatch, tmp_path):
    import huggingface_hub
    from huggingface_hub.utils import are_progress_bars_disabled

    from assistant.cli.main import cli

    seen = {}

    def download(repo, **kwargs):
        seen["repo"], seen["bars"] = repo, not are_progress_bars_disabled()
        return str(tmp_path)

    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", download)
    result = CliRunner().invoke(cli, ["models", "pull", "flan-t5-small"])
    assert result.exit_code == 0, result.output
    assert seen == {"repo": "google/flan-t5-small", "bars": True}
    assert str(tmp_path) in result.output


def test_evals_lists_only_differences_with_an_interval_and_items_by_question():
    from assistant.ui.evals import drill_down, item_choices, significant

    def comparison(ci, p):
        return {"p_value": p, "ci": ci, "verdict": f"differs {ci}"}

    summary = {"comparisons": [comparison([-1.693, -1.693], 0.008), comparison([0.1, 0.4], 0.01),
                               comparison([-0.2, 0.3], 0.5)]}
    text = significant(summary)
    assert "differs &#91;0.1, 0.4&#93;" in text and "-1.693" not in text and "1 more" in text
    rows = [{"item_id": "q/1", "question": "What is BERT?", "reference": "r", "answer": "a",
             "hits": [], "metrics": {"key_facts": {"score": 1.0, "pass": True},
                                     "supported": {"score": 0.0, "pass": False}},
             "template": "default", "model": "fake", "k": 4, "mode": "hybrid"}]
    assert item_choices(rows) == [("q/1: What is BERT?", "q/1")]
    detail = drill_down(rows, "q/1")
    assert "| key_facts | 1.000 | ✓ pass |" in detail and "| supported | 0.000 | ✗ fail |" in detail


def test_the_app_lists_models_without_weights_and_never_offers_them(settings, monkeypatch):
    from assistant.models import MODELS
    from assistant.service import Service

    spec = MODELS["flan-t5-small"]
    monkeypatch.setitem(MODELS, "flan-t5-small", type(spec)(**{**spec.__dict__,
                                                               "available": lambda: False}))
    service = Service(settings)
    assert "flan-t5-small" in service.missing_models()
    assert "flan-t5-small" not in service.allowed_models()
    assert "fake" not in service.missing_models()


def test_a_search_hit_previews_the_words_it_matched():
    from assistant.ui.html import snippet

    text = "Intro words. " * 40 + "Positional encoding adds the order of the words. " + "More. " * 40
    shown = snippet(text, 240, near="positional encoding")
    assert "Positional encoding adds the order" in shown and shown.startswith("… ")
    assert len(shown) <= 240 and snippet(text, 240).startswith("Intro words.")
