"""Courselab's decode loop for causal models: one batch, per-sequence stopping, streaming.

`model.generate` with a `TextIteratorStreamer`, `stop_strings` and a logits processor
costs per token: a streamer thread, a decode of the whole answer inside transformers,
a tokenizer walk for the stop strings. This loop does what the answer path needs and
nothing more: a KV-cached forward per step, the few logits rules in use, one
incremental decode per sequence that serves both streaming and stop strings, and rows
that finish (end token, stop string, length, a client that left) leave the batch at
once (the cache shrinks with them), so a long answer never holds short ones back.

Greedy rows give the same tokens batched (left padding, masked) as alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assistant.models.options import GenerationOptions

REPLACEMENT = "\ufffd"  # a byte-level token that ends inside a UTF-8 character


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """The text up to the first stop string: cut_at_stop('a\\n\\nb', ('\\n\\n',)) -> 'a'."""
    cuts = [text.find(s) for s in stop if s and s in text]
    return text[: min(cuts)] if cuts else text


@dataclass
class Job:
    """One prompt to complete: its token ids, options, stop strings and where pieces go."""

    ids: list[int]
    opts: GenerationOptions
    stops: tuple[str, ...] = ()
    emit: Callable[[str], None] | None = None  # streamed text pieces, in order
    cancel: threading.Event = field(default_factory=threading.Event)  # set: leave the batch
    # results
    text: str = ""
    output_tokens: int = 0
    finish: str = ""  # "stop", "length", "eos", "cancelled"
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    on_done: Callable[[], None] | None = None  # called once the job is complete or failed
    # state
    _tokens: list[int] = field(default_factory=list)
    _emitted: int = 0

    def held(self, text: str) -> int:
        """Characters at the end of `text` that may begin a stop string: held back, never streamed.

        >>> Job([], None, ("Question:",)).held("The answer. Ques")
        4
        """
        longest = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:k]):
                    longest = k
                    break
        return longest

    def add(self, token: int, decode: Callable[[list[int]], str], at_end: bool) -> bool:
        """Take one generated token; True when the answer is complete."""
        self._tokens.append(token)
        self.output_tokens += 1
        full = decode(self._tokens)
        if full.endswith(REPLACEMENT) and not at_end:  # wait for the rest of the character
            return False
        text = full.lstrip()  # answers do not start with blank lines
        cut = cut_at_stop(text, self.stops)
        if cut != text:
            self._finish(cut, "stop")
            return True
        if at_end:
            self._finish(text, self.finish or "length")
            return True
        safe = len(text) - self.held(text)
        if safe > self._emitted:
            self._send(text[self._emitted:safe])
            self._emitted = safe
        return False

    def end(self, decode: Callable[[list[int]], str]) -> None:
        """The answer ended with an end token: finish with what was decoded so far."""
        self._finish(cut_at_stop(decode(self._tokens).lstrip(), self.stops), "eos")

    def _finish(self, text: str, why: str) -> None:
        text = text.rstrip()
        self.text, self.finish = text, self.finish or why
        if len(text) > self._emitted:
            self._send(text[self._emitted:])
            self._emitted = len(text)

    def _send(self, piece: str) -> None:
        if self.emit is not None and piece:
            self.emit(piece)


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    found = set(ids if isinstance(ids, list | tuple) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        found.add(int(tokenizer.eos_token_id))
    return {int(i) for i in found}


def word_keys(tokenizer: Any, size: int):
    """For each token id, the id of its word with surrounding whitespace removed.

    " of" and "of" share a key, so the answer's no-repeat rule bans the word, not one
    spelling of it (banning " of" alone lets the model glue "typeof"). Tokens that are
    only whitespace, or end inside a UTF-8 character, keep a key of their own.
    """
    import torch

    n = len(tokenizer)
    pieces = tokenizer.batch_decode([[i] for i in range(n)], skip_special_tokens=False,
                                    clean_up_tokenization_spaces=False)
    index: dict[str, int] = {}
    keys = []
    for i, piece in enumerate(pieces):
        word = piece.strip()
        key = word if word and REPLACEMENT not in piece else f"\x00{i}"
        keys.append(index.setdefault(key, len(index)))
    keys.extend(range(len(index), len(index) + max(0, size - n)))  # ids past the tokenizer
    return torch.tensor(keys[:size] if size else keys, dtype=torch.long)


def apply_no_repeat(scores, generated, size: int, keys=None):
    """Scores with every token that would repeat an n-gram of the answer at -inf.

    generated: (batch, n) answer tokens; keys: word_keys() to compare words, not token
    ids (None: token ids). Tensor ops over the whole batch, no per-row Python loop.
    """
    import torch

    if size <= 0 or generated.shape[1] < size:
        return scores
    if keys is None:
        keys = torch.arange(scores.shape[1], device=scores.device)
    seq = keys[generated]
    windows = seq.unfold(1, size, 1)  # (batch, n_windows, size)
    prefix = seq[:, seq.shape[1] - size + 1:]  # the last size-1 words
    match = (windows[:, :, :-1] == prefix[:, None, :]).all(-1)
    if not bool(match.any()):
        return scores
    blocked = torch.zeros(seq.shape[0], int(keys.max()) + 1, dtype=torch.float32,
                          device=seq.device)
    blocked.scatter_reduce_(1, windows[:, :, -1], match.float(), reduce="amax")
    mask = blocked.bool()[:, keys[: scores.shape[1]]]
    return scores.masked_fill(mask, float("-inf"))


@dataclass
class Engine:
    """A loaded causal model and what the loop needs of its tokenizer."""

    model: Any
    tokenizer: Any
    device: str
    _keys: Any = None
    _eos: set[int] | None = None

    def keys(self, size: int):
        if self._keys is None or self._keys.shape[0] < size:
            self._keys = word_keys(self.tokenizer, size).to(self.device)
        return self._keys

    def eos(self) -> set[int]:
        if self._eos is None:
            self._eos = eos_ids(self.model, self.tokenizer)
        return self._eos

    def cache_arg(self) -> str:
        """transformers 5.2x renamed forward's past_key_values to cache."""
        import inspect

        return "cache" if "cache" in inspect.signature(self.model.forward).parameters \
            else "past_key_values"

    def decode_text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)

    def run(self, jobs: list[Job]) -> None:
        """Complete every job (greedy, or sampled with the first job's settings)."""
        import torch

        jobs = [j for j in jobs if not j.cancel.is_set()]
        if not jobs:
            return
        opts = jobs[0].opts
        with torch.inference_mode():
            self._run(jobs, opts, torch)

    def _run(self, jobs: list[Job], opts: GenerationOptions, torch) -> None:
        from transformers import DynamicCache

        dev = self.device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(len(j.ids) for j in jobs)
        ids = torch.full((len(jobs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(jobs), width), dtype=torch.long)
        for row, job in enumerate(jobs):
            ids[row, width - len(job.ids):] = torch.tensor(job.ids, dtype=torch.long)
            mask[row, width - len(job.ids):] = 1
        ids, mask = ids.to(dev), mask.to(dev)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        if opts.seed is not None and opts.temperature > 0:
            torch.manual_seed(opts.seed)
        cache = {self.cache_arg(): DynamicCache(config=self.model.config)}
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                            use_cache=True, logits_to_keep=1, **cache).logits[:, -1]
        last = positions[:, -1]
        eos = torch.tensor(sorted(self.eos()), dtype=torch.long, device=dev)
        keys = self.keys(logits.shape[-1]) if opts.no_repeat_ngram_size else None
        seen = None
        if opts.repetition_penalty != 1.0:
            seen = torch.zeros(logits.shape, dtype=torch.bool, device=dev)
            for row, job in enumerate(jobs):
                seen[row, torch.tensor(job.ids, device=dev)] = True
        min_new = torch.tensor([min(j.opts.min_new_tokens, j.opts.max_new_tokens) for j in jobs],
                               device=dev)
        generated = torch.empty((len(jobs), 0), dtype=torch.long, device=dev)
        active = list(jobs)
        step = 0
        while active:
            scores = logits.float()
            if seen is not None:
                picked = torch.where(scores < 0, scores * opts.repetition_penalty,
                                     scores / opts.repetition_penalty)
                scores = torch.where(seen, picked, scores)
            if bool((min_new > step).any()) and eos.numel():
                early = (min_new > step)[:, None] & torch.zeros_like(scores, dtype=torch.bool
                                                                     ).index_fill_(1, eos, True)
                scores = scores.masked_fill(early, float("-inf"))
            if opts.no_repeat_ngram_size:
                scores = apply_no_repeat(scores, generated, opts.no_repeat_ngram_size, keys)
            if opts.temperature > 0:
                nxt = _sample(scores, opts.temperature, opts.top_p, torch)
            else:
                nxt = scores.argmax(-1)
            step += 1
            generated = torch.cat([generated, nxt[:, None]], 1)
            if seen is not None:
                seen[torch.arange(len(active), device=dev), nxt] = True
            tokens = nxt.tolist()
            stay = []
            for row, (job, token) in enumerate(zip(active, tokens)):
                if job.cancel.is_set():
                    job.finish = "cancelled"
                    continue
                if token in self._eos and step > job.opts.min_new_tokens:
                    job.output_tokens += 1
                    job.end(self.decode_text)
                    continue
                at_end = step >= job.opts.max_new_tokens
                if not job.add(token, self.decode_text, at_end):
                    stay.append(row)
            if len(stay) < len(active):
                if not stay:
                    return
                keep = torch.tensor(stay, dtype=torch.long, device=dev)
                next(iter(cache.values())).batch_select_indices(keep)
                active = [active[r] for r in stay]
                mask, last, generated, nxt, min_new = (mask[keep], last[keep], generated[keep],
                                                       nxt[keep], min_new[keep])
                seen = seen[keep] if seen is not None else None
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], 1)
            last = last + 1
            logits = self.model(input_ids=nxt[:, None], attention_mask=mask,
                                position_ids=last[:, None], use_cache=True, **cache).logits[:, -1]


def _sample(scores, temperature: float, top_p: float, torch):
    probs = torch.softmax(scores / temperature, -1)
    if top_p < 1.0:
        ordered, order = probs.sort(-1, descending=True)
        outside = ordered.cumsum(-1) - ordered > top_p
        ordered = ordered.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter_(1, order, ordered)
    return torch.multinomial(probs, 1)[:, 0]
