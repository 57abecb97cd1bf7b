"""Retrieval: dense order against a brute-force cosine oracle, hybrid fusion, keyword helpers."""

from __future__ import annotations

import math

import pytest

from assistant.corpus import load_corpus
from assistant.retrieval import CourseRetriever
from assistant.retrieval.embeddings import HashEmbedder
from assistant.retrieval.index import CourseIndex
from assistant.text import expand, find_abbreviations, keywords, named_terms, stem

QUESTIONS = ["What percentage of tokens does BERT mask?", "What is multi-head attention?",
             "Who made GPT?", "what is a token", "self attention every token"]


@pytest.fixture
def index(tmp_path, corpus_dir):
    store = CourseIndex(HashEmbedder(), path=tmp_path / "index")
    store.sync(load_corpus(corpus_dir))
    return store


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.mark.parametrize("question", QUESTIONS)
def test_dense_order_matches_brute_force_cosine(index, question):
    """The oracle: Chroma's ranking equals exhaustive cosine over the same stored vectors."""
    retriever = CourseRetriever(index=index, mode="dense", k=5)
    chunks = index.all_chunks()
    vectors = index.embeddings([c.chunk_id for c in chunks])
    query = index.embedder.embed_query(expand(question, retriever._snapshot().abbreviations))
    expected = sorted(chunks, key=lambda c: -cosine(query, vectors[c.chunk_id]))[:5]
    hits = retriever.search(question)
    assert [h.chunk_id for h in hits] == [c.chunk_id for c in expected]
    for hit in hits:
        assert hit.score == pytest.approx(cosine(query, vectors[hit.chunk_id]), abs=1e-3)


def test_hybrid_hits_are_ranked_and_scored_by_cosine(index):
    hits = CourseRetriever(index=index, k=3).search("What percentage of tokens does BERT mask?")
    assert [h.rank for h in hits] == [1, 2, 3]
    assert "15%" in hits[0].text
    assert all(-1.0 <= h.score <= 1.0 for h in hits)
    assert set(hits[0].to_dict()) == {"rank", "score", "section", "text", "source", "chunk_id",
                                      "relevance"}
    relevance = [h.relevance for h in hits]  # the score that ranks: in rank order
    assert relevance == sorted(relevance, reverse=True)


def test_keyword_match_lifts_a_chunk_the_vectors_miss(index):
    """BM25 finds 'OpenAI' even though the hashed vectors barely do."""
    dense = CourseRetriever(index=index, k=1, mode="dense").search("OpenAI")
    hybrid = CourseRetriever(index=index, k=1).search("OpenAI")
    assert "OpenAI" in hybrid[0].text
    assert hybrid[0].chunk_id == dense[0].chunk_id or "OpenAI" not in dense[0].text


def test_retriever_is_a_langchain_retriever(index):
    docs = CourseRetriever(index=index, k=2).invoke("multi-head attention")
    assert len(docs) == 2 and docs[0].metadata["rank"] == 1 and docs[0].page_content


def test_unknown_terms_are_names_the_course_never_mentions(index):
    retriever = CourseRetriever(index=index)
    assert retriever.unknown_terms("Who won the 2018 FIFA World Cup?") == ["FIFA", "World", "Cup"]
    assert retriever.unknown_terms("What did Google build with BERT?") == []
    assert retriever.unknown_terms("As a TA: what did Google build with BERT?") == []  # too short
    assert retriever.unknown_terms("Why is a mask put over a GPT-style model?") == []  # GPT's name
    assert retriever.unknown_terms("Is a Google-Gemini model open?") == ["Google-Gemini"]


def test_foreign_words_are_content_words_the_course_never_uses(index):
    retriever = CourseRetriever(index=index)
    foreign, words = retriever.foreign_words("How do electrical transformers step down the voltage?")
    assert {"electrical", "voltage"} <= set(foreign) and "transformers" not in foreign
    assert words == 5  # electrical transformers step down voltage
    # words about the course and the asking are not another field's
    assert retriever.foreign_words("According to the lecture, is it true that BERT has attention?") \
        == ([], 2)
    assert retriever.foreign_words("is BERT lighter or something else?")[0] == ["lighter"]
    assert "params" not in retriever.foreign_words("how many params does BERT have?")[0]  # clipped


@pytest.mark.parametrize("word, expected", [("models", "model"), ("masking", "mask"),
                                            ("studies", "study"), ("class", "class"),
                                            ("bert", "bert")])
def test_stem(word, expected):
    assert stem(word) == expected


def test_keywords_drop_stopwords():
    assert keywords("What is the BERT model?") == ["bert", "model"]


def test_abbreviations_are_found_and_expanded():
    found = find_abbreviations("Masked Language Modeling (MLM) helps. NSP (Next Sentence "
                               "Prediction) too.")
    assert found == {"MLM": "masked language modeling", "NSP": "next sentence prediction"}
    assert expand("what is MLM?", found) == "what is MLM? (masked language modeling)"
    assert expand("next sentence prediction", found).endswith("(NSP)")


def test_named_terms():
    assert named_terms("How does LoRA work with BERT?") == ["LoRA", "BERT"]
    assert named_terms("What is attention?") == []


def test_the_embedder_memo_embeds_each_text_once_and_stays_bounded(monkeypatch):
    from assistant.retrieval import embeddings

    class Counting:
        calls: list = []

        def encode(self, texts):
            self.calls.append(list(texts))
            return [[float(len(t)), 1.0] for t in texts]

    embedder = embeddings.Embedder("all-MiniLM-L6-v2")
    embedder.__dict__["_encoder"] = encoder = Counting()
    monkeypatch.setattr(embeddings, "MEMO_SIZE", 3)
    first = embedder.embed_documents(["a", "bb", "a"])
    assert first == [[1.0, 1.0], [2.0, 1.0], [1.0, 1.0]] and encoder.calls == [["a", "bb"]]
    assert embedder.embed_documents(["bb", "ccc"]) == [[2.0, 1.0], [3.0, 1.0]]
    assert encoder.calls[-1] == ["ccc"]  # "bb" came from the memo
    embedder.embed_documents(["dddd", "eeeee"])
    assert len(embedder._memo) == 3 and "a" not in embedder._memo  # oldest first out
