"""Retrieval: the sentence embedder, the Chroma index and hybrid (dense + BM25) search."""

from assistant.retrieval.retriever import BM25_WEIGHT, SECTION_WEIGHT, CourseRetriever, Hit

__all__ = ["BM25_WEIGHT", "SECTION_WEIGHT", "CourseRetriever", "Hit"]
