"""What the chat shows cannot make a reader's browser fetch anything: no HTML, no Markdown
image or link from a question, an answer or an uploaded file takes effect."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from assistant.ui.html import escape

PAYLOADS = [
    "![](http://attacker.test/x)",
    "![alt](http://attacker.test/x \"title\")",
    "[click](javascript:alert(1))",
    "![a][r]\n\n[r]: http://attacker.test/ref",
    "<img src=http://attacker.test/x>",
    "[![](http://attacker.test/x)](http://attacker.test/y)",
    "see ![x](<http://attacker.test/x>) please",
]


def rendered(text: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(text)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_images_and_links_are_inert(payload):
    html = rendered(escape(payload))
    assert "<img" not in html and "<a " not in html


def test_citations_still_link_after_escaping():
    from assistant.ui.chat import link_citations

    html = link_citations(escape("BERT masks words [1]."), [{"section": "BERT"}], 1)
    assert '<a href="#src-1-1" title="BERT">[1]</a>' in html


@settings(max_examples=300, deadline=500)
@given(st.lists(st.sampled_from([*"![]()<>:/\"' \nab.x-", "http://e.test/i", "](", "!["]),
                max_size=80).map("".join))
def test_no_escaped_text_renders_an_image_or_a_link(text):
    html = rendered(escape(text))
    assert "<img" not in html and "<a " not in html
