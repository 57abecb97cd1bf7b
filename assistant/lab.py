"""The prompt lab: every template x model pair on one question and one retrieval.

The question is retrieved and compressed once; each pair then fits that same
context to its own template and model window, and each model generates for all
its templates in one batched call (grouped by the generation options they need).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from itertools import groupby

from assistant.chain import CourseAssistant, Prepared, retrieve
from assistant.errors import CourselabError


@dataclass
class Cell:
    """One template x model result."""

    template: str
    model: str
    answer: str = ""
    abstained: bool = False
    reasoning: str | None = None
    prompt: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    window: int = 0
    dropped: list[str] = field(default_factory=list)  # sections of passages cut to fit
    latency_s: float = 0.0
    batch_size: int = 1
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Comparison:
    """The shared retrieval and one cell per pair, in templates-major order."""

    question: str
    prepared: Prepared
    cells: list[Cell]

    def to_dict(self) -> dict:
        return {"question": self.question, "abstained": self.prepared.abstained,
                "retrieve_s": round(self.prepared.retrieve_s, 4),
                "sources": [h.to_dict() for h in self.prepared.hits],
                "cells": [c.to_dict() for c in self.cells]}


def compare(retriever, question: str, templates: list, models: dict, k: int = 4,
            min_score: float = 0.2) -> Comparison:
    """Run every template (Template objects) on every model (name -> chat model)."""
    if not templates or not models:
        raise CourselabError("compare needs at least one template and one model")
    shared = retrieve(retriever, question, k, min_score)
    cells: dict[tuple[str, str], Cell] = {}
    for name, model in models.items():
        for cell in _run_model(retriever, shared, templates, name, model, k, min_score):
            cells[(cell.template, name)] = cell
    order = [cells[(t.name, m)] for t in templates for m in models]
    return Comparison(shared.question, shared, order)


def _run_model(retriever, shared: Prepared, templates: list, name: str, model, k: int,
               min_score: float) -> list[Cell]:
    try:
        pairs = [(t, CourseAssistant(retriever, model, t, k, min_score)) for t in templates]
        fitted = [(t, a, a.fitted(shared)) for t, a in pairs]
    except CourselabError as e:  # a model that cannot load fails its own cells only
        return [Cell(t.name, name, error=str(e)) for t in templates]
    if shared.abstained:
        answer = fitted[0][1].complete(fitted[0][2])
        return [Cell(t.name, name, answer.answer, True) for t, _, _ in fitted]
    cells = []
    by_options = sorted(fitted, key=lambda f: sorted(f[0].generation.items()))
    for _, group in groupby(by_options, key=lambda f: sorted(f[0].generation.items())):
        cells.extend(_generate(list(group), name))
    return cells


def _generate(group: list, name: str) -> list[Cell]:
    """One batched call for templates that share generation options."""
    template, assistant, _ = group[0]
    model = assistant.generate.last  # the model, bound to the group's options
    messages = [a.generate.first.invoke(p.inputs) for _, a, p in group]
    start = time.perf_counter()
    try:
        replies = model.batch(messages)
    except CourselabError as e:
        return [Cell(t.name, name, error=str(e)) for t, _, _ in group]
    latency = round(time.perf_counter() - start, 4)
    cells = []
    for (t, a, p), prompt, reply in zip(group, messages, replies):
        text = str(reply.content).strip()
        final = t.final_answer(text)
        usage = reply.usage_metadata or {}
        rendered = a.model.render(prompt.to_messages())  # the text it received, rendered once
        cells.append(Cell(t.name, name, final, False, text if final != text else None, rendered,
                          usage.get("input_tokens", 0), usage.get("output_tokens", 0),
                          a.model.input_window(), _dropped(p), latency, len(group)))
    return cells


def _dropped(p: Prepared) -> list[str]:
    gone = set(p.budget.dropped) if p.budget else set()
    return [h.section for h in p.hits if h.chunk_id in gone]
