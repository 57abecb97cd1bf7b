"""Load test of serve-api: N concurrent OpenAI clients for S seconds, on loopback only.

    python evals/load_api.py                                   # fake model: 20 clients, 60 s
    python evals/load_api.py --model smollm2-135m-instruct     # 4 clients, 60 s

Starts `courselab serve-api` on 127.0.0.1 (a fresh data folder, cold: no model loaded, no
index). The clients' first requests arrive together on the cold server (the one-load-per-model
guarantee; counted for errors and mixed replies, timed apart); then every client alternates
between the course assistant (`courselab/default`) and the bare model (greedy, 24 tokens)
for S seconds. Each reply is compared with the reply to the same request made by one
client after the run: "mixed" when it belongs to another request (the assistant's card
names another question or other sources, or the text is another request's reply);
"differs_from_alone" when only the text differs (CPU float order under concurrent work;
must be 0 with the deterministic fake). Reports errors, both counts and latency p50/p95.
Exit 1 on an error or a mixed reply (or any difference with the fake model).
"""

from __future__ import annotations

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
sys.path.insert(0, str(ROOT))

from evals.bench_app import free_port  # noqa: E402
from evals.loadkit import REQUEST_TIMEOUT, options, questions  # noqa: E402


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


def ask(url: str, job: tuple[str, str], results: list, lock: threading.Lock) -> None:
    began = time.perf_counter()
    try:
        outcome = ("reply", job, signature(request(url, *job)))
    except Exception as e:  # noqa: BLE001 (every failure is counted, whatever it is)
        outcome = ("error", job, f"{type(e).__name__}: {str(e)[:200]}")
    with lock:
        results.append((*outcome, time.perf_counter() - began))


def client_loop(url: str, jobs: list[tuple[str, str]], seconds: float, cold: list, results: list,
                lock: threading.Lock, start: threading.Barrier) -> None:
    start.wait()  # every client's first request at once: a cold server loads each model once
    ask(url, jobs[0], cold, lock)
    start.wait()  # the timed part starts when the server is warm
    until, n = time.monotonic() + seconds, 1
    while time.monotonic() < until:
        ask(url, jobs[n % len(jobs)], results, lock)
        n += 1


def run(model: str, embedder: str, clients: int, seconds: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="load-api-"))
    proc, url = start_server(model, embedder, work)
    try:
        pool = questions(max(clients, 8))
        jobs = [(m, q) for q in pool for m in ("courselab/default", model)]  # client i starts at i
        cold: list = []
        results: list = []
        lock, barrier = threading.Lock(), threading.Barrier(clients)
        threads = [threading.Thread(target=client_loop, args=(
            url, jobs[i % len(jobs):] + jobs[:i % len(jobs)], seconds, cold, results, lock,
            barrier)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 2 * REQUEST_TIMEOUT)
        everything = cold + results
        asked = {key for kind, key, _, _ in everything if kind == "reply"}
        reference = {key: signature(request(url, *key)) for key in asked}  # one client, after
    finally:
        proc.terminate()
        proc.wait(30)
    latencies = sorted(s for *_, s in results)
    errors = [detail for kind, _, detail, _ in everything if kind == "error"]
    replies = [(key, detail) for kind, key, detail, _ in everything if kind == "reply"]
    mixed = [(key, detail, reference[key]) for key, detail in replies if _mixed(key, detail, reference)]
    differs = sum(detail != reference[key] for key, detail in replies)
    return {"model": model, "embedder": embedder, "clients": clients, "seconds": seconds,
            "cold_requests": len(cold), "cold_s": round(max((s for *_, s in cold), default=0), 2),
            "requests": len(results), "errors": len(errors), "mixed": len(mixed),
            "differs_from_alone": differs,
            "p50_s": round(statistics.median(latencies), 3) if latencies else None,
            "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3) if latencies else None,
            "per_s": round(len(results) / seconds, 2), "first_errors": sorted(set(errors))[:3],
            "first_mixed": [{"request": k, "got": g, "alone": r} for k, g, r in mixed[:3]]}


def _mixed(key: tuple, got: tuple, reference: dict) -> bool:
    """A reply that belongs to another request: the assistant's card names another question
    or other sources, or the text is another request's reply (and not this one's).

    Subtle: on a CPU, greedy text can differ with and without concurrent work (float sums
    in another order flip a close argmax), so a different text alone is not a mixed reply;
    it is counted in `differs_from_alone` (which must be 0 for the deterministic fake).
    """
    own = reference[key]
    if key[0].startswith("courselab/") and got[:2] != own[:2]:
        return True
    others = {ref[2] for k, ref in reference.items() if k != key and ref[2] != own[2]}
    return got[2] != own[2] and got[2] in others


def main() -> None:
    model, embedder, clients, seconds = options(__doc__.splitlines()[0])
    report = run(model, embedder, clients, seconds)
    print(json.dumps(report, indent=2))
    exact = model == "fake"  # deterministic: every reply must equal the one made alone
    if report["errors"] or report["mixed"] or not report["requests"] or \
            (exact and report["differs_from_alone"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
