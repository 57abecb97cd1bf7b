"""Load test of the app: N concurrent API clients for S seconds, on loopback only.

    python evals/load_app.py                          # fake model: 20 clients, 60 s
    python evals/load_app.py --model smollm2-135m-instruct --clients 4

Starts `courselab app` on 127.0.0.1 (a fresh data folder), computes a reference answer for each
question with one client, then lets every client ask its own questions through `/ask` until the
time is up. Reports errors, answers mixed between clients (a reply whose question, sources or,
for the deterministic fake model, answer differ from that question's reference), and latency
p50/p95. Exit 1 when there was an error or a mixed answer.
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

from evals.bench_app import free_port, wait_for_page  # noqa: E402
from evals.loadkit import REQUEST_TIMEOUT, options, questions  # noqa: E402


def signature(turn: dict, exact: bool) -> tuple:
    """What must be the same in every reply to one question, whoever else is asking."""
    sources = tuple(s.get("section") for s in turn.get("sources", []))
    return (turn.get("question"), sources, turn.get("answer") if exact else None)


def start_app(model: str, embedder: str, work: Path,
              settings: dict | None = None) -> tuple[subprocess.Popen, str]:
    """`courselab app` on a free loopback port, data in `work`; `settings`: more COURSELAB_*."""
    port = free_port()
    env = {**os.environ, **(settings or {}),
           "COURSELAB_HOME": str(work / "home"), "COURSELAB_INDEX": str(work / "index"),
           "COURSELAB_MODEL": model, "COURSELAB_EMBEDDER": embedder,
           "COURSELAB_CACHE": os.environ.get("COURSELAB_CACHE", str(ROOT / ".cache")),
           "GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False",
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    env.pop("COURSELAB_AUTH", None)
    with open(work / "app.log", "w") as log:  # the child keeps its own copy of the handle
        proc = subprocess.Popen([sys.executable, "-m", "assistant", "app", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}/"
    wait_for_page(url, proc)
    return proc, url


def client_loop(url: str, asked: list[str], reference: dict, exact: bool, until: float,
                results: list, lock: threading.Lock) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    n = 0
    while time.monotonic() < until:
        question = asked[n % len(asked)]
        n += 1
        start = time.perf_counter()
        try:
            turn = client.predict(question, [], "", "", 4, api_name="/ask")
            outcome = "ok" if signature(turn, exact) == reference[question] else "mixed"
        except Exception as e:  # noqa: BLE001 (every failure is counted, whatever it is)
            outcome = f"error: {type(e).__name__}: {str(e)[:200]}"
        with lock:
            results.append((outcome, time.perf_counter() - start))


def run(model: str, embedder: str, clients: int, seconds: float) -> dict:
    from gradio_client import Client

    work = Path(tempfile.mkdtemp(prefix="load-app-"))
    proc, url = start_app(model, embedder, work)
    try:
        exact = model == "fake"
        pool = questions(max(clients * 2, 8))
        one = Client(url, verbose=False)
        reference = {q: signature(one.predict(q, [], "", "", 4, api_name="/ask"), exact)
                     for q in pool}  # the first call also waits for the app to finish loading
        results: list = []
        lock = threading.Lock()
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=client_loop, args=(
            url, pool[i::clients] or pool, reference, exact, until, results, lock))
            for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + REQUEST_TIMEOUT)
    finally:
        proc.terminate()
        proc.wait(30)
    latencies = sorted(s for _, s in results)
    errors = [o for o, _ in results if o.startswith("error")]
    return {"model": model, "embedder": embedder, "clients": clients, "seconds": seconds,
            "requests": len(results), "errors": len(errors),
            "mixed": sum(o == "mixed" for o, _ in results),
            "p50_s": round(statistics.median(latencies), 3) if latencies else None,
            "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3) if latencies else None,
            "per_s": round(len(results) / seconds, 2), "first_errors": sorted(set(errors))[:3]}


def main() -> None:
    model, embedder, clients, seconds = options(__doc__.splitlines()[0])
    report = run(model, embedder, clients, seconds)
    print(json.dumps(report, indent=2))
    if report["errors"] or report["mixed"] or not report["requests"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
