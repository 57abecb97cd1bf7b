"""The course documents: reading and chunking them, and adding uploaded files."""

from assistant.corpus.chunks import CHUNK_CHARS, SUFFIXES, Chunk, corpus_files, load_corpus, split_markdown

__all__ = ["CHUNK_CHARS", "SUFFIXES", "Chunk", "corpus_files", "load_corpus", "split_markdown"]
