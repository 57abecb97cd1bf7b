"""The tuning scripts: the lead policy refuses the test split; the ranker fit gives the shipped weights."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

from assistant.chain.grounding import LEAD_AGREEMENT, QUOTE_WEIGHTS


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "evals" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(answer: str, agreement_words: str, split: str = "dev", verdict: str = "supported") -> dict:
    return {"model": "m", "question": "What does BERT use?", "answer": answer, "abstained": False,
            "prompt": "p", "support": {"verdict": verdict},
            "quote": [{"text": agreement_words, "section": "s", "chunk_id": "c", "span": None}],
            "metadata": {"kind": "answerable", "split": split, "key_facts": ["subword"]}}


def test_the_lead_policy_replays_an_answer_that_drops_the_fact_as_the_quote():
    policy = _script("lead_policy")
    quote = "BERT uses subword embeddings with a large token vocabulary."
    dropped = _row("BERT uses embeddings with a large token vocabulary.", quote)
    assert policy.lead_holds(dropped, 1.0) == (True, False)  # the quote leads, with the fact
    assert policy.lead_holds(dropped, 0.3) == (False, True)  # the answer leads, without it
    # a name or number of the quote that the answer drops keeps it from leading
    named = _row("BERT uses embeddings with a large token vocabulary.", quote.replace("subword", "WordPiece"))
    assert policy.lead_holds(named, 0.3)[1] is False
    unsupported = _row(quote, quote, verdict="partial")
    assert policy.lead_holds(unsupported, 0.0)[1] is False
    assert 0 < LEAD_AGREEMENT <= 1


def test_the_lead_policy_refuses_a_run_with_test_split_rows(tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps(_row("a", "b", split="test")) + "\n")
    done = subprocess.run([sys.executable, str(ROOT / "evals/lead_policy.py"), str(results)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "dev split only" in done.stderr


@pytest.mark.e2e
def test_fitting_the_quote_ranker_on_the_tuning_splits_gives_the_shipped_weights(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSELAB_")}
    env.update(COURSELAB_HOME=str(tmp_path), COURSELAB_CACHE=str(ROOT / ".cache"),
               TOKENIZERS_PARALLELISM="false")
    # the splits the shipped weights were fitted on (a refit on holdout2 too was no better: 110 vs 111/170)
    done = subprocess.run([sys.executable, str(ROOT / "evals/fit_quote_ranker.py"),
                           "--split", "dev,test,holdout"], env=env,
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    line = re.search(r"QUOTE_WEIGHTS = \(([^)]*)\)", done.stdout).group(1)
    fitted = [float(v) for v in line.split(",")]
    assert fitted == pytest.approx(list(QUOTE_WEIGHTS), abs=0.05)
