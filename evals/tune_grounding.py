"""Tune the grounding rules on tuning splits only: quote choice and near-miss abstention.

No model is called: for each question it retrieves, grounds and decides as the chain does,
then reports the share of answerable questions whose quote holds every key fact, abstention
on off-topic and near-miss questions, and false abstentions.

Splits: `dev`, `test` (evals/datasets/course_qa.jsonl) and `holdout` to `holdout67`
(course_qa_holdout*.jsonl). Each was reported once (its suite in evals/suites/), before any
rule was tuned on it; all sixty-nine are tuning data now. The next report needs questions that
nobody has run: add them as a new split, report them with the eval harness, then add them here.

    .venv/bin/python evals/tune_grounding.py [--split dev,test,holdout,holdout2,...] [--show]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from assistant.chain import retrieve  # noqa: E402
from assistant.chain.factory import open_retriever  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.datasets import load_dataset, select  # noqa: E402
from assistant.text import has_key_facts  # noqa: E402

# the held-out sets already reported, each in course_qa_<name>.jsonl (listed, not globbed: a
# set that has not been reported yet must not become tuning data by being saved)
REPORTED = ("holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7",
            "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14",
            "holdout15", "holdout16", "holdout17", "holdout18",
            "holdout19", "holdout20", "holdout21", "holdout22", "holdout23", "holdout24",
            "holdout25", "holdout26", "holdout27", "holdout28", "holdout29", "holdout30",
            "holdout31", "holdout32", "holdout33", "holdout34", "holdout35", "holdout36",
            "holdout37", "holdout38", "holdout39", "holdout40", "holdout41", "holdout42",
            "holdout43", "holdout44", "holdout45", "holdout46", "holdout47", "holdout48",
            "holdout49", "holdout50", "holdout51", "holdout52", "holdout53", "holdout54",
            "holdout55", "holdout56", "holdout57", "holdout58", "holdout59", "holdout60",
            "holdout61", "holdout62", "holdout63", "holdout64", "holdout65", "holdout66",
            "holdout67")
DATASETS = {"dev": "course_qa.jsonl", "test": "course_qa.jsonl",
            **{name: f"course_qa_{name}.jsonl" for name in REPORTED}}
TUNING = ",".join(DATASETS)


def tuning_rows(splits: str) -> list:
    """The rows of comma-separated tuning splits; the report set is not one of them."""
    rows, files = [], {}
    for split in splits.split(","):
        if split not in DATASETS:
            raise SystemExit(f"unknown tuning split {split!r}; choose from {', '.join(DATASETS)}"
                             " (a new report set is run with the eval harness first)")
        name = DATASETS[split]  # dev and test share a file: read it once
        data = files.get(name) or files.setdefault(name, load_dataset(ROOT / "evals/datasets" / name))
        rows += select(data, [f"metadata.split={split}"], None)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default=TUNING, help=f"comma-separated, of: {TUNING}")
    parser.add_argument("--show", action="store_true", help="print every miss")
    args = parser.parse_args()
    rows = tuning_rows(args.split)
    retriever = open_retriever(Settings(corpus_dir=ROOT / "corpus"))
    counts = {"answerable": [0, 0], "near-miss": [0, 0], "off-topic": [0, 0]}
    quoted = false_abstain = 0
    for row in rows:
        p = retrieve(retriever, row.user_input)
        kind = row.metadata["kind"]
        counts[kind][0] += 1
        quote = " ".join(q.text for q in p.quote)
        if kind == "answerable":
            ok = has_key_facts(quote, row.key_facts) and not p.abstained
            quoted += ok
            false_abstain += p.abstained
            counts[kind][1] += ok
            if args.show and not ok:
                why = f"ABSTAINED ({p.missing or 'off-topic'})" if p.abstained else "quote misses"
                print(f"- {row.id} {why}: {row.user_input}\n    facts {row.key_facts}\n    quote {quote}")
        else:
            counts[kind][1] += p.abstained
            if args.show and not p.abstained:
                print(f"- {row.id} ANSWERED: {row.user_input}\n    quote {quote}")
    for kind, (n, ok) in counts.items():
        label = "quote holds every key fact" if kind == "answerable" else "abstained"
        print(f"{kind:<11} n={n:<3} {label}: {ok}/{n} = {ok / max(n, 1):.2f}")
    n = counts["answerable"][0]
    print(f"false abstentions: {false_abstain}/{n} = {false_abstain / max(n, 1):.2f}")


if __name__ == "__main__":
    main()
