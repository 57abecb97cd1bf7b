"""The answering chain: retrieve, compress, decide, render, generate.

`CourseAssistant.chain` is the LCEL pipeline (prepare | complete); `stream`
and `batch` reuse its pieces so tokens stream and batches generate in one call.
A question the course does not cover is answered without the model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from langchain_core.runnables import RunnableLambda

from assistant.chain.budget import Budget, fit
from assistant.chain.compress import Passage, compress, format_context
from assistant.config import MAX_QUESTION_CHARS
from assistant.errors import InputError
from assistant.retrieval import Hit

NOT_COVERED = "The course does not cover this question."


@dataclass
class Answer:
    """A structured answer: what was said, from what, by which model, how fast."""

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

    def to_dict(self) -> dict:
        return {"answer": self.answer, "abstained": self.abstained, "reasoning": self.reasoning,
                "sources": [h.to_dict() for h in self.sources], "model": self.model,
                "prompt": self.prompt, "timings": self.timings, "tokens": self.tokens,
                "budget": self.budget.to_dict() if self.budget else None}


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

    @property
    def inputs(self) -> dict:
        return {"context": format_context(self.passages, self.numbered), "question": self.question}

    @property
    def sources(self) -> list[Hit]:
        """What the model actually saw (or, when abstaining, the closest sections)."""
        return [p.hit for p in self.passages] if not self.abstained else self.hits


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
    """Retrieve, compress and decide once, for any template and model (see `fitted`)."""
    question = check_question(question)
    start = time.perf_counter()
    hits, vector = retriever.search_with_vector(question, k)
    passages, best = compress(vector, hits, retriever.index.embedder, max_sentences)
    unknown = retriever.unknown_terms(question)
    abstained = not passages or best < min_score or bool(unknown)
    return Prepared(question, hits, passages, best, unknown, abstained, start,
                    time.perf_counter() - start)


class CourseAssistant:
    """Answers questions from the course index with a chat model and a prompt template."""

    def __init__(self, retriever, model, template, k: int = 4, min_score: float = 0.2,
                 max_sentences: int = 4):
        self.retriever, self.model, self.template = retriever, model, template
        self.k, self.min_score = k, min_score
        self.max_sentences = max_sentences
        bound = model.bind(**template.generation) if template.generation else model
        self.generate = template.chat_prompt(retriever.index.embedder) | bound
        self.chain = RunnableLambda(self.prepare) | RunnableLambda(self.complete)

    @property
    def model_name(self) -> str:
        return getattr(self.model, "model_name", type(self.model).__name__)

    def prepare(self, question: str) -> Prepared:
        """Retrieve, compress, decide whether the course covers the question, and fit."""
        return self.fitted(self.retrieve(question))

    def retrieve(self, question: str) -> Prepared:
        """Retrieve and compress once; `fitted` then fits it to any template and model."""
        return retrieve(self.retriever, question, self.k, self.min_score, self.max_sentences)

    def fitted(self, prepared: Prepared) -> Prepared:
        """This template's view of a retrieval: its context style, cut to this model's window."""
        prepared = replace(prepared, numbered=self.template.numbered_context)
        if not prepared.abstained:
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

    def render(self, prepared: Prepared) -> str:
        """The exact text the model receives."""
        return self._render(prepared.inputs)

    def _render(self, inputs: dict) -> str:
        return self.model.render(self.generate.first.invoke(inputs).to_messages())

    def complete(self, prepared: Prepared) -> Answer:
        """Generate (or abstain) for a prepared question."""
        if prepared.abstained:
            return self._abstention(prepared)
        t0 = time.perf_counter()
        reply = self.generate.invoke(prepared.inputs)
        return self._answer(prepared, reply.content, reply.usage_metadata, t0, None)

    def answer(self, question: str) -> Answer:
        return self.chain.invoke(question)

    def batch(self, questions: list[str]) -> list[Answer]:
        """Answer many questions with one batched generation for all that need the model."""
        prepared = [self.prepare(q) for q in questions]
        todo = [p for p in prepared if not p.abstained]
        t0 = time.perf_counter()
        replies = self.generate.batch([p.inputs for p in todo]) if todo else []
        by_id = {id(p): r for p, r in zip(todo, replies)}
        return [self._abstention(p) if p.abstained else
                self._answer(p, by_id[id(p)].content, by_id[id(p)].usage_metadata, t0, None)
                for p in prepared]

    def stream(self, question: str) -> Iterator[str | Answer]:
        """Text pieces as they are generated, then the final `Answer`."""
        prepared = self.prepare(question)
        if prepared.abstained:
            answer = self._abstention(prepared)
            yield answer.answer
            yield answer
            return
        t0, first, text, usage = time.perf_counter(), None, "", None
        for chunk in self.generate.stream(prepared.inputs):
            if chunk.content:
                first = first or time.perf_counter() - t0
                text += chunk.content
                yield chunk.content
            usage = chunk.usage_metadata or usage
        yield self._answer(prepared, text, usage, t0, first)

    def _answer(self, p: Prepared, text: str, usage, t0: float, first: float | None) -> Answer:
        now = time.perf_counter()
        timings = {"retrieve_s": round(p.retrieve_s, 4), "generate_s": round(now - t0, 4),
                   "total_s": round(now - p.started, 4)}
        if first is not None:
            timings["first_token_s"] = round(first, 4)
        usage = usage or {}
        tokens = {"input": usage.get("input_tokens", 0), "output": usage.get("output_tokens", 0)}
        text = str(text).strip()
        final = self.template.final_answer(text)
        return Answer(p.question, final, False, p.sources, self.model_name,
                      self.render(p), timings, tokens, p.budget,
                      reasoning=text if final != text else None)

    def _abstention(self, p: Prepared) -> Answer:
        sections = list(dict.fromkeys(h.section for h in p.hits))[:3]
        text = NOT_COVERED + (f" The closest sections are: {'; '.join(sections)}." if sections else "")
        timings = {"retrieve_s": round(p.retrieve_s, 4),
                   "total_s": round(time.perf_counter() - p.started, 4)}
        return Answer(p.question, text, True, p.sources, self.model_name, "", timings,
                      {"input": 0, "output": 0})
