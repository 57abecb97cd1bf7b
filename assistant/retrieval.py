"""Retrieval over the course index: dense (Chroma) fused with BM25 keywords.

Hybrid search adds a max-normalised BM25 score to each candidate's cosine
similarity, then boosts chunks whose section holds the best match, so the
answer's neighbourhood wins over a stray lookalike. Every hit is reported with
its cosine similarity to the question.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr

from .corpus import plain_text

# Measured on evals/datasets/course_qa.jsonl (evals/bench_retrieval.py); hit@k moves
# little for BM25 weights 0.3-0.5 and section weights 0.3-0.8. 0.3 finds 2 more passages in the
# top 4, but answers with SmolLM2 were worse (26 vs 30 of 90 correct): 0.5 stays.
BM25_WEIGHT = 0.5
SECTION_WEIGHT = 0.5
STOPWORDS = frozenset(
    "a an and are as at be by can did do does for from has have how i in is it its of on or "
    "that the their there these this to was what when where which who why will with you your "
    "about into than then them they we our me my".split())


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk, as shown to users and serialised by `--json`."""

    rank: int
    score: float
    section: str
    text: str
    source: str
    chunk_id: str

    def to_dict(self) -> dict:
        return asdict(self)

    def to_document(self) -> Document:
        meta = {k: v for k, v in self.to_dict().items() if k != "text"}
        return Document(page_content=self.text, metadata=meta, id=self.chunk_id)


def stem(word: str) -> str:
    """A light suffix stripper, enough to match 'models' with 'model': stem('masking') -> 'mask'."""
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if len(word) > len(suffix) + 3 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)] + repl
    return word


def keywords(text: str) -> list[str]:
    """Stemmed lower-case word tokens without stopwords: 'What is BERT?' -> ['bert']."""
    return [stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS]


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


def find_abbreviations(text: str) -> dict[str, str]:
    """Abbreviations a text defines, both ways round.

    >>> find_abbreviations("Masked Language Modeling (MLM) and NSP (Next Sentence Prediction)")
    {'MLM': 'masked language modeling', 'NSP': 'next sentence prediction'}
    """
    text, found = plain_text(text), {}
    for m in re.finditer(r"((?:[\w-]+\s+){1,6})\(([A-Z]{2}[A-Za-z]{0,5})\)", text):
        words, abbr = re.findall(r"\w+", m.group(1).replace("-", " ")), m.group(2)
        for n in range(len(abbr.rstrip("s")), len(words) + 1):
            if _initials_match(words[-n:], abbr):
                found.setdefault(abbr.rstrip("s"), " ".join(words[-n:]).lower())
                break
    for m in re.finditer(r"\b([A-Z]{2,6})s?\s+[\w\s]{0,12}?\(([^)]{4,120})\)", text):
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
        if re.search(rf"\b{abbr}s?\b", text):
            extra.append(long)
        elif long in flat:
            extra.append(abbr)
    return f"{text} ({'; '.join(extra)})" if extra else text


def named_terms(question: str) -> list[str]:
    """Acronyms and capitalised words after the first: 'Who won the FIFA Cup?' -> ['FIFA', 'Cup']."""
    words = re.findall(r"[A-Za-z][A-Za-z0-9-]*", question)
    return [w for i, w in enumerate(words)
            if (i > 0 and w[0].isupper()) or sum(c.isupper() for c in w) >= 2]


class CourseRetriever(BaseRetriever):
    """A LangChain retriever over a `CourseIndex`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    k: int = 4
    mode: str = "hybrid"
    candidates: int = 20
    _bm25: Any = PrivateAttr(default=None)
    _chunks: list = PrivateAttr(default_factory=list)
    _vocabulary: set = PrivateAttr(default_factory=set)
    _abbreviations: dict = PrivateAttr(default_factory=dict)

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """The k best chunks for a query, best first."""
        return self.search_with_vector(query, k)[0]

    def search_with_vector(self, query: str, k: int | None = None) -> tuple[list[Hit], list[float]]:
        """The k best chunks and the query's embedding (so callers need not embed it again)."""
        k = k or self.k
        self._ensure_keywords()
        query = expand(query, self._abbreviations)
        vector = self.index.embedder.embed_query(query)
        dense = self.index.query(vector, max(self.candidates, k))
        if self.mode == "dense":
            ranked = dense[:k]
        else:
            ranked = self._fuse(query, vector, dense)[:k]
        hits = [Hit(i + 1, round(c.score, 4), c.section, c.text, c.source, c.chunk_id)
                for i, c in enumerate(ranked)]
        return hits, vector

    def _fuse(self, query: str, vector: list[float], dense: list) -> list:
        by_id = {c.chunk_id: c for c in dense}
        lexical = self._keyword_scores(query)
        missing = [cid for cid in lexical if cid not in by_id]
        if missing:
            chunks = {c.chunk_id: c for c in self._chunks}
            for cid, emb in self.index.embeddings(missing).items():
                c = chunks[cid]
                by_id[cid] = type(c)(cid, c.text, c.section, c.source, cosine(vector, emb))
        fused = {cid: c.score + BM25_WEIGHT * lexical.get(cid, 0.0) for cid, c in by_id.items()}
        best: dict[str, float] = {}
        for cid, score in fused.items():
            section = by_id[cid].section
            best[section] = max(best.get(section, -math.inf), score)
        total = {cid: s + SECTION_WEIGHT * best[by_id[cid].section] for cid, s in fused.items()}
        return [by_id[cid] for cid in sorted(total, key=lambda cid: -total[cid])]

    def _keyword_scores(self, query: str) -> dict[str, float]:
        """BM25 scores of the best candidates, divided by the best score (so 1.0 at most)."""
        terms = keywords(query)
        if not terms or self._bm25 is None:
            return {}
        scores = self._bm25.get_scores(terms)
        top = max(scores) if len(scores) else 0.0
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: self.candidates]
        return {self._chunks[i].chunk_id: scores[i] / top for i in order if scores[i] > 0}

    def unknown_terms(self, question: str) -> list[str]:
        """Names in the question that the course never mentions ('FIFA', 'LoRA')."""
        self._ensure_keywords()
        return [w for w in named_terms(question)
                if not all(p.rstrip("s") in self._vocabulary for p in re.findall(r"[a-z0-9]+", w.lower()))]

    def _ensure_keywords(self) -> None:
        if self._bm25 is None and not self._chunks:
            self.refresh()

    def refresh(self) -> None:
        """Rebuild the keyword index from the current chunks (after the index changed)."""
        from rank_bm25 import BM25Okapi

        self._chunks = self.index.all_chunks()
        self._abbreviations = find_abbreviations("\n".join(c.text for c in self._chunks))
        corpus = [keywords(expand(f"{c.section}\n{c.text}", self._abbreviations))
                  for c in self._chunks]
        self._bm25 = BM25Okapi(corpus) if corpus else None
        self._vocabulary = {w.rstrip("s") for c in self._chunks
                            for w in re.findall(r"[a-z0-9]+", f"{c.section} {c.text}".lower())}

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [hit.to_document() for hit in self.search(query)]


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity of two vectors (0 for a zero vector)."""
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
