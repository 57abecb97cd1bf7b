"""What a text says: its numbers, years, names and word stems, as the grounding rules read them."""

from __future__ import annotations

import re

from assistant.text import named_terms, stem

_NUMBER = re.compile(r"(?<![\w.-])~?\d[\d,]*(?:\.\d+)?(?:\s?(?:%|[kKmMbBtT]\b|million\b|billion\b|"
                     r"thousand\b|percent\b))?")
_YEAR = re.compile(r"\b(?:1[89]|20)\d\d\b")
_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*")
_QUOTED = re.compile(r"[\"“]([^\"”\n]{3,80})[\"”]")
_NUMBER_WORDS = {w: str(n) for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_PLACE = re.compile(r"\b(?:based|located|headquartered|headquarters)\b", re.I)
_FORMULA = re.compile(r"[=∑∏√]|\\frac")
_MONTH = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)\.?\s+\d|"
                    r"\b(?:january|february|march|april|june|july|august|september|october|november|"
                    r"december)\b|\b\d{4}-\d\d-\d\d\b", re.I)
_PERCENT = re.compile(r"\d\s?%|\bpercent")


def _base(word: str) -> str:
    """A word's stem without a plural s, so 'GPUs' and 'GPU' match: _base('GPUs') -> 'gpu'."""
    word = stem(word.lower())
    return word[:-1] if len(word) > 2 and word.endswith("s") and not word.endswith("ss") else word


def _bases(text: str) -> set[str]:
    return {_base(w) for w in re.findall(r"[A-Za-z0-9]+", text)}


def _names(text: str, questions: bool = False) -> list[str]:
    """Names of models, people, companies: the text's named terms, hyphenated ones split
    (`questions`: a capital starting any of its sentences is no name, "... TPUs. According")."""
    return [part for w in named_terms(text, every_sentence=questions) if len(w) > 1
            for part in w.split("-") if part]


def holds_kind(text: str, kind: str, exclude: list[str] = ()) -> bool:
    """True when the text holds a value of the asked kind (a number, a year, a name other
    than the `exclude`d subject)."""
    if kind == "number":
        return bool(_NUMBER.search(text)) or any(w in _NUMBER_WORDS for w in text.lower().split())
    if kind == "date":
        return bool(_YEAR.search(text))
    if kind == "month":
        return bool(_MONTH.search(text))
    if kind == "percent":
        return bool(_PERCENT.search(text))
    if kind == "place":
        return bool(_PLACE.search(text))
    if kind == "formula":
        return bool(_FORMULA.search(text))
    if kind == "name":
        return any(_base(w) not in exclude for w in _names(f"x {text}"))
    return True


def _proposed(text: str, words: bool = True) -> set[str]:
    """The text's numbers as bare values, loosely ("30k" and "30,000" are 30000, "80%" is 80),
    so a question's own number is only called missing when no passage says it at all;
    `words=False` leaves number words out ("one of the bullet points" proposes nothing)."""
    values = set()
    numbers = _evidence(text)[1] if words else {_norm_number(m.group(0)) for m in _NUMBER.finditer(text)}
    for number in numbers:
        digits = re.sub(r"[^\d.]", "", number).rstrip(".")
        values.add(digits + "000" if number.endswith("k") else digits)
    return values - {""}


def _norm_number(text: str) -> str:
    return re.sub(r"[\s,~]", "", text.lower()).replace("percent", "%")


def _evidence(text: str) -> tuple[set[str], set[str]]:
    """What a text says, for `_present`: its words and their stems, and its numbers (number
    words too: "twelve" says 12)."""
    words = set(re.findall(r"[a-z0-9]+", text.lower()))
    words |= {stem(w) for w in words}
    words |= {v for w, v in _NUMBER_WORDS.items() if w in words}
    numbers = {_norm_number(m.group(0)) for m in _NUMBER.finditer(text)}
    numbers |= {v for w, v in _NUMBER_WORDS.items() if w in words}
    return words, numbers
