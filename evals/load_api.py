"""Load test of serve-api: N concurrent OpenAI clients for S seconds, on loopback only.

    python evals/load_api.py                                   # fake model: 20 clients, 60 s
    python evals/load_api.py --model smollm2-135m-instruct     # 4 clients, 60 s

Starts `courselab serve-api` on 127.0.0.1 (a fresh data folder, cold: no model loaded),
then every client alternates between the course assistant (`courselab/default`) and the
bare model (greedy, 24 tokens) until the time is up; the first requests of all clients
arrive together, so they also exercise the one-load-per-model guarantee. A reply is
"mixed" when it differs from the reply to the same request made by one client after the
run (the assistant: its question, sources and reply; the bare model: its reply). Reports
errors, mixed replies and latency p50/p95. Exit 1 on an error or a mixed reply.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "evals" / "datasets" / "course_qa.jsonl"
MAX_CLIENTS, MAX_SECONDS, REQUEST_TIMEOUT = 64, 600, 300


def questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    return [r["user_input"] for r in rows][:n]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, embedder: str, work: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = {**os.environ, "COURSELAB_HOME": str(work / "home"), "COURSELAB_INDEX": str(work / "index"),
           "COURSELAB_MODEL": model, "COURSELAB_EMBEDDER": embedder,
           "COURSELAB_CACHE": os.environ.get("COURSELAB_CACHE", str(ROOT / ".cache")),
           "ANONYMIZED_TELEMETRY": "False", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    env.pop("COURSELAB_API_KEY", None)
    with open(work / "serve.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "assistant", "serve-api", "--host",
                                 "127.0.0.1", "--port", str(port)], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/models", timeout=2)
            return proc, url
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise SystemExit((work / "serve.log").read_text()) from None
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("serve-api did not start within 120 s")


def request(url: str, model: str, question: str) -> dict:
    import httpx

    body = {"model": model, "messages": [{"role": "user", "content": question}], "temperature": 0}
    if not model.startswith("courselab/"):
        body["max_tokens"] = 24
    response = httpx.post(f"{url}/chat/completions", json=body, timeout=REQUEST_TIMEOUT)
    response.raise_for_status()
    return response.json()


def signature(reply: dict) -> tuple:
    """What must be the same in every reply to one request, whoever else is asking."""
    card = reply.get("courselab") or {}
    sources = tuple(s.get("section") for s in card.get("sources", []))
    return (card.get("question"), sources, reply["choices"][0]["message"]["content"])


def client_loop(url: str, jobs: list[tuple[str, str]], until: float, results: list,
                lock: threading.Lock, start: threading.Barrier) -> None:
    start.wait()  # every client's first request at once: a cold server loads each model once
    n = 0
    while time.monotonic() < until:
        model, question = jobs[n % len(jobs)]
        n += 1
        began = time.perf_counter()
        try:
            outcome = ("reply", (model, question), signature(request(url, model, question)))
        except Exception as e:  # noqa: BLE001 (every failure is counted, whatever it is)
            outcome = ("error", (model, question), f"{type(e).__name__}: {str(e)[:200]}")
        with lock:
            results.append((*outcome, time.perf_counter() - began))


def run(model: str, embedder: str, clients: int, seconds: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="load-api-"))
    proc, url = start_server(model, embedder, work)
    try:
        pool = questions(max(clients, 8))
        jobs = [(m, q) for q in pool for m in ("courselab/default", model)]
        results: list = []
        lock, barrier = threading.Lock(), threading.Barrier(clients)
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=client_loop, args=(
            url, jobs[2 * i:] + jobs[:2 * i], until, results, lock, barrier))
            for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + REQUEST_TIMEOUT)
        asked = {key for kind, key, _, _ in results if kind == "reply"}
        reference = {key: signature(request(url, *key)) for key in asked}  # one client, after
    finally:
        proc.terminate()
        proc.wait(30)
    latencies = sorted(s for *_, s in results)
    errors = [detail for kind, _, detail, _ in results if kind == "error"]
    mixed = sum(kind == "reply" and detail != reference[key] for kind, key, detail, _ in results)
    return {"model": model, "embedder": embedder, "clients": clients, "seconds": seconds,
            "requests": len(results), "errors": len(errors), "mixed": mixed,
            "p50_s": round(statistics.median(latencies), 3) if latencies else None,
            "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3) if latencies else None,
            "per_s": round(len(results) / seconds, 2), "first_errors": sorted(set(errors))[:3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fake", help="registry name [fake]")
    parser.add_argument("--embedder", help="[fake-hash with the fake model, else all-MiniLM-L6-v2]")
    parser.add_argument("--clients", type=int, help="[20 with the fake model, else 4]")
    parser.add_argument("--seconds", type=float, default=60)
    opts = parser.parse_args()
    clients = opts.clients or (20 if opts.model == "fake" else 4)
    if not (1 <= clients <= MAX_CLIENTS and 1 <= opts.seconds <= MAX_SECONDS):
        raise SystemExit(f"--clients 1..{MAX_CLIENTS}, --seconds 1..{MAX_SECONDS}")
    embedder = opts.embedder or ("fake-hash" if opts.model == "fake" else "all-MiniLM-L6-v2")
    report = run(opts.model, embedder, clients, opts.seconds)
    print(json.dumps(report, indent=2))
    if report["errors"] or report["mixed"] or not report["requests"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
