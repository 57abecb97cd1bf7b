"""Continuous batching in the decode loop: requests join a batch that is decoding, a
shared prompt prefix is prefilled once, long prompts are prefilled in chunks between
decode steps, finished rows are handed back at once; every greedy answer is the one the
request gets alone (fp32)."""

from __future__ import annotations

import functools
import threading

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from tiny_models import loader_for, tiny_llama, train_tokenizer

from assistant.models.decode import Job, fit_prompt, turn_prefix
from assistant.models.hf import HFChatModel
from assistant.models.options import parse_options

SYSTEM = "You are a course assistant. Answer briefly from the notes, citing the sections."
QUESTIONS = ["What is attention?", "BERT masks tokens. Why?", "Name a model by OpenAI please.",
             "Explain positional encodings.", "What does GPT stand for?"]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer()


def model_for(tokenizer, **engine):
    model = HFChatModel(model_name="tiny", kind="causal", device="cpu", precision="fp32",
                        options={"max_new_tokens": 12}, batch_window_ms=0,
                        loader=loader_for(tiny_llama(tokenizer), tokenizer))
    for name, value in engine.items():
        setattr(model.load().engine, name, value)
    return model


def prompt(model, question, system=True):
    return model.render(([SystemMessage(SYSTEM)] if system else []) + [HumanMessage(question)])


def alone(tokenizer, question, opts, system=True, **engine):
    """The answer on a fresh model (cold: nothing cached, nothing else running)."""
    model = model_for(tokenizer, **engine)
    job = model._job(prompt(model, question, system), opts)
    model.scheduler().complete([job])
    return job.text, job.output_tokens


def test_a_request_arriving_while_a_batch_decodes_joins_it_and_gets_its_answer_alone(tokenizer):
    long = parse_options({"max_new_tokens": 60, "min_new_tokens": 60, "no_repeat_ngram_size": 3})
    short = parse_options({"max_new_tokens": 10, "no_repeat_ngram_size": 3})
    want = [alone(tokenizer, QUESTIONS[0], long), alone(tokenizer, QUESTIONS[1], short),
            alone(tokenizer, QUESTIONS[2], short, system=False)]
    model = model_for(tokenizer)
    engine = model.load().engine
    first = model._job(prompt(model, QUESTIONS[0]), long)
    started = threading.Event()
    first.emit = lambda piece: started.set()
    model.scheduler().submit([first])
    assert started.wait(30)  # the first answer is being written
    late = [model._job(prompt(model, QUESTIONS[1]), short),
            model._job(prompt(model, QUESTIONS[2], system=False), short)]
    model.scheduler().complete(late)
    assert not first.done.is_set(), "the late requests waited for the running batch to end"
    assert first.done.wait(60)
    assert engine.stats["joined"] == 2  # they joined the running batch, not a later one
    assert [(j.text, j.output_tokens) for j in [first, *late]] == want


def test_a_finished_row_is_handed_back_while_the_others_decode(tokenizer):
    model = model_for(tokenizer)
    long = model._job(prompt(model, QUESTIONS[0]),
                      parse_options({"max_new_tokens": 80, "min_new_tokens": 80}))
    short = model._job(prompt(model, QUESTIONS[1]),
                       parse_options({"max_new_tokens": 3, "min_new_tokens": 3}))
    model.scheduler().submit([long, short])
    assert short.done.wait(30) and short.output_tokens == 3
    assert not long.done.is_set()  # the short answer did not wait for the long one
    assert long.done.wait(60) and long.output_tokens == 80


def test_a_shared_system_prompt_is_prefilled_once_and_answers_do_not_change(tokenizer,
                                                                             monkeypatch):
    opts = parse_options({"max_new_tokens": 12, "no_repeat_ngram_size": 3})
    want = [alone(tokenizer, q, opts) for q in QUESTIONS]
    model = model_for(tokenizer)
    engine = model.load().engine
    calls: list[tuple] = []
    forward = engine.model.forward

    @functools.wraps(forward)
    def spy(*args, **kwargs):
        calls.append(tuple(kwargs["input_ids"].shape))
        return forward(*args, **kwargs)

    monkeypatch.setattr(engine.model, "forward", spy)
    split = turn_prefix(engine.tokenizer(prompt(model, QUESTIONS[0]))["input_ids"],
                        set(engine.tokenizer.all_special_ids))
    assert split >= engine.min_prefix  # the system turn is the prefix
    jobs = [model._job(prompt(model, q), opts) for q in QUESTIONS]
    model.scheduler().complete(jobs)
    assert [(j.text, j.output_tokens) for j in jobs] == want
    assert engine.stats["prefix_hits"] == len(QUESTIONS) - 1  # computed once, reused 4 times
    assert engine.stats["reused_tokens"] == (len(QUESTIONS) - 1) * split
    prefills = [c for c in calls if c[1] > 1]
    assert prefills[0] == (1, split) and len(prefills) == 2  # the prefix, then every suffix
    assert prefills[1][0] == len(QUESTIONS)  # in one forward
    again = model._job(prompt(model, QUESTIONS[3]), opts)  # a later request reuses it too
    model.scheduler().complete([again])
    assert (again.text, again.output_tokens) == want[3]
    assert engine.stats["prefix_hits"] == len(QUESTIONS)


def test_a_long_prompt_is_prefilled_in_chunks_between_decode_steps(tokenizer, monkeypatch):
    """One huge request cannot stall the answers being written: its prompt is prefilled a
    chunk per decode step, and its own answer is the one it gets alone."""
    small = {"chunk": 8, "prefill_per_step": 8}
    opts = parse_options({"max_new_tokens": 40, "min_new_tokens": 40})
    question = " ".join(QUESTIONS * 3)
    want = [alone(tokenizer, QUESTIONS[0], opts, **small), alone(tokenizer, question, opts, **small)]
    model = model_for(tokenizer, **small)
    calls: list[int] = []
    forward = model.load().model.forward

    @functools.wraps(forward)  # keeps forward's signature (the cache argument's name)
    def spy(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[1])  # 1: a decode step; more: a prompt chunk
        return forward(*args, **kwargs)

    monkeypatch.setattr(model.load().model, "forward", spy)
    first = model._job(prompt(model, QUESTIONS[0]), opts)
    started = threading.Event()
    first.emit = lambda piece: started.set()
    model.scheduler().submit([first])
    assert started.wait(30)
    calls.clear()
    huge = model._job(prompt(model, question), opts)
    assert len(huge.ids) > 5 * 8
    model.scheduler().complete([huge])
    assert first.done.wait(60)
    chunks = [i for i, n in enumerate(calls) if n > 1]
    assert len(chunks) >= 5 and all(n <= 8 for n in calls)
    decoded_between = sum(1 for n in calls[chunks[0]:chunks[-1]] if n == 1)
    assert decoded_between >= len(chunks) - 1  # a decode step after every chunk
    assert [(first.text, first.output_tokens), (huge.text, huge.output_tokens)] == want


def test_an_oversized_prompt_is_fitted_to_the_window_before_it_joins(tokenizer):
    model = model_for(tokenizer)
    model.context_window = 64
    opts = parse_options({"max_new_tokens": 20})
    job = model._job(prompt(model, " ".join(QUESTIONS * 20)), opts)
    assert len(job.ids) + job.opts.max_new_tokens <= 64
    end = model.load().tokenizer("<s>assistant:", add_special_tokens=False)["input_ids"]
    assert job.ids[-len(end):] == end  # the turn marker the answer follows is kept
    model.scheduler().complete([job])
    assert job.output_tokens >= 1
    huge_limit = model._job(prompt(model, QUESTIONS[0]), parse_options({"max_new_tokens": 4000}))
    assert huge_limit.opts.max_new_tokens == 32  # at most half the window


def test_fit_prompt_keeps_the_head_and_the_end():
    assert fit_prompt(list(range(10)), 4, 8) == ([0, 7, 8, 9], 4)
    assert fit_prompt(list(range(5)), 4, 16) == (list(range(5)), 4)
    assert fit_prompt(list(range(100)), 1000, 64)[1] == 32
    ids, new = fit_prompt(list(range(1000)), 16, 64)
    assert len(ids) == 48 and ids[:12] == list(range(12)) and ids[-1] == 999 and new == 16


def test_the_prefix_is_the_turns_before_the_last_question():
    s, a, b = 1, 7, 8
    assert turn_prefix([s, a, a, s, b, b, s, a], {s}) == 3
    assert turn_prefix([s, a, s, b], {s}) == 0  # no system turn: nothing shared
    assert turn_prefix([a, b, a, b, a], {s}) == 0  # plain text: no split
    assert turn_prefix([9, s, a, s, b, s], {s, 9}) == 3  # a begin-of-text token first


def test_cancelled_jobs_leave_and_the_rest_match_alone(tokenizer):
    opts = parse_options({"max_new_tokens": 15})
    want = alone(tokenizer, QUESTIONS[4], opts)
    model = model_for(tokenizer)
    gone = model._job(prompt(model, QUESTIONS[3]), opts)
    gone.cancel.set()
    stay = model._job(prompt(model, QUESTIONS[4]), opts)
    model.scheduler().complete([gone, stay])
    assert (stay.text, stay.output_tokens) == want and gone.done.is_set()


def test_jobs_are_plain_data():
    job = Job([1, 2], parse_options({"max_new_tokens": 2}))
    calls = []
    job.on_done = lambda: calls.append(1)
    job.close()
    job.close()
    assert calls == [1] and job.done.is_set()  # told once


def test_the_prefix_cache_is_bounded(tokenizer):
    opts = parse_options({"max_new_tokens": 4})
    model = model_for(tokenizer, prefix_tokens=60)
    engine = model.load().engine
    for system in ("Short system prompt.", "Another short one.", "A third system prompt."):
        job = model._job(model.render([SystemMessage(system), HumanMessage(QUESTIONS[0])]), opts)
        model.scheduler().complete([job])
        assert sum(len(p) for p in engine._prefixes) <= 60  # least recently used went first
    long = model._job(prompt(model, QUESTIONS[0]), opts)  # its prefix alone is over the bound
    model.scheduler().complete([long])
    assert long.output_tokens >= 1 and len(engine._prefixes) >= 1
    assert all(len(p) <= 60 for p in engine._prefixes)


def test_a_cache_layer_with_room_writes_in_place_and_copies_what_others_changed():
    """decode.slack_layer: the same keys as concatenation after appends, a crop, a row
    selection and a prefix kept as a view, while a plain append copies nothing."""
    import torch

    from assistant.models.decode import SLACK_TOKENS, slack_layer

    torch.manual_seed(0)
    layer, plain = slack_layer()(), []
    chunks = [torch.randn(2, 3, n, 4) for n in (5, 1, 1)]
    for chunk in chunks:
        layer.update(chunk, -chunk)
        plain.append(chunk)
    assert torch.equal(layer.keys, torch.cat(plain, -2)) and torch.equal(layer.values, -layer.keys)
    storage = layer.keys.data_ptr()
    prefix = layer.keys[:, :, :5]  # kept, as the engine keeps a shared prefix
    kept = prefix.clone()
    layer.crop(-1)  # a rejected draft
    nxt = torch.randn(2, 3, 1, 4)
    layer.update(nxt, -nxt)
    assert layer.keys.data_ptr() == storage  # in place: no copy of the cache
    assert torch.equal(layer.keys, torch.cat([*plain[:2], nxt], -2)) and torch.equal(prefix, kept)
    layer.batch_select_indices(torch.tensor([1]))  # a row left: a new tensor, copied once
    more = torch.randn(1, 3, SLACK_TOKENS + 3, 4)  # past the room: a bigger buffer
    layer.update(more, -more)
    assert torch.equal(layer.keys, torch.cat([plain[0][1:], plain[1][1:], nxt[1:], more], -2))
    assert torch.equal(layer.values, -layer.keys)


@pytest.mark.parametrize("cap, widths", [(2048, [1, 3]), (1, [1, 1, 1, 1])])
def test_long_prompts_asked_at_once_are_prefilled_in_one_forward_when_nothing_decodes(
        tokenizer, monkeypatch, cap, widths):
    """A class asking together: with no answer being written, long prompts (past `chunk`,
    within `group_tokens`) share wide prefills of at most `group_cap` tokens; each answer is
    the one it gets alone."""
    small = {"chunk": 8, "group_tokens": 512, "group_cap": cap}
    opts = parse_options({"max_new_tokens": 12, "min_new_tokens": 12})
    questions = [" ".join(QUESTIONS[i:] + QUESTIONS[:i]) for i in range(3)]
    want = [alone(tokenizer, q, opts, **small) for q in questions]
    model = model_for(tokenizer, **small)
    calls: list[tuple[int, int]] = []
    forward = model.load().model.forward

    @functools.wraps(forward)
    def spy(*args, **kwargs):
        if "logits_to_keep" in kwargs:  # a prefill (a decode step keeps every position)
            calls.append(tuple(kwargs["input_ids"].shape))
        return forward(*args, **kwargs)

    monkeypatch.setattr(model.load().model, "forward", spy)
    jobs = [model._job(prompt(model, q), opts) for q in questions]
    assert all(len(j.ids) > 8 for j in jobs)
    model.scheduler().complete(jobs)
    # the shared system prompt once (kept), then the questions' parts, as many as fit a forward
    assert [rows for rows, _ in calls] == widths
    assert [(j.text, j.output_tokens) for j in jobs] == want


def test_prompts_that_wait_together_are_grouped_by_length_and_the_first_group_streams_first(
        tokenizer, monkeypatch):
    """Prompts asked while nothing decodes are ordered by length: the two short ones share a
    forward, the two long ones another (asked long, short, long, short, a forward padded to
    the longest would be twice as wide); `group_cap` counts the padding. The first group's
    rows take a token before the next group is prefilled, so their students read the start of
    their answers while the others' prompts are computed. Each answer is the one it gets alone."""
    small = {"chunk": 8, "group_tokens": 512}
    opts = parse_options({"max_new_tokens": 8, "min_new_tokens": 8})
    short, long = QUESTIONS[0], " ".join(QUESTIONS)
    questions = [long, short, long + " Again?", short + " Why?"]
    want = [alone(tokenizer, q, opts, **small) for q in questions]
    model = model_for(tokenizer, **small)
    model.scheduler().complete([model._job(prompt(model, "Warm up."), opts)])  # prefix cached
    jobs = [model._job(prompt(model, q), opts) for q in questions]
    needs = [model.load().engine._need(j) for j in jobs]
    model.load().engine.group_cap = 2 * max(needs)  # room for two rows of the longest, not three
    calls: list[tuple[int, int]] = []
    forward = model.load().model.forward

    @functools.wraps(forward)
    def spy(*args, **kwargs):
        # a prefill keeps one position's logits, a decode step every position's
        kind = "prefill" if "logits_to_keep" in kwargs else "step"
        calls.append((kind, *kwargs["input_ids"].shape))
        return forward(*args, **kwargs)

    monkeypatch.setattr(model.load().model, "forward", spy)
    model.scheduler().complete(jobs)
    short_width, long_width = max(needs[1], needs[3]), max(needs[0], needs[2])
    assert calls[:4] == [("prefill", 2, short_width), ("step", 2, 1), ("prefill", 2, long_width),
                         ("step", 4, 1)]
    assert [(j.text, j.output_tokens) for j in jobs] == want
