"""Dynamic batching inside the local model: concurrent requests share one decode batch,
each with its own stream, stop strings and limits, and the answer it would get alone."""

from __future__ import annotations

import functools
import threading

import pytest
from langchain_core.messages import HumanMessage
from tiny_models import loader_for, tiny_llama, train_tokenizer

from assistant.errors import ModelError
from assistant.models.hf import Generation, HFChatModel
from assistant.models.options import parse_options
from assistant.models.scheduler import ModelBusyError

PROMPTS = ["What is attention?", "BERT masks tokens. Why?", "Name a model by OpenAI please.",
           "Explain positional encodings.", "What does GPT stand for?"]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer()


def model_for(tokenizer, **fields):
    return HFChatModel(model_name="tiny", kind="causal", device="cpu", precision="fp32",
                       options={"max_new_tokens": 12}, batch_window_ms=200,
                       loader=loader_for(tiny_llama(tokenizer), tokenizer), **fields)


def stream(model, prompt, opts, out, index, started=None):
    pieces, final = [], None
    for piece in model.stream_text(model.render([HumanMessage(prompt)]), opts):
        if isinstance(piece, Generation):
            final = piece
        else:
            pieces.append(piece)
    out[index] = ("".join(pieces).strip(), final.output_tokens)


def run_concurrently(model, jobs):
    out = [None] * len(jobs)
    threads = [threading.Thread(target=stream, args=(model, p, o, out, i))
               for i, (p, o) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


def test_concurrent_streams_share_a_batch_and_each_gets_its_answer_alone(tokenizer):
    model = model_for(tokenizer)
    opts = [parse_options({"max_new_tokens": n, "no_repeat_ngram_size": 3}) for n in (4, 16, 9, 16, 2)]
    alone = [(g.text, g.output_tokens) for p, o in zip(PROMPTS, opts)
             for g in model.generate_texts([model.render([HumanMessage(p)])], o)]
    model.scheduler().batches.clear()
    together = run_concurrently(model, list(zip(PROMPTS, opts)))
    assert together == alone  # own limits, same greedy tokens
    assert max(model.scheduler().batches) > 1  # they were decoded together
    assert [n for _, n in together][:2] == [4, 16] or together[0][1] <= 4


def test_each_request_keeps_its_own_stop_strings(tokenizer):
    model = model_for(tokenizer)
    free = model.generate_texts([model.render([HumanMessage(PROMPTS[1])])],
                                parse_options({"max_new_tokens": 16}))[0].text
    word = free.split()[1] if len(free.split()) > 1 else free[:2]
    stop = parse_options({"max_new_tokens": 16, "stop": [word]})
    plain = parse_options({"max_new_tokens": 16})
    out = run_concurrently(model, [(PROMPTS[1], stop), (PROMPTS[1], plain)])
    assert word not in out[0][0] and out[0][0] == free[: free.find(word)].strip()
    assert out[1][0] == free


def test_a_request_that_leaves_frees_its_row_and_the_others_finish(tokenizer):
    model = model_for(tokenizer)
    long = parse_options({"max_new_tokens": 400, "min_new_tokens": 400})
    short = parse_options({"max_new_tokens": 30, "min_new_tokens": 30})
    leaving = model.stream_text(model.render([HumanMessage(PROMPTS[0])]), long)
    out = [None]
    other = threading.Thread(target=stream, args=(model, PROMPTS[1], short, out, 0))
    next(leaving)
    other.start()
    leaving.close()  # the client disconnected
    other.join(timeout=60)
    assert out[0] is not None and out[0][1] == 30
    assert model._lock.acquire(timeout=10)  # nothing is still decoding the 400 tokens
    model._lock.release()


def fake_jobs(n, opts=None):
    from assistant.models.decode import Job

    return [Job([1, 2, 3], opts or parse_options({"max_new_tokens": 2})) for _ in range(n)]


def blocked_scheduler(**kw):
    """A scheduler whose runs wait until `release` is set; `runs` records each batch."""
    from assistant.models.scheduler import Scheduler

    release, runs = threading.Event(), []

    def run(jobs):
        release.wait(10)
        runs.append(list(jobs))

    return Scheduler(run, window_s=0.05, **kw), release, runs


def test_past_the_queue_limit_a_request_is_told_the_model_is_busy():
    scheduler, release, _ = blocked_scheduler(max_queue=2)
    first = fake_jobs(1)
    scheduler.submit(first)  # taken by the worker, which now waits
    for _ in range(100):
        if scheduler.waiting() == 0:
            break
        threading.Event().wait(0.02)
    scheduler.submit(fake_jobs(2))  # two wait: the limit
    with pytest.raises(ModelBusyError, match="busy.*try again"):
        scheduler.submit(fake_jobs(1))
    release.set()
    assert first[0].done.wait(10)


def test_first_come_first_served_across_incompatible_options():
    scheduler, release, runs = blocked_scheduler()
    a = parse_options({"max_new_tokens": 3})
    b = parse_options({"max_new_tokens": 3, "no_repeat_ngram_size": 2})
    jobs = [fake_jobs(1, o)[0] for o in (a, b, a, b)]
    scheduler.submit(jobs)
    release.set()
    for job in jobs:
        assert job.done.wait(10)
    ids = {id(j): i for i, j in enumerate(jobs)}
    assert [[ids[id(j)] for j in batch] for batch in runs] == [[0, 2], [1, 3]]


def test_a_failing_batch_fails_each_of_its_requests_without_hanging():
    from assistant.models.scheduler import Scheduler

    def run(jobs):
        raise RuntimeError("out of memory")

    jobs = fake_jobs(2)
    # a ModelError (a CourselabError), so callers record it per row instead of crashing
    with pytest.raises(ModelError, match="generation failed on model: RuntimeError: out of memory"):
        Scheduler(run, window_s=0).complete(jobs)
    assert all(j.done.is_set() for j in jobs)


def test_closing_cancels_the_running_batch_waits_for_it_and_runs_nothing_after():
    from assistant.models.scheduler import Scheduler

    steps, started = [], threading.Event()

    def run(jobs):  # a decode loop: one step at a time until every row is cancelled
        started.set()
        while not all(j.cancel.is_set() for j in jobs):
            steps.append(1)
            threading.Event().wait(0.01)

    scheduler = Scheduler(run, window_s=0)
    running = fake_jobs(2)
    scheduler.submit(running)
    assert started.wait(10)
    assert scheduler.close(timeout=10)  # returns once the batch has ended
    assert all(j.cancel.is_set() and j.done.wait(5) for j in running)
    later = fake_jobs(1)
    scheduler.submit(later)  # e.g. a request racing the exit: refused, not run
    assert later[0].done.wait(10) and "shutting down" in str(later[0].error)


def test_the_worker_ends_when_the_queue_is_empty_and_a_new_one_takes_later_jobs():
    """An idle worker would keep its OpenMP pool and slow other threads' torch work
    (assistant/threads.py): it ends with its queue, and the next submit starts another."""
    from assistant.models.scheduler import Scheduler

    workers = []

    def run(jobs):
        workers.append(threading.current_thread())
        for job in jobs:
            job.text = "done"

    scheduler = Scheduler(run, window_s=0)
    first = scheduler.complete(fake_jobs(1))
    workers[0].join(timeout=10)
    assert not workers[0].is_alive() and scheduler._worker is None
    second = scheduler.complete(fake_jobs(2))
    assert [j.text for j in first + second] == ["done"] * 3
    assert len(workers) == 2 and workers[1] is not workers[0]


def test_at_exit_a_worker_that_is_ending_is_waited_for():
    """A worker that drops the last reference to its model frees the model's tensors on its
    way out; the exit hook joins it, so the interpreter never tears down under it."""
    from assistant.models import scheduler as module

    finishing = threading.Event()

    def run(jobs):
        for job in jobs:
            job.close()  # the caller has its answer; the worker goes on a while
        finishing.wait(0.3)

    worker_jobs = fake_jobs(1)
    module.Scheduler(run, window_s=0).submit(worker_jobs)
    assert worker_jobs[0].done.wait(10)
    alive = [w for w in module._workers if w.is_alive()]
    assert alive
    module._settle()
    assert not any(w.is_alive() for w in alive)


def rows_per_forward(model) -> list[int]:
    """Every forward's batch size from now on (a prefill of a group counts its prompts)."""
    weights, seen = model.load().model, []
    forward = weights.forward

    @functools.wraps(forward)  # the same signature: the engine reads its cache argument's name
    def counting(*args, **kwargs):
        seen.append(kwargs["input_ids"].shape[0])
        return forward(*args, **kwargs)

    weights.forward = counting
    return seen


def test_the_settings_size_the_batcher_of_every_registry_model(tokenizer, tmp_path):
    """COURSELAB_MAX_BATCH, _BATCH_WINDOW_MS and _MAX_QUEUE reach the model every front end
    builds (models.model_for); a batch of 1 is one answer at a time, as before batching."""
    from assistant.config import Settings
    from assistant.models import model_for as registry_model

    tiny_llama(tokenizer).save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    name = f"hf:{tmp_path / 'tiny'}"
    opts = parse_options({"max_new_tokens": 6, "min_new_tokens": 6})
    one = registry_model(Settings(max_batch=1, batch_window_ms=200, max_queue=9, precision="fp32",
                                  device="cpu"), name)
    scheduler = one.scheduler()
    assert (scheduler.max_batch, scheduler.window_s, scheduler.max_queue) == (1, 0.2, 9)
    seen = rows_per_forward(one)
    run_concurrently(one, [(p, opts) for p in PROMPTS[:3]])
    assert seen and set(seen) == {1}
    many = registry_model(Settings(batch_window_ms=200, precision="fp32", device="cpu"), name)
    seen = rows_per_forward(many)
    run_concurrently(many, [(p, opts) for p in PROMPTS[:3]])
    assert max(seen) == 3
