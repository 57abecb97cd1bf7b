"""A classroom at once: N students ask the local model at the same moment.

Runs every way in one process on the real model (no network: the clients are threads
streaming from the model, as the app's and serve-api's request threads do):
serialised (max_batch 1: one answer after another, the lock before batching), padded
(the first batcher: one left-padded prefill of the whole batch, no shared prefix, no
joining), continuous (decode.Engine: short prompts prefilled together after the shared
system prompt's cached prefix, long ones in chunks, late requests join at the next step),
prefill-first (continuous, but a class's prompts all prefilled before anyone's first token,
not a group at a time between decode steps) and concat (continuous, with transformers' cache
that concatenates the whole cache at every step instead of writing into room kept ahead).
Prints, per way and class size: time to first token and to the full answer (p50, max),
throughput, and the times over one answer alone (a lone student's request on the warm app:
continuous engine, system prompt cached). Bounded: at most 64 clients and 128 tokens each.

    .venv/bin/python evals/bench_classroom.py --clients 8 16 --new-tokens 32 --precision fp32
    .venv/bin/python evals/bench_classroom.py --ways continuous concat --notes-words 150

`--natural` lets each answer end where the model ends it (the app's stops, at most
--new-tokens), as in the chat, and times every question alone too: each student's slowdown is
their answer's time in the class over the same question's time alone.

`--app` asks through the app itself, over loopback: N `gradio_client` clients call its `/ask`
at the same moment (retrieval, the grounded answer and Gradio's queue included), on an app
started with `COURSELAB_MAX_BATCH=1` (serialised: one answer at a time, the lock before
batching) and on one with the default batcher (continuous). Answers are as long as the app
makes them; every question is also asked alone on the warm batched app, and each student's
slowdown is their answer's time in the class over that. Only the full answer is timed.

    .venv/bin/python evals/bench_classroom.py --app --clients 8 16

`--group-cap N` sets how many prompt tokens, padding counted, one grouped prefill takes (1024
by default):

    .venv/bin/python evals/bench_classroom.py --ways continuous --notes-words 150 --group-cap 2048

`--notes-words N` adds N words of the lecture to each prompt's notes (a different stretch per
client): the app's prompts hold ~280 tokens (the seventh held-out set's median), these ~110.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def ask_all(model, prompts, opts, stagger: float = 0.0) -> list[tuple[float, float, int, float]]:
    """Every prompt streamed from its own thread, client i asking `stagger` * i seconds after
    the first (0: all at once): (first token s, done s, tokens, asked at), timed from its ask."""
    from assistant.models.hf import Generation

    results: list = [None] * len(prompts)

    def client(i):
        time.sleep(stagger * i)
        start = time.perf_counter()
        first, tokens = None, 0
        for piece in model.stream_text(prompts[i], opts):
            if first is None:
                first = time.perf_counter() - start
            if isinstance(piece, Generation):
                tokens = piece.output_tokens
        results[i] = (first or 0.0, time.perf_counter() - start, tokens, start)

    at_once(client, len(prompts))
    return results


def at_once(client, n: int) -> None:
    """client(0) ... client(n - 1), each on its own thread, all released at one moment."""
    gate = threading.Barrier(n + 1)

    def run(i):
        gate.wait()
        client(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    gate.wait()
    for t in threads:
        t.join(timeout=1800)


def summary(name: str, results, alone: float, each: list[float] | None = None) -> dict:
    """`each`: every client's question asked alone (--natural), for each student's own slowdown."""
    firsts = [r[0] for r in results]
    dones = [r[1] for r in results]
    row = {"way": name, "clients": len(results),
           "first_token_p50_s": statistics.median(firsts), "first_token_max_s": max(firsts),
           "answer_p50_s": statistics.median(dones), "answer_max_s": max(dones),
           # over the wall time from the first question to the last answer
           "tokens_per_s": sum(r[2] for r in results) / (max(r[3] + r[1] for r in results)
                                                         - min(r[3] for r in results)),
           "last_over_alone": max(dones) / alone, "median_over_alone": statistics.median(dones) / alone}
    print(f"{name:<12}{len(results):>4} clients  first token p50 {row['first_token_p50_s']:6.2f} s  "
          f"answer p50 {row['answer_p50_s']:6.2f} s  max {row['answer_max_s']:6.2f} s  "
          f"{row['tokens_per_s']:6.1f} tokens/s  last/alone {row['last_over_alone']:5.2f}x  "
          f"median/alone {row['median_over_alone']:5.2f}x", flush=True)
    if each:
        slowdowns = [done / alone_i for done, alone_i in zip(dones, each)]
        row.update(slowdown_p50=statistics.median(slowdowns), slowdown_max=max(slowdowns),
                   tokens=[r[2] for r in results])
        print(f"{'':<12}each student against the same question alone: slowdown p50 "
              f"{row['slowdown_p50']:5.2f}x  max {row['slowdown_max']:5.2f}x  "
              f"(answers of {min(row['tokens'])}-{max(row['tokens'])} tokens)", flush=True)
    return row


def app_class(model: str, clients: list[int], ways: list[str]) -> list[dict]:
    """The class through the app (--app): a row per way and class size."""
    import tempfile

    from gradio_client import Client

    from evals.load_app import start_app
    from evals.loadkit import questions

    asked = questions(max(clients))
    work = Path(tempfile.mkdtemp(prefix="bench-classroom-"))  # the index, built at the first launch
    rows, each = [], None
    try:
        # the batched app first: every question alone on it is what a lone student gets
        for way in sorted(ways, key=lambda w: w != "continuous"):
            proc, url = start_app(model, "all-MiniLM-L6-v2", work,
                                  {"COURSELAB_MAX_BATCH": "1"} if way == "serialised" else {})
            try:
                client = Client(url, verbose=False)
                for q in asked[:2]:  # the model's load and first forwards are not timed
                    client.predict(q, [], "", "", 4, api_name="/ask")
                if each is None:
                    each = [ask_app(client, q) for q in asked]
                    print(f"{model} through the app: each question alone, median "
                          f"{statistics.median(each):.2f} s", flush=True)
                for n in clients:
                    rows.append(app_summary(way, app_at_once(url, asked[:n]), each[:n]))
            finally:
                proc.terminate()
                proc.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for n in clients:  # side by side, as the model-level bench prints it
        mine = {row["way"]: row for row in rows if row["clients"] == n}
        if len(mine) == 2:
            one, both = mine["serialised"], mine["continuous"]
            print(f"  {n} clients, continuous vs serialised: last answer "
                  f"{one['answer_max_s'] / both['answer_max_s']:.2f}x sooner, median "
                  f"{one['answer_p50_s'] / both['answer_p50_s']:.2f}x sooner, answers per second "
                  f"{both['answers_per_s'] / one['answers_per_s']:.2f}x", flush=True)
    return rows


def app_summary(way: str, timed: list[tuple[float, float]], each: list[float]) -> dict:
    """Times to the full answer against each question alone (first tokens are not seen)."""
    dones = [done for _, done in timed]
    alone = statistics.median(each)
    slowdowns = [done / own for done, own in zip(dones, each)]
    wall = max(start + done for start, done in timed) - min(start for start, _ in timed)
    row = {"way": way, "clients": len(timed), "alone_p50_s": alone,
           "answer_p50_s": statistics.median(dones), "answer_max_s": max(dones),
           "answers_per_s": len(timed) / wall, "last_over_alone": max(dones) / alone,
           "median_over_alone": statistics.median(dones) / alone,
           "slowdown_p50": statistics.median(slowdowns), "slowdown_max": max(slowdowns)}
    print(f"{way:<12}{len(timed):>4} clients  answer p50 {row['answer_p50_s']:6.2f} s  max "
          f"{row['answer_max_s']:6.2f} s  {row['answers_per_s']:5.2f} answers/s  last/alone "
          f"{row['last_over_alone']:5.2f}x  median/alone {row['median_over_alone']:5.2f}x  "
          f"each student: slowdown p50 {row['slowdown_p50']:5.2f}x max {row['slowdown_max']:5.2f}x",
          flush=True)
    return row


def ask_app(client, question: str) -> float:
    start = time.perf_counter()
    client.predict(question, [], "", "", 4, api_name="/ask")
    return time.perf_counter() - start


def app_at_once(url: str, asked: list[str]) -> list[tuple[float, float]]:
    """Each question from its own gradio_client client, all at one moment: (asked at, seconds)."""
    from gradio_client import Client

    clients = [Client(url, verbose=False) for _ in asked]
    out: list = [None] * len(asked)

    def one(i):
        start = time.perf_counter()
        try:
            out[i] = (start, ask_app(clients[i], asked[i]))
        except Exception as e:  # noqa: BLE001 (told below, whatever it is)
            out[i] = e

    at_once(one, len(asked))
    failed = [r for r in out if not isinstance(r, tuple)]
    if failed:  # a class whose answers did not all come back has no timing to report
        raise SystemExit(f"{len(failed)} of {len(asked)} questions failed: {failed[0]!r}")
    return out


def twin(source, max_batch: int = 64, engine=None):
    """A model on `source`'s loaded weights and lock, with its own queue (and engine, when
    given): a copy of its settings, so a random-weights model twins as well as a bundled one."""
    import dataclasses

    model = source.model_copy(update={"max_batch": max_batch})
    loaded = source.load()
    model._loaded = dataclasses.replace(loaded, engine=engine) if engine else loaded
    model._lock, model._scheduler = source._lock, None
    return model


def with_notes(chats: list[list], words: int) -> list[list]:
    """Each chat's last message with `words` more words of the lecture in its notes."""
    if not words:
        return chats
    from langchain_core.messages import HumanMessage

    from assistant.corpus import corpus_files

    text = " ".join(p.read_text() for p in corpus_files(ROOT / "corpus")).split()
    out = []
    for i, chat in enumerate(chats):
        start = (i * 997) % max(len(text) - words, 1)
        notes = " ".join(text[start:start + words])
        last = chat[-1].content.replace("Course notes:\n", f"Course notes:\n{notes}\n", 1)
        out.append([*chat[:-1], HumanMessage(last)])
    return out


def main() -> None:
    from assistant.config import Settings
    from assistant.models.bench import ANSWER_OPTIONS, chat_model, course_prompts
    from assistant.models.decode import Engine
    from assistant.models.options import parse_options
    from assistant.threads import on_fresh_thread

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--clients", type=int, nargs="+", default=[8])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device")
    parser.add_argument("--random-weights", action="store_true",
                        help="a randomly initialised model of the same architecture (a GPU machine "
                             "has no weights): the same shapes and speed; fixed-length answers")
    parser.add_argument("--threads", type=int, help="torch CPU threads [torch's default]: on a "
                        "machine other processes share, 1 avoids OpenMP threads waiting on each other")
    parser.add_argument("--ways", nargs="+",
                        choices=["serialised", "padded", "continuous", "prefill-first", "concat"],
                        help="[serialised padded continuous; with --app: serialised continuous]")
    parser.add_argument("--notes-words", type=int, default=0,
                        help="lecture words added to each prompt's notes [0]")
    parser.add_argument("--group-cap", type=int,
                        help="prompt tokens (padding counted) in one grouped prefill of the "
                             "continuous ways [the engine's: 1024]")
    parser.add_argument("--stagger", type=float, default=0.0,
                        help="seconds between two clients' questions [0: all at once]")
    parser.add_argument("--natural", action="store_true",
                        help="answers end where the model ends them (the app's stops, at most "
                             "--new-tokens) instead of all being --new-tokens long; each "
                             "question is also timed alone")
    parser.add_argument("--app", action="store_true",
                        help="ask through the app over loopback (gradio_client clients of /ask), "
                             "serialised and continuous")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if any(not 1 <= n <= 64 for n in args.clients) or not 1 <= args.new_tokens <= 128:
        parser.error("1-64 clients and 1-128 new tokens")
    if not 0 <= args.stagger <= 10:
        parser.error("--stagger 0-10 seconds")
    if not 0 <= args.notes_words <= 1000:
        parser.error("--notes-words 0-1000")
    if args.group_cap is not None and not 1 <= args.group_cap <= 16384:
        parser.error("--group-cap 1-16384")
    if args.random_weights and args.natural:
        parser.error("--natural needs real weights: a random model's answers end anywhere")
    app_ways = ["serialised", "continuous"]
    args.ways = args.ways or (app_ways if args.app else ["serialised", "padded", "continuous"])
    if args.app:
        if args.random_weights or set(args.ways) - set(app_ways):
            parser.error("--app runs the app's own model, serialised and continuous")
        rows = app_class(args.model, args.clients, args.ways)
        if args.json:
            print(json.dumps({"rows": rows}, indent=2))
        return
    if args.threads is not None:
        if not 1 <= args.threads <= 256:
            parser.error("--threads 1-256")
        import torch

        torch.set_num_threads(args.threads)
    batched, _ = on_fresh_thread(chat_model, args.model, Settings().cache_dir, args.random_weights,
                                 args.device, args.precision)
    loaded = on_fresh_thread(batched.load)
    serial = twin(batched, max_batch=1)  # same weights and engine, one request at a time
    old = Engine(loaded.model, loaded.tokenizer, loaded.device, _mergeable=False)
    concat = Engine(loaded.model, loaded.tokenizer, loaded.device, slack=False)
    upfront = Engine(loaded.model, loaded.tokenizer, loaded.device, interleave=False)
    if args.group_cap:
        loaded.engine.group_cap = upfront.group_cap = concat.group_cap = args.group_cap
    models = {"serialised": serial, "padded": twin(batched, engine=old), "continuous": batched,
              "prefill-first": twin(batched, engine=upfront), "concat": twin(batched, engine=concat)}
    # fixed length: every answer costs the same number of decode steps both ways (--natural:
    # as long as the model makes it, as in the app)
    fixed = {} if args.natural else {"min_new_tokens": args.new_tokens}
    opts = parse_options({"stop": ANSWER_OPTIONS["stop"], "max_new_tokens": args.new_tokens,
                          "no_repeat_ngram_size": 4, **fixed})
    prompts = [batched.render(m) for m in with_notes(course_prompts(max(args.clients)),
                                                      args.notes_words)]
    for way in args.ways:  # warm-up (and the continuous engine's system-prompt cache)
        ask_all(models[way], prompts[:2], opts)
    # the best of two; --natural: every question alone (answers differ in length), their median
    each = [min(ask_all(serial, [p], opts)[0][1] for _ in range(2))
            for p in (prompts if args.natural else prompts[:1])]
    alone = statistics.median(each)
    each = each if args.natural else None
    import torch

    print(f"{args.model} on {loaded.device} ({loaded.precision}, {torch.get_num_threads()} "
          f"threads), {'at most ' if args.natural else ''}{args.new_tokens} tokens per answer; "
          f"one answer alone: {alone:.2f} s{' (median)' if each else ''}; "
          + (f"a client asks every {args.stagger:g} s" if args.stagger else "all ask at once"),
          flush=True)
    rows = []
    for n in args.clients:
        mine = {way: summary(way, ask_all(models[way], prompts[:n], opts, args.stagger), alone,
                             each[:n] if each else None)
                for way in args.ways}
        rows.extend(mine.values())
        first = mine[args.ways[0]]
        for way in args.ways[1:]:
            sooner = first["answer_max_s"] / mine[way]["answer_max_s"]
            gain = mine[way]["tokens_per_s"] / first["tokens_per_s"]
            print(f"  {way} vs {args.ways[0]}: last answer {sooner:.2f}x sooner, "
                  f"throughput {gain:.2f}x", flush=True)
    stats = loaded.engine.stats
    print(f"continuous engine: {stats['prefill_tokens']} prompt tokens prefilled, "
          f"{stats['reused_tokens']} reused from {stats['prefix_hits']} shared-prefix hits, "
          f"{stats['joined']} requests joined a running batch", flush=True)
    if args.json:
        print(json.dumps({"alone_s": alone, "rows": rows, "engine": stats}, indent=2))


if __name__ == "__main__":
    main()
