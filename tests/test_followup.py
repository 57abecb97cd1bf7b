"""Follow-up questions become standalone search queries; standalone ones are left alone."""

import pytest

from assistant.chain.followup import needs_context, rewrite, subject


@pytest.mark.parametrize("question, earlier, expected", [
    ("and how many parameters does it have?", ["What is BERT?"], "How many parameters does BERT have?"),
    ("What is it trained on?", ["What is BERT?", "How many parameters does BERT have?"],
     "What is BERT trained on?"),
    ("what about GPT?", ["How many parameters does BERT have?"], "How many parameters does GPT have?"),
    ("What are its main parts?", ["How does the Transformer work?"], "What are Transformer's main parts?"),
    ("why is that?", ["What is self-attention?"], "Why is that (self-attention)?"),
    ("What is GPT?", ["What is BERT?"], "What is GPT?"),  # standalone: untouched
    ("what is the model that masks words?", ["What is BERT?"], "what is the model that masks words?"),
    ("and how many parameters does it have?", [], "and how many parameters does it have?"),
])
def test_rewrite(question, earlier, expected):
    assert rewrite(question, earlier) == expected


@pytest.mark.parametrize("question, expected", [
    ("What is BERT?", False), ("How does it work?", True), ("And GPT?", True),
    ("Why?", True), ("How are their weights shared?", True), ("What is positional encoding?", False),
])
def test_needs_context(question, expected):
    assert needs_context(question) is expected


def test_subject_prefers_named_terms():
    assert subject("How does BERT differ from GPT?") == "BERT GPT"
    assert subject("What does the decoder do?") == "decoder"
