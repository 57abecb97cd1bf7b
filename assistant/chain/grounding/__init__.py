"""Grounding: the course sentences that answer a question, and a check of the model's words.

A 135M model garbles facts it was handed, so the student reads the course first:
- `questions.asked` reads what a question asks (a number, a date, a name, ...), about what;
- `quote.choose_quote` picks at most two sentences (60 words) that best answer the question,
  from the sentences compression already scored, and marks the span that answers it;
- `missing.missing_fact` notices a question asking for a fact that no retrieved sentence
  holds, so the assistant says so instead of inventing one;
- `support.check_support` compares the model's answer with the passages it saw: numbers,
  named terms and quoted phrases that are absent are unsupported claims;
- `values` is what a text says (numbers, years, names, stems), as all of them read it.
Every regex here is linear; every loop is over bounded lists (hits x sentences).
"""

from assistant.chain.grounding.missing import ABOUT_SHARE, missing_fact
from assistant.chain.grounding.questions import Asked, asked
from assistant.chain.grounding.quote import (
    MAX_QUOTE_SENTENCES,
    MAX_QUOTE_WORDS,
    NEIGHBOUR_BONUS,
    QUOTE_FEATURES,
    QUOTE_WEIGHTS,
    SHORT_WORDS,
    Quote,
    choose_quote,
    find_span,
    hit_ranks,
    score_sentence,
    sentence_features,
    term_weights,
    with_context,
)
from assistant.chain.grounding.support import (
    LEAD_AGREEMENT,
    PARTIAL_COVERAGE,
    SUPPORTED_COVERAGE,
    Support,
    agreement,
    check_support,
    claims,
)
from assistant.chain.grounding.values import holds_kind

__all__ = ["ABOUT_SHARE", "LEAD_AGREEMENT", "MAX_QUOTE_SENTENCES", "MAX_QUOTE_WORDS",
           "NEIGHBOUR_BONUS", "PARTIAL_COVERAGE", "QUOTE_FEATURES", "QUOTE_WEIGHTS", "SHORT_WORDS",
           "SUPPORTED_COVERAGE", "Asked", "Quote", "Support", "agreement", "asked", "check_support",
           "choose_quote", "claims", "find_span", "hit_ranks", "holds_kind", "missing_fact",
           "score_sentence", "sentence_features", "term_weights", "with_context"]
