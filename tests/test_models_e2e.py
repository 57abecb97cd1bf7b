"""The bundled offline models, loaded for real: Gemma 3 270M (base) and SmolLM2 in each precision.

Generated text is never compared word for word; its shape is.
"""

from __future__ import annotations

import pytest
from conftest import ROOT
from langchain_core.messages import HumanMessage

pytestmark = pytest.mark.e2e
CACHE = ROOT / ".cache"
FEW_SHOT = ("Notes: The Eiffel Tower was completed in 1889.\n"
            "Question: When was the Eiffel Tower completed?\nAnswer: In 1889.\n\n"
            "Notes: BERT uses WordPiece embeddings with a 30,000 token vocabulary.\n"
            "Question: What vocabulary size does BERT use?\nAnswer:")


def test_gemma_loads_from_its_package_and_answers_one_line():
    from assistant.models import MODELS, get_model

    spec = MODELS["gemma3-270m"]
    assert spec.available() and not spec.chat_template and "Gemma Terms of Use" in spec.terms
    model = get_model("gemma3-270m", CACHE, {"max_new_tokens": 24})
    prompt = model.render([HumanMessage(FEW_SHOT)])
    assert prompt == FEW_SHOT  # plain text: no chat template on a base model
    reply = model.invoke([HumanMessage(FEW_SHOT)])
    assert reply.content.strip() and "\n" not in reply.content
    assert "30,000" in reply.content or "30000" in reply.content  # it copies from the notes
    assert reply.usage_metadata["output_tokens"] < 24  # stopped at the end of the line
    pieces = [c.content for c in model.stream([HumanMessage(FEW_SHOT)])]
    assert "".join(pieces).strip() == reply.content


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_smollm2_in_each_precision_answers(precision):
    from assistant.models import get_model

    model = get_model("smollm2-135m-instruct", CACHE, {"max_new_tokens": 16}, device="cpu",
                      precision=precision)
    reply = model.invoke("What is the capital of France?")
    assert model.load().precision == precision
    assert "Paris" in reply.content
