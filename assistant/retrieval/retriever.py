"""Retrieval over the course index: dense (Chroma) fused with BM25 keywords.

Hybrid search adds a max-normalised BM25 score to each candidate's cosine
similarity, then boosts chunks whose section holds the best match, so the
answer's neighbourhood wins over a stray lookalike. Every hit is reported with
its cosine similarity to the question.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr

from assistant.text import (
    CLIPPED,
    COURSE_TALK,
    STOPWORDS,
    cosine,
    expand,
    find_abbreviations,
    keywords,
    named_terms,
)

# Measured on evals/datasets/course_qa.jsonl (evals/bench_retrieval.py); hit@k moves
# little for BM25 weights 0.3-0.5 and section weights 0.3-0.8. 0.3 finds 2 more passages in the
# top 4, but answers with SmolLM2 were worse (26 vs 30 of 90 correct): 0.5 stays.
BM25_WEIGHT = 0.5
# what a hyphenated name may end in and stay that name ("GPT-style", "BERT-based")
NAME_SUFFIXES = frozenset("style like based only sized size type esque family".split())
SECTION_WEIGHT = 0.5


@dataclass(frozen=True)
class Keywords:
    """The keyword side of the index, built together and swapped as one object."""

    chunks: list = field(default_factory=list)
    bm25: Any = None
    vocabulary: frozenset = frozenset()
    abbreviations: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk, as shown to users and serialised by `--json`."""

    rank: int
    score: float  # cosine similarity to the question
    section: str
    text: str
    source: str
    chunk_id: str
    relevance: float | None = None  # the score that ranks (cosine + keywords + section)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_document(self) -> Document:
        meta = {k: v for k, v in self.to_dict().items() if k != "text"}
        return Document(page_content=self.text, metadata=meta, id=self.chunk_id)


class CourseRetriever(BaseRetriever):
    """A LangChain retriever over a `CourseIndex`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    k: int = 4
    mode: str = "hybrid"
    candidates: int = 20
    _keywords: Keywords | None = PrivateAttr(default=None)

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """The k best chunks for a query, best first."""
        return self.search_with_vector(query, k)[0]

    def search_with_vector(self, query: str, k: int | None = None) -> tuple[list[Hit], list[float]]:
        """The k best chunks and the query's embedding (so callers need not embed it again)."""
        k = k or self.k
        kw = self._snapshot()  # one consistent keyword index for the whole search
        query = expand(query, kw.abbreviations)
        vector = self.index.embedder.embed_query(query)
        dense = self.index.query(vector, max(self.candidates, k))
        if self.mode == "dense":
            ranked = [(c, c.score) for c in dense[:k]]
        else:
            ranked = self._fuse(kw, query, vector, dense)[:k]
        hits = [Hit(i + 1, round(c.score, 4), c.section, c.text, c.source, c.chunk_id, round(r, 4))
                for i, (c, r) in enumerate(ranked)]
        return hits, vector

    def _fuse(self, kw: Keywords, query: str, vector: list[float], dense: list) -> list:
        by_id = {c.chunk_id: c for c in dense}
        lexical = self._keyword_scores(kw, query)
        missing = [cid for cid in lexical if cid not in by_id]
        if missing:
            chunks = {c.chunk_id: c for c in kw.chunks}
            for cid, emb in self.index.embeddings(missing).items():
                c = chunks[cid]
                by_id[cid] = type(c)(cid, c.text, c.section, c.source, cosine(vector, emb))
        fused = {cid: c.score + BM25_WEIGHT * lexical.get(cid, 0.0) for cid, c in by_id.items()}
        best: dict[str, float] = {}
        for cid, score in fused.items():
            section = by_id[cid].section
            best[section] = max(best.get(section, -math.inf), score)
        total = {cid: s + SECTION_WEIGHT * best[by_id[cid].section] for cid, s in fused.items()}
        return [(by_id[cid], total[cid]) for cid in sorted(total, key=lambda cid: -total[cid])]

    def _keyword_scores(self, kw: Keywords, query: str) -> dict[str, float]:
        """BM25 scores of the best candidates, divided by the best score (so 1.0 at most)."""
        terms = keywords(query)
        if not terms or kw.bm25 is None:
            return {}
        scores = kw.bm25.get_scores(terms)
        top = max(scores) if len(scores) else 0.0
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: self.candidates]
        return {kw.chunks[i].chunk_id: scores[i] / top for i in order if scores[i] > 0}

    def unknown_terms(self, question: str) -> list[str]:
        """Names in the question that the course never mentions ('FIFA', 'LoRA'); two letters
        ('TA', 'OK') are too few to call a name, and 'GPT-style' is GPT's name."""
        vocabulary = self._snapshot().vocabulary
        return [w for w in named_terms(question, every_sentence=True) if len(w) > 2
                and not all(p.rstrip("s") in vocabulary or (i and p in NAME_SUFFIXES)
                            for i, p in enumerate(re.findall(r"[a-z0-9]+", w.lower())))]

    def foreign_words(self, question: str) -> tuple[list[str], int]:
        """The question's content words that the course never uses, and how many content words
        it has: 'how do electrical transformers step down the voltage' is mostly another
        field's words. Words about the course and the asking ('lecture', 'true') don't count."""
        vocabulary = self._snapshot().vocabulary
        words = [w for w in dict.fromkeys(re.findall(r"[a-z][a-z0-9]+", question.lower()))
                 if len(w) > 2 and w not in STOPWORDS and w.rstrip("s") not in COURSE_TALK]
        # a clipped word is the course's word: "params" is "parameters"
        return [w for w in words if w.rstrip("s") not in vocabulary
                and CLIPPED.get(w, w).rstrip("s") not in vocabulary], len(words)

    def term_idf(self) -> dict[str, float]:
        """BM25's idf of each course word (stemmed, as `keywords` gives them): rare words weigh more."""
        bm25 = self._snapshot().bm25
        return bm25.idf if bm25 is not None else {}

    def _snapshot(self) -> Keywords:
        kw = self._keywords
        if kw is None:
            self.refresh()
            kw = self._keywords
        return kw

    def refresh(self) -> None:
        """Rebuild the keyword index from the current chunks (after the index changed).

        Subtle: everything is built aside and swapped in with one assignment, so a search
        running meanwhile sees the old chunks with the old BM25 scores, never a mix.
        """
        from rank_bm25 import BM25Okapi

        chunks = self.index.all_chunks()
        abbreviations = find_abbreviations("\n".join(c.text for c in chunks))
        corpus = [keywords(expand(f"{c.section}\n{c.text}", abbreviations)) for c in chunks]
        vocabulary = frozenset(w.rstrip("s") for c in chunks
                               for w in re.findall(r"[a-z0-9]+", f"{c.section} {c.text}".lower()))
        self._keywords = Keywords(chunks, BM25Okapi(corpus) if corpus else None, vocabulary,
                                  abbreviations)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [hit.to_document() for hit in self.search(query)]

