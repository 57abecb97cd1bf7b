"""Fit the quote's sentence ranker (grounding.QUOTE_WEIGHTS) on the tuning splits only.

For every answerable question of the tuning splits (evals/tune_grounding.py: dev, test and
the held-out sets once they have been reported) it retrieves as the chain does, computes each candidate
sentence's features (`grounding.sentence_features`) and labels it by whether the sentence,
with the context the quote would give it, holds every key fact. A listwise logistic
regression (softmax over a question's sentences, L2) learns one weight per feature.
It prints the weights to paste into grounding/quote.py, how often the top sentence is right
in-sample and leave-one-out, and the same for the weights quote.py has now.

    .venv/bin/python evals/fit_quote_ranker.py [--split dev,test,holdout] [--loo]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from assistant.chain import grounding as g  # noqa: E402
from assistant.chain.compress import score_units  # noqa: E402
from assistant.chain.factory import open_retriever  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.text import has_key_facts  # noqa: E402
from evals.tune_grounding import TUNING, tuning_rows  # noqa: E402


def question_table(retriever, row) -> tuple[np.ndarray, np.ndarray]:
    """Features (sentences x features) and labels (1 = holds every key fact) for one question."""
    hits, vector = retriever.search_with_vector(row.user_input, 4)
    candidates, scores = score_units(vector, hits, retriever.index.embedder)
    ask, weight = g.asked(row.user_input), g.term_weights(retriever.term_idf())
    ranks = g.hit_ranks(candidates)
    x = np.array([g.sentence_features(ask, s, scores[i], ranks[i], weight)
                  for i, (_, s) in enumerate(candidates)])
    text = lambda i: " ".join(candidates[j][1] for j in g.with_context(candidates, i))  # noqa: E731
    y = np.array([float(has_key_facts(text(i), row.key_facts)) for i in range(len(candidates))])
    return x, y


def fit(tables: list, l2: float = 0.3, steps: int = 3000, rate: float = 0.1) -> np.ndarray:
    """Weights maximising the softmax probability of a question's right sentences."""
    tables = [(x, y) for x, y in tables if y.sum() > 0]
    w = np.zeros(tables[0][0].shape[1])
    for _ in range(steps):
        grad = l2 * w
        for x, y in tables:
            p = np.exp(x @ w - (x @ w).max())
            p /= p.sum()
            right = p * y / (p * y).sum()
            grad -= (right - p) @ x
        w -= rate * grad / len(tables)
    return w


def top_right(tables: list, w: np.ndarray) -> int:
    return int(sum(y[np.argmax(x @ w)] for x, y in tables))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default=TUNING, help="comma-separated tuning splits")
    parser.add_argument("--loo", action="store_true", help="also leave-one-out (slow)")
    args = parser.parse_args()
    rows = [r for r in tuning_rows(args.split) if r.metadata["kind"] == "answerable"]
    retriever = open_retriever(Settings(corpus_dir=ROOT / "corpus"))
    tables = [question_table(retriever, r) for r in rows]
    w = fit(tables)
    print("QUOTE_FEATURES =", g.QUOTE_FEATURES)
    print("QUOTE_WEIGHTS =", tuple(round(float(v), 2) for v in w))
    print(f"top sentence right, in-sample: fitted {top_right(tables, w)}/{len(tables)}, "
          f"quote.py now {top_right(tables, np.array(g.QUOTE_WEIGHTS))}/{len(tables)}")
    if args.loo:
        right = sum(top_right([t], fit([u for u in tables if u is not t], steps=800)) for t in tables)
        print(f"top sentence right, leave-one-out: {right}/{len(tables)}")


if __name__ == "__main__":
    main()
