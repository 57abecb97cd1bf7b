"""The answering chain: retrieve, compress, ground, decide, render, generate, check.

`retrieve` runs once per question (shared by every template and model of a comparison);
`CourseAssistant.fitted` fits it to one template and model; `answer_batch` is the one place
that generates: every front end (ask, chat, compare, evals, the API) answers through it or,
token by token, through `CourseAssistant.stream`, and both finish an answer in `_finish`.
A question the course does not cover, or whose asked fact it does not hold, is answered
without the model.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from langchain_core.runnables import RunnableLambda

from assistant.chain.budget import Budget, fit
from assistant.chain.compress import Passage, compress, format_context, score_units
from assistant.chain.grounding import Quote, Support, check_support, choose_quote, missing_fact
from assistant.config import MAX_QUESTION_CHARS
from assistant.errors import CourselabError, InputError
from assistant.retrieval import Hit

NOT_COVERED = "The course does not cover this question."
NOT_SUPPORTED = "The model's answer is not supported by the course; the course says:"


@dataclass
class Answer:
    """A structured answer: the course's words, the model's words, and how they relate.

    `lead` is what the student reads first: the model's answer when the passages support
    it, else the quote (the course's own sentences), else the abstention.
    """

    question: str
    answer: str
    abstained: bool
    sources: list[Hit]
    model: str
    prompt: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    budget: Budget | None = None
    reasoning: str | None = None  # the whole reply, when the answer was extracted from it
    quote: list[Quote] = field(default_factory=list)
    support: Support | None = None
    lead: str = ""
    lead_from: str = "answer"  # "answer", "quote" or "abstention"
    missing: str | None = None  # a near miss: the asked fact the course does not hold
    template: str = ""
    cached: bool = False
    error: str | None = None
    finish: str | None = None  # why the model stopped ("stop", "length"), when it says

    def to_dict(self) -> dict:
        return {"answer": self.answer, "lead": self.lead, "lead_from": self.lead_from,
                "quote": [q.to_dict() for q in self.quote],
                "support": self.support.to_dict() if self.support else None,
                "abstained": self.abstained, "missing": self.missing,
                "reasoning": self.reasoning, "sources": [h.to_dict() for h in self.sources],
                "model": self.model, "template": self.template, "prompt": self.prompt,
                "timings": self.timings, "tokens": self.tokens,
                "budget": self.budget.to_dict() if self.budget else None,
                "cached": self.cached, "error": self.error, "finish": self.finish}

    def to_row(self) -> dict:
        """The fields an evaluation row keeps (the sources are kept as hits beside it)."""
        generated = bool(self.prompt)
        return {"answer": self.answer, "abstained": self.abstained, "prompt": self.prompt,
                "latency_s": self.timings.get("latency_s") if generated else None,
                "tokens": self.tokens if generated else None, "cached": self.cached,
                "lead": self.lead, "lead_from": self.lead_from,
                "quote": [q.to_dict() for q in self.quote],
                "support": self.support.to_dict() if self.support else None,
                "missing": self.missing}


@dataclass
class Prepared:
    """Everything decided before generation."""

    question: str
    hits: list[Hit]
    passages: list[Passage]
    best_score: float
    unknown_terms: list[str]
    abstained: bool
    started: float
    retrieve_s: float
    budget: Budget | None = None
    numbered: bool = False  # passages shown as [1], [2], ... for citing templates
    quote: list[Quote] = field(default_factory=list)
    missing: str | None = None

    @property
    def inputs(self) -> dict:
        return {"context": format_context(self.passages, self.numbered), "question": self.question}

    @property
    def sources(self) -> list[Hit]:
        """What the model actually saw (or, when abstaining, the closest sections)."""
        return [p.hit for p in self.passages] if not self.abstained else self.hits

    @property
    def seen(self) -> list[str]:
        """The sentences the model saw, for checking its answer."""
        return [s for p in self.passages for s in p.sentences]


# off-topic too: the question's words include enough that the course never uses, and no
# sentence is close. Each tier: (at least this many such words, this share of the question's
# words, best sentence below this cosine). Tuning pool of 1450 answerable questions: none of
# those with three such words has a sentence below 0.45 (a share of 0.35 rather than 0.55
# catches "any tips to improve my attention span when studying for long exams?"); two such
# words in a short question ("how often should an acoustic piano be fine tuned") need a
# farther best sentence, since answerable ones come that far ("who published attention is all
# you need, and what did it get rid of": 0.353, but two words of six).
FOREIGN_TIERS = ((3, 0.35, 0.45), (2, 0.4, 0.38))


def another_field(strange: int, words: int, best: float) -> bool:
    """`strange` of the question's `words` are words the course never uses, best cosine `best`."""
    return any(strange >= max(n, share * words) and best < below for n, share, below in FOREIGN_TIERS)


def check_question(question: str) -> str:
    """The question stripped, or an InputError for an empty or over-long one."""
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty")
    question = question.strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(f"the question is {len(question)} characters long; "
                         f"the limit is {MAX_QUESTION_CHARS}")
    return question


def retrieve(retriever, question: str, k: int = 4, min_score: float = 0.2,
             max_sentences: int = 4) -> Prepared:
    """Retrieve, compress, ground and decide once, for any template and model (see `fitted`)."""
    question = check_question(question)
    start = time.perf_counter()
    hits, vector = retriever.search_with_vector(question, k)
    candidates, scores = score_units(vector, hits, retriever.index.embedder)
    passages, best = compress(candidates, scores, hits, max_sentences)
    unknown = retriever.unknown_terms(question)
    # another field's question that shares a word with the course ("electrical transformers")
    strange, words = retriever.foreign_words(question)
    foreign = another_field(len(strange), words, best)
    off_topic = not passages or best < min_score or bool(unknown) or foreign
    quote = choose_quote(question, candidates, scores, retriever.term_idf())
    missing = None if off_topic else missing_fact(question, candidates)
    return Prepared(question, hits, passages, best, unknown, off_topic or missing is not None,
                    start, time.perf_counter() - start, quote=[] if off_topic else quote,
                    missing=missing)


class CourseAssistant:
    """Answers questions from the course index with a chat model and a prompt template."""

    def __init__(self, retriever, model, template, k: int = 4, min_score: float = 0.2,
                 max_sentences: int = 4):
        self.retriever, self.model, self.template = retriever, model, template
        self.k, self.min_score = k, min_score
        self.max_sentences = max_sentences
        self.prompt = template.chat_prompt(retriever.index.embedder)
        self.chain = RunnableLambda(self.prepare) | RunnableLambda(lambda p: self.answer_prepared([p])[0])

    @property
    def model_name(self) -> str:
        return getattr(self.model, "model_name", type(self.model).__name__)

    @property
    def generates(self) -> bool:
        """False for the extractive baseline, whose answer is the quote."""
        return not getattr(self.model, "extractive", False)

    def prepare(self, question: str) -> Prepared:
        """Retrieve, compress, decide whether the course covers the question, and fit."""
        return self.fitted(self.retrieve(question))

    def retrieve(self, question: str) -> Prepared:
        """Retrieve and compress once; `fitted` then fits it to any template and model."""
        return retrieve(self.retriever, question, self.k, self.min_score, self.max_sentences)

    def fitted(self, prepared: Prepared) -> Prepared:
        """This template's view of a retrieval: its context style, cut to this model's window."""
        prepared = replace(prepared, numbered=self.template.numbered_context)
        if not prepared.abstained and self.generates:
            prepared.passages, prepared.budget = self._fit(prepared)
        return prepared

    def _fit(self, prepared: Prepared):
        """Drop or shorten passages until the rendered prompt fits the model's input window."""
        window = self.model.input_window()
        new_tokens = self.template.generation.get("max_new_tokens", self.model.options.max_new_tokens)
        reserve = new_tokens if self.model.kind == "causal" else 0

        def tokens(passages):
            inputs = {"context": format_context(passages, prepared.numbered),
                      "question": prepared.question}
            return self.model.count_tokens(self._render(inputs))

        return fit(prepared.passages, tokens, window - reserve)

    def messages(self, prepared: Prepared):
        """The chat messages for a prepared question."""
        return self.prompt.invoke(prepared.inputs)

    def render(self, prepared: Prepared) -> str:
        """The exact text the model receives."""
        return self._render(prepared.inputs) if self.generates else ""

    def _render(self, inputs: dict) -> str:
        return self.model.render(self.prompt.invoke(inputs).to_messages())

    def options(self, seed: int | None = None) -> dict:
        """The generation options of this template on this model (the cache key's part)."""
        base = self.model.options.model_dump(mode="json") if hasattr(self.model, "options") else {}
        extra = {} if seed is None else {"seed": seed}
        precision = getattr(self.model, "precision", "auto")
        if precision not in ("auto", None):  # an int8 answer is not an fp32 one: never share a key
            extra["precision"] = precision
        return {**base, **self.template.generation, **extra}

    def bound(self, seed: int | None = None):
        """The model with this template's generation options (and a seed) bound to it."""
        options = {**self.template.generation, **({} if seed is None else {"seed": seed})}
        return self.model.bind(**options) if options else self.model

    # --- answering ---------------------------------------------------------------------------
    def answer(self, question: str) -> Answer:
        return self.chain.invoke(question)

    def batch(self, questions: list[str]) -> list[Answer]:
        """Answer many questions with one batched generation for all that need the model."""
        return self.answer_prepared([self.prepare(q) for q in questions])

    def answer_prepared(self, prepared: list[Prepared], seed: int | None = None,
                        cache=None) -> list[Answer]:
        return answer_batch([(self, p) for p in prepared], seed=seed, cache=cache)

    def stream(self, question: str) -> Iterator[Prepared | str | Answer]:
        """The prepared question (with its quote) first, then text pieces, then the `Answer`."""
        prepared = self.prepare(question)
        yield prepared
        if prepared.abstained or not self.generates:
            answer = answer_batch([(self, prepared)])[0]
            yield answer.answer
            yield answer
            return
        t0, first, text, usage, finish = time.perf_counter(), None, "", None, None
        for chunk in self.bound().stream(self.messages(prepared)):
            if chunk.content:
                first = first or time.perf_counter() - t0
                text += chunk.content
                yield chunk.content
            usage = chunk.usage_metadata or usage
            finish = (chunk.response_metadata or {}).get("finish_reason") or finish
        now = time.perf_counter()
        timings = {"generate_s": now - t0, "latency_s": now - t0}
        if first is not None:
            timings["first_token_s"] = first
        yield self._finish(prepared, {"text": text, "tokens": _tokens(usage), "finish": finish},
                           timings)

    def _finish(self, p: Prepared, reply: dict | None, timings: dict, error: str | None = None
                ) -> Answer:
        """The Answer for a prepared question and the model's reply (None: abstained)."""
        timings = {"retrieve_s": p.retrieve_s, **timings,
                   "total_s": time.perf_counter() - p.started}
        timings = {k: round(v, 4) for k, v in timings.items()}
        base = dict(question=p.question, sources=p.sources, model=self.model_name,
                    timings=timings, quote=p.quote, template=self.template.name,
                    missing=p.missing)
        if error is not None:
            return Answer(answer="", abstained=False, error=error, lead="", lead_from="error",
                          tokens={"input": 0, "output": 0}, **base)
        if p.abstained:
            text = abstention(p)
            return Answer(answer=text, abstained=True, lead=text, lead_from="abstention",
                          tokens={"input": 0, "output": 0}, **base)
        if not self.generates:
            text = " ".join(q.text for q in p.quote)
            return Answer(answer=text, abstained=False, lead=text, lead_from="quote",
                          support=Support("supported"), tokens={"input": 0, "output": 0}, **base)
        raw = str(reply["text"]).strip()
        final = self.template.final_answer(raw)
        support = check_support(final, p.seen, p.question, p.quote)
        lead, lead_from = (final, "answer") if support.leads else (
            " ".join(q.text for q in p.quote), "quote")
        return Answer(answer=final, abstained=False, prompt=self.render(p),
                      tokens=reply.get("tokens") or {"input": 0, "output": 0}, budget=p.budget,
                      reasoning=raw if final != raw else None, support=support, lead=lead,
                      lead_from=lead_from, cached=bool(reply.get("cached")),
                      finish=reply.get("finish"), **base)


_INVERTED = re.compile(r"(?:what|which|who|when|where|why|how)(?: [\w-]+){0,2}? "
                       r"(?:does|do|did|is|are|was|were|can|could|has|have|should|would|will)\b", re.I)


def abstention(p: Prepared) -> str:
    """What the student reads when the assistant does not answer."""
    if p.missing and p.quote:
        # "how many GPUs trained BioGPT" reads on; "what does LSTM stand for" is asked as it was
        said = f": {p.missing}?" if _INVERTED.match(p.missing) else f" {p.missing}."
        return f"The course does not say{said} The closest passage: {p.quote[0].text}"
    sections = list(dict.fromkeys(h.section for h in p.hits))[:3]
    return NOT_COVERED + (f" The closest sections are: {'; '.join(sections)}" if sections else "")


def _tokens(usage) -> dict:
    usage = usage or {}
    return {"input": usage.get("input_tokens", 0), "output": usage.get("output_tokens", 0)}


# --- the one place that generates ----------------------------------------------------------------
def answer_batch(jobs: list[tuple[CourseAssistant, Prepared]], seed: int | None = None,
                 cache=None) -> list[Answer]:
    """Answer (assistant, prepared) pairs: one batched call per model and generation options.

    Each prompt is rendered once; replies come from `cache` (get/put by key) when it has
    them; abstentions and the extractive baseline never call a model. A model that fails
    fails its own answers only, with the error in `Answer.error`.
    """
    replies: dict[int, dict] = {}
    errors: dict[int, str] = {}
    groups: dict[tuple, list[tuple[int, str]]] = {}
    for n, (assistant, p) in enumerate(jobs):
        if p.abstained or not assistant.generates:
            continue
        prompt = assistant.render(p)
        options = assistant.options(seed)
        key = _cache_key(assistant, options, prompt) if cache is not None else None
        hit = cache.get(key) if key else None
        if hit:
            replies[n] = {**hit, "cached": True}
            continue
        group = (id(assistant.model), repr(sorted(assistant.template.generation.items())))
        groups.setdefault(group, []).append((n, key))
    timings: dict[int, dict] = {}
    for members in groups.values():
        _generate(jobs, members, seed, cache, replies, errors, timings)
    return [a._finish(p, replies.get(n), timings.get(n, _cached_timing(replies.get(n))),
                      errors.get(n)) for n, (a, p) in enumerate(jobs)]


def _generate(jobs, members, seed, cache, replies, errors, timings) -> None:
    """One batched call for prompts that share a model and generation options."""
    assistant = jobs[members[0][0]][0]
    model = assistant.bound(seed)
    start = time.perf_counter()
    try:
        out = model.batch([jobs[n][0].messages(jobs[n][1]) for n, _ in members])
    except CourselabError as e:
        errors.update((n, str(e)) for n, _ in members)
        return
    wall = time.perf_counter() - start
    for (n, key), reply in zip(members, out):
        value = {"text": str(reply.content), "latency_s": round(wall / len(members), 4),
                 "tokens": _tokens(reply.usage_metadata),
                 "finish": (reply.response_metadata or {}).get("finish_reason")}
        if cache is not None and key:
            cache.put(key, value)
        replies[n] = {**value, "cached": False}
        timings[n] = {"generate_s": wall, "latency_s": wall / len(members),
                      "batch_size": len(members)}


def _cached_timing(reply: dict | None) -> dict:
    return {"latency_s": reply["latency_s"]} if reply and "latency_s" in reply else {}


def _cache_key(assistant: CourseAssistant, options: dict, prompt: str) -> str:
    from assistant.chain.cache import cache_key
    from assistant.models.precision import cache_tag

    # the precision is part of the key: a bf16 answer is never served for fp32, nor the reverse
    return cache_key(assistant.model_name + cache_tag(assistant.model), options, prompt)
