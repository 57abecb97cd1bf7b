"""Retrieval over the course index: dense (Chroma) fused with BM25 keywords.

Hybrid search ranks by reciprocal-rank fusion of the dense and keyword lists;
every hit is scored by its cosine similarity to the question, which is what the
abstention threshold is calibrated on.
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

RRF_K = 60  # the constant of Cormack et al. (2009); damps the weight of top ranks
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


def keywords(text: str) -> list[str]:
    """Lower-cased word tokens without stopwords: 'What is BERT?' -> ['bert']."""
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS]


def rrf(rankings: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal-rank fusion of several rankings of ids."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, cid in enumerate(ranking):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (k + rank + 1)
    return fused


class CourseRetriever(BaseRetriever):
    """A LangChain retriever over a `CourseIndex`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    k: int = 4
    mode: str = "hybrid"
    candidates: int = 20
    _bm25: Any = PrivateAttr(default=None)
    _chunks: list = PrivateAttr(default_factory=list)

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """The k best chunks for a query, best first."""
        k = k or self.k
        vector = self.index.embedder.embed_query(query)
        dense = self.index.query(vector, max(self.candidates, k))
        if self.mode == "dense":
            ranked = dense[:k]
        else:
            ranked = self._fuse(query, vector, dense)[:k]
        return [Hit(i + 1, round(c.score, 4), c.section, c.text, c.source, c.chunk_id)
                for i, c in enumerate(ranked)]

    def _fuse(self, query: str, vector: list[float], dense: list) -> list:
        by_id = {c.chunk_id: c for c in dense}
        lexical = self._keyword_ranking(query)
        fused = rrf([[c.chunk_id for c in dense], lexical])
        missing = [cid for cid in fused if cid not in by_id]
        if missing:
            chunks = {c.chunk_id: c for c in self._chunks}
            for cid, emb in self.index.embeddings(missing).items():
                c = chunks[cid]
                by_id[cid] = type(c)(cid, c.text, c.section, c.source, _cosine(vector, emb))
        order = sorted(fused, key=lambda cid: (-fused[cid], -by_id[cid].score))
        return [by_id[cid] for cid in order if cid in by_id]

    def _keyword_ranking(self, query: str) -> list[str]:
        if self._bm25 is None:
            self.refresh()
        terms = keywords(query)
        if not terms or self._bm25 is None:
            return []
        scores = self._bm25.get_scores(terms)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: self.candidates]
        return [self._chunks[i].chunk_id for i in order if scores[i] > 0]

    def refresh(self) -> None:
        """Rebuild the keyword index from the current chunks (after the index changed)."""
        from rank_bm25 import BM25Okapi

        self._chunks = self.index.all_chunks()
        corpus = [keywords(f"{c.section}\n{c.text}") for c in self._chunks]
        self._bm25 = BM25Okapi(corpus) if corpus else None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [hit.to_document() for hit in self.search(query)]


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
