"""The prompt lab: every template x model pair on one question and one retrieval.

The question is retrieved and compressed once; each pair then fits that same context
to its own template and model window, and `answer_batch` generates every pair of a model
that shares generation options in one batched call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.chain import Answer, CourseAssistant, Prepared, answer_batch, retrieve
from assistant.errors import CourselabError


@dataclass
class Cell:
    """One template x model result: the Answer, and what the lab shows about its prompt."""

    template: str
    model: str
    answer: Answer | None = None
    window: int = 0
    dropped: list[str] = field(default_factory=list)  # sections of passages cut to fit
    error: str | None = None

    @property
    def text(self) -> str:
        return self.answer.answer if self.answer else ""

    def to_dict(self) -> dict:
        answer = self.answer.to_dict() if self.answer else {}
        return {"template": self.template, "model": self.model, "window": self.window,
                "dropped": self.dropped, "error": self.error, **answer,
                "answer": self.text}


@dataclass
class Comparison:
    """The shared retrieval and one cell per pair, in templates-major order."""

    question: str
    prepared: Prepared
    cells: list[Cell]

    def to_dict(self) -> dict:
        return {"question": self.question, "abstained": self.prepared.abstained,
                "retrieve_s": round(self.prepared.retrieve_s, 4),
                "quote": [q.to_dict() for q in self.prepared.quote],
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
        jobs = [(a, a.fitted(shared)) for a in
                (CourseAssistant(retriever, model, t, k, min_score) for t in templates)]
        window = model.input_window() if hasattr(model, "input_window") else 0
    except CourselabError as e:  # a model that cannot load fails its own cells only
        return [Cell(t.name, name, error=str(e)) for t in templates]
    answers = answer_batch(jobs)
    return [Cell(t.name, name, answer, window, _dropped(p), answer.error)
            for t, (_, p), answer in zip(templates, jobs, answers)]


def _dropped(p: Prepared) -> list[str]:
    gone = set(p.budget.dropped) if p.budget else set()
    return [h.section for h in p.hits if h.chunk_id in gone]
