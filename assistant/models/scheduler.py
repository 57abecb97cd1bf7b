"""Dynamic batching for a local causal model: concurrent requests share one decode batch.

Every caller of an `HFChatModel` (the chat, `ask`, the CLI's --batch, the lab, the eval
runner, serve-api) submits jobs here. One worker thread per model runs batches: the
oldest waiting job leads the next batch, and every waiting job with compatible options
(greedy with the same logits rules) joins it, up to `max_batch`, after a short window
for late arrivals. While a batch decodes, requests that arrive join it at the next step
when `run` takes a `more` argument (continuous batching: decode.Engine), as long as they
are compatible and at the head of the queue: joining never passes over an incompatible
request, which leads the next batch once this one drains. Each job keeps its own stop
strings, limits and stream; a finished or cancelled job leaves the batch at the next
step and its caller hears at once. The worker ends when the queue is empty. Past
`max_queue` waiting jobs a request fails at once with "busy, try again" rather than
waiting without bound.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import threading
import time
import weakref
from collections.abc import Callable

from assistant.errors import CourselabError, ModelError
from assistant.models.decode import Job

log = logging.getLogger("courselab")


EXIT_WAIT_S = 10.0  # at exit, how long a running batch may take to notice it is cancelled
_live: weakref.WeakSet = weakref.WeakSet()  # schedulers whose worker has started
_workers: weakref.WeakSet = weakref.WeakSet()  # worker threads (alive ones stay referenced)


@atexit.register
def _settle() -> None:
    """Before the interpreter exits, cancel every batch and wait for its step to end.

    Subtle: an answer is handed back as soon as its row finishes, while the worker may still
    be inside a forward pass; a daemon thread in torch's native code while the interpreter
    tears down aborts the process ("terminate called without an active exception").
    """
    for scheduler in list(_live):
        scheduler.close(EXIT_WAIT_S)
    # a worker that ends may drop the last reference to its model, whose tensors it then
    # frees on its way out: that too must end before the interpreter goes
    for worker in list(_workers):
        if worker is not threading.current_thread():
            worker.join(EXIT_WAIT_S)


class ModelBusyError(ModelError):
    """Too many requests are waiting for this model."""


def batch_key(job: Job) -> tuple:
    """Jobs with equal keys can share a batch; sampled jobs run alone (own seed, own stream)."""
    o = job.opts
    if o.temperature > 0:
        return ("sampled", id(job))
    return ("greedy", o.repetition_penalty, o.no_repeat_ngram_size)


class Scheduler:
    """A FCFS queue of jobs and one worker that runs them in batches with `run(jobs)`."""

    def __init__(self, run: Callable[[list[Job]], None], lock: threading.RLock | None = None,
                 window_s: float = 0.02, max_batch: int = 64, max_queue: int = 256,
                 name: str = "model"):
        self.run, self.lock = run, lock or threading.RLock()
        self.window_s, self.max_batch, self.max_queue, self.name = (window_s, max_batch,
                                                                   max_queue, name)
        self._queue: list[Job] = []
        self._cv = threading.Condition()
        self._worker: threading.Thread | None = None  # None: no worker (it ended or never started)
        self._running: list[Job] = []
        self._closed = False
        self.batches: list[int] = []  # sizes of recent batches, joiners included (tests, benchmarks)
        try:
            self.joins = "more" in inspect.signature(run).parameters
        except (TypeError, ValueError):  # a callable without a signature
            self.joins = False

    def waiting(self) -> int:
        with self._cv:
            return len(self._queue)

    def submit(self, jobs: list[Job]) -> None:
        """Queue jobs (kept together, in order); ModelBusyError past the queue limit."""
        with self._cv:
            if self._queue and len(self._queue) + len(jobs) > self.max_queue:
                raise ModelBusyError(
                    f"{self.name} is busy: {len(self._queue)} requests are waiting; "
                    "try again in a moment")
            self._queue.extend(jobs)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, daemon=True,
                                                name=f"courselab-batcher-{self.name}")
                self._worker.start()
                _workers.add(self._worker)
                _live.add(self)
            self._cv.notify_all()

    def close(self, timeout: float) -> bool:
        """Cancel every waiting and running job and wait (at most `timeout` s) for the batch
        that runs to end; False if it did not."""
        with self._cv:
            self._closed = True
            for job in self._queue + self._running:
                job.cancel.set()
        if not self.lock.acquire(timeout=timeout):
            return False
        self.lock.release()
        return True

    def complete(self, jobs: list[Job]) -> list[Job]:
        """Submit and wait for every job; the first error is raised."""
        self.submit(jobs)
        for job in jobs:
            job.done.wait()
        for job in jobs:
            if job.error is not None:
                raise job.error
        return jobs

    def _take(self) -> list[Job]:
        """The next batch; [] when nothing waits, and the worker ends (a new one starts at the
        next submit). Subtle: a worker that outlived its work would keep its OpenMP pool and
        slow every other thread's torch work (assistant/threads.py)."""
        with self._cv:
            if not self._queue:
                self._worker = None  # under the lock: submit() sees it and starts a new worker
                return []
            deadline = time.monotonic() + self.window_s
            while len(self._queue) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            key = batch_key(self._queue[0])
            batch = [j for j in self._queue if batch_key(j) == key][: self.max_batch]
            chosen = {id(j) for j in batch}
            self._queue = [j for j in self._queue if id(j) not in chosen]
            return batch

    def _more(self, batch: list[Job]) -> Callable[[], list[Job]]:
        """What a running batch calls between steps: the compatible jobs at the head of the
        queue, up to max_batch unfinished in the batch (they are added to `batch`)."""
        key = batch_key(batch[0])

        def more() -> list[Job]:
            with self._cv:
                room = self.max_batch - sum(not j.done.is_set() for j in batch)
                taken: list[Job] = []
                while self._queue and len(taken) < room and batch_key(self._queue[0]) == key:
                    taken.append(self._queue.pop(0))
                batch.extend(taken)
                if taken:  # this batch's size, also when a reader cleared the list meanwhile
                    self.batches = [*self.batches[:-1], len(batch)] if self.batches else [len(batch)]
                return taken

        return more

    def _loop(self) -> None:
        while batch := self._take():
            self._running = batch
            self.batches = (self.batches + [len(batch)])[-1000:]  # callers may read it at once
            try:
                with self.lock:
                    if self._closed:  # the process is exiting: nothing more runs
                        raise ModelError(f"{self.name} is shutting down")
                    if self.joins:
                        self.run(batch, more=self._more(batch))
                    else:
                        self.run(batch)
            except Exception as e:  # every caller of the batch hears of it, nothing hangs
                log.debug("batch failed: %s", e)
                if not isinstance(e, CourselabError):  # callers record a CourselabError per row
                    wrapped = ModelError(f"generation failed on {self.name}: {type(e).__name__}: {e}")
                    wrapped.__cause__ = e
                    e = wrapped
                for job in batch:
                    if not job.done.is_set():  # a job that already finished keeps its answer
                        job.error = e
            finally:
                self._running = []
                for job in list(batch):
                    job.close()
