"""The chat model interface on tiny random models: render, invoke, stream, batch, options."""

from __future__ import annotations

import functools

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from tiny_models import loader_for, tiny_llama, tiny_t5, train_tokenizer

from assistant.errors import ModelError, OptionsError, UnknownModelError
from assistant.models import MODELS, get_model
from assistant.models.fake import FakeChatModel
from assistant.models.hf import HFChatModel, cut_at_stop
from assistant.models.options import parse_options

PROMPTS = ["What is attention?", "BERT masks tokens. Why?", "Name a model by OpenAI please."]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer()


def causal(tokenizer, **options):
    options = {"max_new_tokens": 12, **options}
    # fp32: the default (bf16 on CPUs with native bf16) is not batch-invariant, and these
    # tests check that a batched answer is the one the prompt gets alone
    return HFChatModel(model_name="tiny-llama", kind="causal", device="cpu", options=options,
                       precision="fp32", loader=loader_for(tiny_llama(tokenizer), tokenizer))


def seq2seq(tokenizer):
    tok = train_tokenizer(chat_template=None)
    return HFChatModel(model_name="tiny-t5", kind="seq2seq", device="cpu", precision="fp32",
                       options={"max_new_tokens": 8}, loader=loader_for(tiny_t5(tok), tok))


def test_messages_use_the_chat_template_when_there_is_one(tokenizer):
    text = causal(tokenizer).render([SystemMessage("be brief"), HumanMessage("hi")])
    assert text == "<s>system: be brief\n<s>user: hi\n<s>assistant:"


def test_messages_become_plain_text_without_a_chat_template(tokenizer):
    text = seq2seq(tokenizer).render([SystemMessage("be brief"), HumanMessage("hi")])
    assert text == "be brief\n\nhi"


def test_invoke_reports_tokens_and_device(tokenizer):
    reply = causal(tokenizer).invoke(PROMPTS[0])
    assert isinstance(reply.content, str)
    assert reply.usage_metadata["input_tokens"] > 3
    assert 0 < reply.usage_metadata["output_tokens"] <= 12
    assert reply.response_metadata["device"] == "cpu"


def test_batched_greedy_equals_one_at_a_time(tokenizer):
    model = causal(tokenizer)
    batched = [m.content for m in model.batch(PROMPTS)]
    single = [model.invoke(p).content for p in PROMPTS]
    assert batched == single


def test_batch_is_one_decode_batch(tokenizer, monkeypatch):
    model = causal(tokenizer)
    loaded = model.load()
    calls = []
    original = loaded.model.forward

    @functools.wraps(original)  # keeps forward's signature, which the decode loop reads
    def spy(**kw):
        calls.append(kw["input_ids"].shape)
        return original(**kw)

    monkeypatch.setattr(loaded.model, "forward", spy)
    model.batch(PROMPTS)
    assert calls[0][0] == len(PROMPTS)  # one prefill of every prompt, then decode steps
    assert model.scheduler().batches == [len(PROMPTS)]


def test_stream_yields_pieces_that_join_to_the_invoke_answer(tokenizer):
    model = causal(tokenizer, max_new_tokens=16)
    chunks = list(model.stream(PROMPTS[1]))
    text = "".join(c.content for c in chunks)
    assert text.strip() == model.invoke(PROMPTS[1]).content
    assert len([c for c in chunks if c.content]) > 1
    assert chunks[-1].usage_metadata["output_tokens"] > 0


def test_seq2seq_model_generates_and_batches(tokenizer):
    model = seq2seq(tokenizer)
    batched = [m.content for m in model.batch(PROMPTS)]
    assert batched == [model.invoke(p).content for p in PROMPTS]
    assert all(m.usage_metadata["output_tokens"] <= 8 for m in model.batch(PROMPTS[:1]))


def test_stop_strings_cut_the_answer():
    assert cut_at_stop("one\n\ntwo", ("\n\n",)) == "one"
    assert cut_at_stop("one", ("\n\n",)) == "one"


@pytest.mark.parametrize("options, message", [
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"temperature": 5}, "temperature"),
    ({"top_k": 3}, "top_k: Extra inputs are not permitted"),
])
def test_bad_generation_options(options, message):
    with pytest.raises(OptionsError, match=message):
        parse_options(options)


def test_unknown_option_at_call_time_is_an_error(tokenizer):
    with pytest.raises(ModelError, match="unknown generation option"):
        causal(tokenizer).invoke("hi", top_k=3)


def test_registry_names_the_choices():
    with pytest.raises(UnknownModelError, match="choose one of: smollm2-135m-instruct"):
        get_model("gpt-17", "/tmp")
    assert {"smollm2-135m-instruct", "fake"} <= set(MODELS)


def test_registry_builds_lazily_without_loading_weights(tmp_path):
    model = get_model("smollm2-135m-instruct", tmp_path, {"max_new_tokens": 5})
    assert model._loaded is None and model.options.max_new_tokens == 5


def test_fake_model_replies_in_order_and_keeps_history():
    fake = FakeChatModel()
    fake.enqueue("first", "second")
    assert fake.invoke("a").content == "first"
    assert [c.content for c in fake.stream("b")][:1] == ["second"]
    assert fake.history == ["a", "b"]


def test_answer_no_repeat_bans_only_repeats_of_the_answer():
    import torch

    from assistant.models.hf import answer_no_repeat

    # prompt [5, 6, 7, 5, 6] then answer [1, 2, 3, 1, 2]: 3 would repeat the answer's "1 2 3"
    ids = torch.tensor([[5, 6, 7, 5, 6, 1, 2, 3, 1, 2]])
    scores = answer_no_repeat(3, start=5)(ids, torch.zeros(1, 10))
    assert scores[0, 3] == float("-inf")
    assert scores[0, 7] == 0  # "5 6 7" is in the prompt only: quoting the context stays allowed
    assert (scores[0] == float("-inf")).sum() == 1


def test_no_repeat_bans_the_word_with_or_without_its_leading_space(tokenizer):
    """Banning only the token " ever" let a model glue the word on: "whatever" ("typeof")."""
    import torch

    from assistant.models.decode import apply_no_repeat, word_keys

    spaced, glued = tokenizer.convert_tokens_to_ids(["\u0120ever", "ever"])
    answer = tokenizer("Attention ever Attention", add_special_tokens=False)["input_ids"]
    assert spaced in answer and glued not in answer
    keys = word_keys(tokenizer, len(tokenizer))
    scores = apply_no_repeat(torch.zeros(1, len(tokenizer)), torch.tensor([answer]), 2, keys)
    banned = set(torch.nonzero(scores[0] == float("-inf"))[:, 0].tolist())
    assert {spaced, glued} <= banned
    other = tokenizer.convert_tokens_to_ids("\u0120hid")
    assert scores[0, other] == 0  # other words stay allowed


def test_no_repeat_option_reaches_generate(tokenizer):
    from assistant.models.options import parse_options

    def bigrams_of_answer(model, no_repeat):
        enc = model._encode([model.render([HumanMessage(PROMPTS[0])])])
        start = enc["input_ids"].shape[1]
        opts = parse_options({"max_new_tokens": 40, "no_repeat_ngram_size": no_repeat})
        out = model.load().model.generate(**enc, **model._generate_kwargs(opts, start))
        tokens = out[0, start:].tolist()
        return list(zip(tokens, tokens[1:]))

    model = causal(tokenizer)
    looping = bigrams_of_answer(model, 0)
    assert len(looping) > len(set(looping))  # the random model repeats itself when allowed
    clean = bigrams_of_answer(model, 2)
    assert len(clean) == len(set(clean))


def test_a_model_that_cannot_load_raises_a_model_error():
    def broken(device, dtype):
        raise OSError("no such folder: /models/x")

    model = HFChatModel(model_name="broken", kind="causal", loader=broken)
    with pytest.raises(ModelError, match="cannot load model 'broken': no such folder"):
        model.invoke("hi")
