"""Plain-text utilities shared by retrieval, compression, follow-ups and metrics.

Every regex here is linear in its input: no nested quantifiers over the same characters.
"""

from __future__ import annotations

import math
import re

# subtle: the text part stops at the next '[' and both parts are bounded, so a run of '['
# or '(' without closers costs one short scan per character, not a scan to the end
LINK = re.compile(r"\[([^\[\]\n]{0,300})\]\([^()\n]{0,1000}\)")
_ABBR_AFTER = re.compile(r"\(([A-Z]{2}[A-Za-z]{0,5})\)")  # "(MLM)"
_ABBR_BEFORE = re.compile(r"\b([A-Z]{2,6})s?\s{1,20}[\w\s]{0,12}?\(([^()]{4,120})\)")
_WORDS_BEFORE = re.compile(r"(?:[\w-]{1,40}\s{1,20}){1,6}$")
_LOOKBACK = 400  # characters before "(MLM)" searched for its long form
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")

STOPWORDS = frozenset(
    "a an and are as at be by can did do does for from has have how i in is it its of on or "
    "that the their there these this to was what when where which who why will with you your "
    "about into than then them they we our me my".split())


def stem(word: str) -> str:
    """A light suffix stripper, enough to match 'models' with 'model': stem('masking') -> 'mask'."""
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if len(word) > len(suffix) + 3 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)] + repl
    return word


# words about the course and the asking, not about a subject ("according to the lecture",
# "true or false"), as `w.rstrip("s")` gives them
COURSE_TALK = frozenset(w.rstrip("s") for w in (
    "lecture course class topic agenda according mention mentioned say says list listed explain "
    "true false correct right "
    # and words that name nothing ("is it lighter in speed or in something else?")
    "something anything everything nothing someone anyone else").split())

# words students clip when they type ("bert vocab size?"), read as the course spells them
CLIPPED = {"vocab": "vocabulary", "vocabs": "vocabularies", "param": "parameter",
           "params": "parameters", "info": "information", "diff": "different", "dim": "dimension",
           "dims": "dimensions", "seq": "sequence", "seqs": "sequences", "arch": "architecture",
           "approx": "approximately", "eg": "example", "esp": "especially"}


def keywords(text: str) -> list[str]:
    """Stemmed lower-case word tokens without stopwords: 'What is BERT?' -> ['bert'].

    >>> keywords("bert vocab size?")
    ['bert', 'vocabulary', 'size']
    """
    return [stem(CLIPPED.get(w, w)) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS]


_GLUE = frozenset("of with the and for to a from".split())


def _initials_match(words: list[str], abbr: str) -> bool:
    """True when the words spell the abbreviation by initials (glue words may be skipped)."""
    letters, i = abbr.lower().rstrip("s"), 0
    for w in words:
        if i < len(letters) and w[0].lower() == letters[i]:
            i += 1
        elif w.lower() not in _GLUE:
            return False
    return i == len(letters)


def spells_out(abbr: str, text: str) -> bool:
    """True when the text has words whose initials spell the abbreviation, glue words allowed:
    spells_out("RLHF", "Reinforcement Learning with Human Feedback") -> True."""
    words, n = re.findall(r"[A-Za-z]+", text), len(abbr.rstrip("s"))
    return any(_initials_match(words[i:i + span], abbr)
               for i in range(len(words)) for span in range(n, n + 4))


def find_abbreviations(text: str) -> dict[str, str]:
    """Abbreviations a text defines, both ways round.

    >>> find_abbreviations("Masked Language Modeling (MLM) and NSP (Next Sentence Prediction)")
    {'MLM': 'masked language modeling', 'NSP': 'next sentence prediction'}
    """
    text, found = plain_text(text), {}
    for m in _ABBR_AFTER.finditer(text):
        # the words before "(MLM)": searched in a bounded window, so this stays linear
        before = _WORDS_BEFORE.search(text, max(0, m.start() - _LOOKBACK), m.start())
        if not before:
            continue
        words, abbr = re.findall(r"\w+", before.group(0).replace("-", " ")), m.group(1)
        for n in range(len(abbr.rstrip("s")), len(words) + 1):
            if _initials_match(words[-n:], abbr):
                found.setdefault(abbr.rstrip("s"), " ".join(words[-n:]).lower())
                break
    for m in _ABBR_BEFORE.finditer(text):
        abbr = m.group(1)
        words = re.findall(r"[A-Za-z]+", m.group(2).split("/")[0].split(" - ")[0])
        for n in range(len(words), len(abbr) - 1, -1):
            if _initials_match(words[:n], abbr):
                found.setdefault(abbr, " ".join(words[:n]).lower())
                break
    return found


def expand(text: str, abbreviations: dict[str, str]) -> str:
    """Add the long form of each abbreviation used, and the abbreviation of each long form."""
    flat, extra = re.sub(r"[^a-z0-9]+", " ", text.lower()), []
    for abbr, long in abbreviations.items():
        if re.search(rf"\b{re.escape(abbr)}s?\b", text):
            extra.append(long)
        elif long in flat:
            extra.append(abbr)
    return f"{text} ({'; '.join(extra)})" if extra else text


_WORD_AND_START = re.compile(r"(^\s*|[.?!][\"')\]]?\s+)?([A-Za-z][A-Za-z0-9-]*)")


def named_terms(question: str, every_sentence: bool = False) -> list[str]:
    """Acronyms and capitalised words after the first: 'Who won the FIFA Cup?' -> ['FIFA', 'Cup'].

    `every_sentence`: a capital that starts any sentence is not a name either ("I read that
    BERT used TPUs. According to ..." names BERT and TPUs).
    """
    found = []
    for i, m in enumerate(_WORD_AND_START.finditer(question)):
        w, starts = m.group(2), i == 0 or (every_sentence and m.group(1) is not None)
        if (not starts and w[0].isupper()) or sum(c.isupper() for c in w) >= 2:
            found.append(w)
    return found


def strip_emphasis(text: str) -> str:
    """Remove markdown emphasis marks: '**Title**' -> 'Title'."""
    return _EMPHASIS.sub("", text).strip()


def plain_text(text: str) -> str:
    """Markdown as plain text: links become their text, emphasis marks go."""
    return strip_emphasis(LINK.sub(r"\1", text))


def normalise(text: str) -> str:
    """Lower-case text without markdown marks or extra spaces, for containment checks."""
    return re.sub(r"\s+", " ", re.sub(r"(\*\*|`|__)", "", text)).strip().lower()


def contains_context(chunk_text: str, contexts: list[str]) -> bool:
    """True when the chunk holds one of the reference passages."""
    text = normalise(chunk_text)
    return any(normalise(c) in text for c in contexts)


def has_key_facts(answer: str, facts: list[str]) -> bool:
    """Every key fact (alternatives split by '|') occurs in the answer, case-insensitively.

    >>> has_key_facts("BERT masks 15% of words", ["15%|15 percent", "mask"])
    True
    """
    text = answer.lower()
    return all(any(alt.strip().lower() in text for alt in fact.split("|")) for fact in facts)


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity of two vectors (0 for a zero vector)."""
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
