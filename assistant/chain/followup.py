"""Follow-up questions rewritten into standalone search queries.

"and how many parameters does it have?" after "What is BERT?" is searched as
"how many parameters does BERT have?". The rewrite is rule-based on purpose: a
135M model cannot rewrite queries reliably, rules are instant and predictable,
and the app shows the user what was searched for.
"""

from __future__ import annotations

import re

from assistant.config import MAX_QUESTION_CHARS
from assistant.text import STOPWORDS, named_terms

MAX_TOPIC_CHARS = 120  # what a follow-up borrows from the previous question

# subtle: "that"/"this" are often relative or determiners ("the model that masks words"),
# so only the personal pronouns mark a follow-up; "why is that?" has no subject and is one anyway
_PRONOUN = re.compile(r"\b(it|they|them|he|him|she)\b", re.I)
_POSSESSIVE = re.compile(r"\b(its|their|his|her)\b", re.I)
_LEADING = re.compile(r"^(?:and|but|so|also|then|ok(?:ay)?|what about|how about)\b[\s,]*", re.I)
_ASIDE = re.compile(r"^(?:what|how) about\s+(.+?)\??$", re.I)
# words that say what is asked, not what it is about
_FRAME = frozenset(
    "what how why who whom whose when where which is are was were do does did can could would "
    "should will explain describe tell me give list define mean means meant called call used use "
    "work works difference between example examples many much more please detail details".split())


def subject(query: str) -> str:
    """What a question is about: its named terms, else its content words.

    >>> subject("How many parameters does BERT have?")
    'BERT'
    >>> subject("How does self-attention work?")
    'self-attention'
    """
    names = [w for w in named_terms(query) if w.lower() not in _FRAME]
    if names:
        return " ".join(dict.fromkeys(names))
    words = re.findall(r"[A-Za-z0-9][\w-]*", query)
    content = [w for w in words if w.lower() not in STOPWORDS and w.lower() not in _FRAME]
    return " ".join(content)


def needs_context(question: str) -> bool:
    """True when a question leans on the conversation ('it', 'and ...', 'what about ...')."""
    if _LEADING.match(question) or _PRONOUN.search(question) or _POSSESSIVE.search(question):
        return True
    return not subject(question)


def rewrite(question: str, previous: list[str]) -> str:
    """A standalone search query for `question`, given the earlier queries (oldest first).

    >>> rewrite("and how many parameters does it have?", ["What is BERT?"])
    'How many parameters does BERT have?'
    >>> rewrite("What is GPT?", ["What is BERT?"])
    'What is GPT?'
    """
    question = question.strip()
    if not previous or not needs_context(question):
        return question
    last = previous[-1]
    topic = subject(last)
    if len(topic) > MAX_TOPIC_CHARS:
        topic = topic[:MAX_TOPIC_CHARS].rsplit(" ", 1)[0]
    if not topic:
        return question
    rewritten = _rewrite(question, last, topic)
    # subtle: the user asked a short question; a long rewrite must not refuse it as too long
    return rewritten if len(rewritten) <= MAX_QUESTION_CHARS else question


def _rewrite(question: str, last: str, topic: str) -> str:
    aside = _ASIDE.match(question)
    if aside and subject(aside.group(1)):
        # "what about GPT?" after "How many parameters does BERT have?": same question, new subject
        new = aside.group(1).strip()
        swapped = last.replace(topic, new) if topic in last else f"{new} {last}"
        return _tidy(swapped)
    body = _LEADING.sub("", question)
    body, n = _PRONOUN.subn(topic, body, count=1)
    if n == 0:
        body, n = _POSSESSIVE.subn(f"{topic}'s", body, count=1)
    if n == 0:
        body = f"{body.rstrip(' ?')} ({topic})"
    return _tidy(body)


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith("?") else text.rstrip(".") + "?"
