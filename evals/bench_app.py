"""Seconds from launching the app to a reachable page and to the first answer.

    python evals/bench_app.py [--repeats 2]

Ours (`python app.py`, models loading in the background) side by side with a
Gradio demo that imports and loads everything before it launches (the tutorial
way, evals/baselines.py EAGER_DEMO), on the same embedder and model weights.
Each app's index is built in a warm-up launch that is not counted.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evals.baselines import EAGER_DEMO  # noqa: E402

QUESTION = "What is BERT?"
CACHE = ROOT / ".cache"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_page(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} not reachable after {timeout} s")


def launch(command: list[str], env: dict, api_name: str, args: tuple) -> tuple[float, float]:
    """(seconds to a reachable page, seconds to the first answer), from process start."""
    from gradio_client import Client

    port = int(command[-1])
    url = f"http://127.0.0.1:{port}/"
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_page(url, proc)
        page = time.perf_counter() - start
        Client(url, verbose=False).predict(*args, api_name=api_name)
        return page, time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    opts = parser.parse_args()
    from assistant.models.smollm2 import converted_folder

    model_dir = converted_folder(CACHE)  # made once, shared by both apps
    work = Path(tempfile.mkdtemp(prefix="bench-app-"))
    env = {**os.environ, "COURSELAB_HOME": str(work / "home"), "COURSELAB_CACHE": str(CACHE),
           "GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False",
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    corpus = ROOT / "corpus" / "intro_to_transformers_llms_genai.md"
    runs = {
        "eager demo (baseline)": lambda: launch(
            [sys.executable, "-c", EAGER_DEMO, str(model_dir), str(corpus), str(work / "eager-index"),
             str(free_port())], env, "/respond", (QUESTION,)),
        "courselab app.py": lambda: launch(
            [sys.executable, str(ROOT / "app.py"), "--port", str(free_port())], env, "/ask", (QUESTION,)),
    }
    results = {}
    for name, run in runs.items():
        run()  # warm-up: builds the index, fills the OS file cache
        times = [run() for _ in range(opts.repeats)]
        results[name] = (statistics.median(t[0] for t in times), statistics.median(t[1] for t in times))
        print(f"{name:<24} page {results[name][0]:6.2f} s   first answer {results[name][1]:6.2f} s",
              flush=True)
    (base_page, base_answer), (page, answer) = results.values()
    print(f"reachable page: {base_page / page:.1f}x sooner; first answer: {base_answer / answer:.2f}x")


if __name__ == "__main__":
    main()
