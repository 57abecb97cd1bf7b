"""Where torch's CPU work runs: on a model's decode thread, or on a thread that ends with it.

Subtle (measured on 2 EPYC cores, torch 2.13, whose OpenMP is libgomp): every thread that
once ran a parallel torch op keeps an OpenMP pool of threads for as long as it lives. Once
the pools' threads outnumber the cores, libgomp's barriers stop spinning and sleep in the
kernel, and each of the few hundred ops of a decode step pays for it. SmolLM2 int8 decoded
45 tokens/s on a thread of its own, and 27 once the main thread had loaded the model, or
another thread had embedded one query (GOMP_SPINCOUNT and OMP_WAIT_POLICY do not help).
A thread's pool goes when the thread ends. So the decode worker is the only long-lived
thread that runs torch (models/scheduler.py: it ends when its queue is empty), and every
other piece of torch work (loading weights, embedding a query) runs here, on a thread
that ends when the call returns. Starting one costs about 0.1 ms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def on_fresh_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """fn(*args, **kwargs) on a new thread that ends with the call: its result, or its error.

    >>> on_fresh_thread(threading.current_thread) is threading.current_thread()
    False
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # re-raised in the caller, traceback kept
            box["error"] = e

    thread = threading.Thread(target=run, daemon=True, name="courselab-torch-call")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]

