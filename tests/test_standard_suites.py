"""LangChain's standard chat-model test suites (langchain-tests) on courselab's chat model.

Tool calling and structured output are switched off with the suites' own switches:
these small local models have no tool-calling interface (no tool templates, no
constrained decoding), so binding tools would only pretend.
"""

from __future__ import annotations

import pytest
from conftest import ROOT
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests
from tiny_models import loader_for, tiny_llama, train_tokenizer

from assistant.models.hf import HFChatModel


def _tiny_loader():
    tokenizer = train_tokenizer()
    return loader_for(tiny_llama(tokenizer), tokenizer)


class TestHFChatModelUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[HFChatModel]:
        return HFChatModel

    @property
    def chat_model_params(self) -> dict:
        return {"model_name": "tiny-llama", "kind": "causal", "loader": _tiny_loader(),
                "options": {"max_new_tokens": 8}}

    @property
    def has_tool_calling(self) -> bool:
        return False  # no tool-calling interface in these models

    @property
    def has_structured_output(self) -> bool:
        return False  # no constrained decoding


@pytest.mark.e2e
class TestSmolLM2Integration(ChatModelIntegrationTests):
    """The standard integration suite on the real offline model (SmolLM2-135M-Instruct)."""

    @property
    def chat_model_class(self) -> type[HFChatModel]:
        return HFChatModel

    @property
    def chat_model_params(self) -> dict:
        from assistant.models import smollm2

        return {"model_name": "smollm2-135m-instruct", "kind": "causal",
                "loader": smollm2.loader(ROOT / ".cache"), "options": {"max_new_tokens": 16}}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True
