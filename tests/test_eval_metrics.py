"""Metric functions against values computed by hand."""

from __future__ import annotations

import pytest

from assistant.datasets import Row
from assistant.evaluation.metrics import METRICS, MetricError, Sample

ROW = Row(id="x", user_input="How many parameters does BERT-Base have?",
          reference="BERT-Base has 110M parameters.",
          reference_contexts=["768 hidden size, 110M parameters"],
          metadata={"key_facts": ["110M|110 million", "param"]})
NO_REF = Row(id="u", user_input="Who won the FIFA World Cup?")


def score(name, answer="", row=ROW, **kw):
    return METRICS[name].evaluate(Sample(row, answer, **kw))


@pytest.mark.parametrize("name, answer, expected", [
    ("exact_match", "bert-base has 110M parameters", 1.0),  # case, punctuation
    ("exact_match", "110M", 0.0),
    # pred [110m, parameters] vs ref [bertbase, has, 110m, parameters]: p=1, r=0.5, F1=2/3
    ("token_f1", "110M parameters.", 0.6667),
    ("token_f1", "nothing shared", 0.0),
    # rouge tokens [bert, base, has, 110m, parameters] vs [it, has, 110m]: LCS 2, P=2/3, R=2/5
    ("rouge_l", "it has 110M", 0.5),
    ("key_facts", "It has 110 million parameters", 1.0),
    ("key_facts", "It has 110 million", 0.0),
    ("answer_length", "one two three", 3.0),
])
def test_hand_computed_scores(name, answer, expected):
    assert score(name, answer)["score"] == pytest.approx(expected, abs=1e-4)


def test_result_shape_and_direction_of_thresholds():
    result = score("answer_length", "word " * 61)
    assert set(result) == {"score", "pass", "reason"} and result["pass"] is False  # lower is better
    assert score("latency", latency_s=2.0)["pass"] is True
    assert METRICS["latency"].evaluate(Sample(ROW, latency_s=2.0), threshold=1.0)["pass"] is False


def test_metrics_without_a_reference_do_not_apply():
    for name in ("exact_match", "token_f1", "rouge_l", "semantic_similarity", "key_facts",
                 "hit_at_k", "mrr"):
        result = score(name, "anything", row=NO_REF)
        assert result["score"] is None and result["pass"] is None, name


def test_retrieval_metrics_find_the_reference_passage():
    hits = [{"text": "BERT masks 15% of tokens"}, {"text": "BERT-Base: 768 hidden size, 110M parameters."}]
    assert score("hit_at_k", hits=hits)["score"] == 1.0
    assert score("mrr", hits=hits)["score"] == 0.5
    assert score("mrr", hits=hits[:1])["score"] == 0.0


@pytest.mark.parametrize("row, abstained, expected", [
    (ROW, False, 1.0), (ROW, True, 0.0), (NO_REF, True, 1.0), (NO_REF, False, 0.0)])
def test_abstention_is_right_exactly_when_there_is_no_reference(row, abstained, expected):
    assert score("abstention", row=row, abstained=abstained)["score"] == expected


def test_groundedness_counts_answer_words_found_in_the_context():
    context = "BERT-Base: 12 layers, 768 hidden size, 110M parameters."
    assert score("groundedness", "BERT-Base has 110M parameters", context=context)["score"] == 1.0
    # content words: bert, base, 110m, parameter, trained, tpus -> 4 of 6 in the context
    half = score("groundedness", "BERT-Base 110M parameters trained TPUs", context=context)
    assert half["score"] == pytest.approx(4 / 6, abs=1e-4)
    assert score("groundedness", "x", abstained=True)["score"] is None


def test_semantic_similarity_uses_the_embedder():
    from assistant.retrieval.embeddings import HashEmbedder

    embed = HashEmbedder().embed_documents
    assert score("semantic_similarity", ROW.reference, embed=embed)["score"] == pytest.approx(1.0)
    assert score("semantic_similarity", "bread", embed=embed)["score"] < 0.5


def test_regex_and_judge():
    assert METRICS["regex"].evaluate(Sample(ROW, "It has 110M."), {"pattern": r"\d+M"})["score"] == 1.0
    with pytest.raises(MetricError, match="args.pattern"):
        METRICS["regex"].evaluate(Sample(ROW, "x"), {})
    assert METRICS["regex"].evaluate(Sample(ROW, "BERT"), {"pattern": "bert"})["score"] == 1.0
    with pytest.raises(MetricError, match="invalid regex"):
        METRICS["regex"].evaluate(Sample(ROW, "x"), {"pattern": "("})
    graded = METRICS["judge"].evaluate(Sample(ROW, "x", judge=lambda s: "Grade: 4 of 5"))
    assert graded["score"] == 0.75
    with pytest.raises(MetricError, match="no grade"):
        METRICS["judge"].evaluate(Sample(ROW, "x", judge=lambda s: "I like it"))


def test_a_catastrophic_suite_regex_is_answered_in_linear_time_or_an_error_within_a_bound():
    import time

    started = time.perf_counter()  # RE2: exponential for a backtracking engine, linear here
    verdict = METRICS["regex"].evaluate(Sample(ROW, "a" * 3000 + "!"), {"pattern": "^(a|aa)+$"})
    assert verdict["score"] == 0.0 and time.perf_counter() - started < 0.5
    assert METRICS["regex"].evaluate(Sample(ROW, "a" * 3000), {"pattern": "^(a|aa)+$"})["pass"]
    started = time.perf_counter()  # a lookahead RE2 does not run: a time limit instead
    with pytest.raises(MetricError, match="took over"):
        METRICS["regex"].evaluate(Sample(ROW, "a" * 3000 + "!"), {"pattern": "^(?=(a|aa)+$)"})
    assert time.perf_counter() - started < 30  # unbounded before the time limit
