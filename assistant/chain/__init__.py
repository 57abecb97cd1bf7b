"""The answer path: retrieve and compress once, decide, fit, render, generate, ground.

Every front end (CLI, chat, lab, evals, API) answers through `CourseAssistant`.
"""

from assistant.chain.assistant import (
    NOT_COVERED,
    Answer,
    CourseAssistant,
    Prepared,
    answer_batch,
    check_question,
    retrieve,
)

__all__ = ["NOT_COVERED", "Answer", "CourseAssistant", "Prepared", "answer_batch", "check_question",
           "retrieve"]
