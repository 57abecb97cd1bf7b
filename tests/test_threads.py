"""Torch work off long-lived threads (assistant/threads.py): a thread that ran a parallel op
keeps an OpenMP pool while it lives, and pools beyond the cores slow the decoder."""

from __future__ import annotations

import os
import threading

import pytest

from assistant.threads import on_fresh_thread


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_the_result_and_the_error_come_back_to_the_caller():
    assert on_fresh_thread(lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(ValueError, match="bad input"):
        on_fresh_thread(int, "bad input")


def test_the_call_runs_on_a_thread_that_has_ended():
    seen = []

    def where():
        seen.append(threading.current_thread())
        return "ok"

    assert on_fresh_thread(where) == "ok"
    assert seen[0] is not threading.current_thread() and not seen[0].is_alive()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux only: counts OS threads")
def test_a_parallel_torch_op_leaves_no_openmp_pool_behind():
    torch = pytest.importorskip("torch")
    before_threads = torch.get_num_threads()
    torch.set_num_threads(2)  # a pool of one helper thread per parallel region's owner
    try:
        a = torch.randn(256, 256)
        base = os_threads()
        on_fresh_thread(lambda: [a @ a for _ in range(4)])
        after = os_threads()
        for _ in range(100):  # threads other tests left may still be ending
            if after <= base:
                break
            threading.Event().wait(0.05)
            after = os_threads()
    finally:
        torch.set_num_threads(before_threads)
    assert after <= base  # the pool went with its thread
