"""Courselab's decode loop for causal models: continuous batching, per-sequence stopping, streaming.

`model.generate` with a `TextIteratorStreamer`, `stop_strings` and a logits processor
costs per token: a streamer thread, a decode of the whole answer inside transformers,
a tokenizer walk for the stop strings. This loop does what the answer path needs and
nothing more: a KV-cached forward per step, the few logits rules in use, one
incremental decode per sequence that serves both streaming and stop strings, and rows
that finish (end token, stop string, length, a client that left) leave the batch at
once (the cache shrinks with them, and their caller hears at once), so a long answer
never holds short ones back.

Continuous batching: requests that arrive while a batch decodes join it at the next
step (`more`): their prompts are prefilled and their caches left-padded into the
batch's. Short prompts that wait together are prefilled in one forward (padded between
their shared prefix and each suffix); a long one alone, in fixed chunks, a few per
decode step, so a long prompt never stalls the answers being written. While nothing
decodes (a class asking at once, or one student alone), prompts up to `group_tokens` are
grouped too, shortest first: wide forwards are the fastest prefill. After each such group
its rows take a token before the next group is prefilled, so the first students read their
answers while the others' prompts are computed.
The turns before a chat prompt's last one (the system prompt) are a prefix computed once
and kept: the next prompts that share it prefill only their own part. Cache layers keep
room to grow (`slack_layer`), so a decode step writes its token instead of copying the
whole cache.

Greedy rows give the same tokens batched as alone in fp32 (padding is masked; the
tests compare every path with the request alone).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
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

    def close(self) -> None:
        """Tell the caller the job is over (once): as soon as its row leaves the batch."""
        if not self.done.is_set():
            self.done.set()
            if self.on_done is not None:
                self.on_done()


def fit_prompt(ids: list[int], max_new_tokens: int, window: int) -> tuple[list[int], int]:
    """A prompt and token limit that fit the model's window, before the job joins a batch.

    The answer keeps at most half the window; a prompt longer than the rest keeps its
    first quarter (the instructions) and its end (the question, the turn marker) and
    loses its middle. fit_prompt(list(range(10)), 4, 8) -> ([0, 7, 8, 9], 4)
    """
    window = max(2, int(window))
    max_new = max(1, min(int(max_new_tokens), window // 2))
    room = window - max_new
    if len(ids) <= room:
        return list(ids), max_new
    head = room // 4
    return list(ids[:head]) + list(ids[len(ids) - (room - head):]), max_new


def turn_prefix(ids: list[int], special: set[int]) -> int:
    """Where the last turn of a chat prompt starts: the turns before it (the system prompt,
    earlier turns) are a prefix the next prompts are likely to share. 0: no such split.

    A chat prompt's turns begin with the same special token (SmolLM2's <|im_start|>), its
    first or second token; the last one opens the answer, the one before the question.
    """
    for marker in ids[:2]:
        if marker not in special:
            continue
        at = [i for i, t in enumerate(ids) if t == marker]
        if len(at) >= 3:
            return at[-2]
    return 0


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
    if bool((generated < 0).any()):  # -1: before the first token of a row that joined late
        keys = torch.cat([keys, keys.new_tensor([int(keys.max()) + 1])])  # a word of its own
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
    chunk: int = 128  # prompt tokens per prefill forward; a few per decode step while rows decode
    prefill_per_step: int = 256  # prompt tokens prefilled between two decode steps
    group_tokens: int = 512  # longest prompt part grouped with others while nothing decodes
    # prompt tokens in one grouped prefill, its padding counted (bench_classroom --notes-words
    # 150 --group-cap N): 8 app-length prompts (~2,300 tokens) were all answered after 3.6-3.9 s
    # with 1,024, 2,048 or 4,096, the first tokens sooner with 1,024 (p50 1.7-1.9 s; 4,096:
    # 2.5-2.7 s); 16 of them after 6.9-7.4 s and 8 short ones after 1.5-1.6 s with 512 to 2,048
    group_cap: int = 1024
    min_prefix: int = 16  # shorter shared prefixes are not worth a cache entry
    prefix_tokens: int = 2048  # tokens of prefix cache kept (least recently used go first)
    draft_tokens: int = 4  # prompt-lookup tokens checked per step of a lone greedy row (0: off)
    # a burst's groups each take a decode step before the next is prefilled (False: every
    # waiting prompt first): 8 app-length prompts at once, first token p50 2.2-2.3 s against
    # 2.7-3.2 s, every answer by 4.5 s either way (bench_classroom --ways prefill-first continuous)
    interleave: bool = True
    slack: bool = True  # cache layers keep room to grow (False: transformers' concatenation)
    _keys: Any = None
    _eos: set[int] | None = None
    _special: set[int] | None = None
    _mergeable: bool | None = None
    _prefixes: OrderedDict = field(default_factory=OrderedDict)  # prefix ids -> [(k, v)] per layer
    stats: dict = field(default_factory=lambda: {"prefill_tokens": 0, "prefix_hits": 0,
                                                 "reused_tokens": 0, "joined": 0, "steps": 0,
                                                 "drafted": 0, "accepted": 0})

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

    def new_cache(self):
        """A cache for this model; its plain layers keep room to grow (`slack_layer`)."""
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        cache = DynamicCache(config=self.model.config)
        if self.slack and hasattr(cache, "layers"):
            cache.layers = [slack_layer()() if type(x) is DynamicLayer else x for x in cache.layers]
        return cache

    def mergeable(self) -> bool:
        """Plain per-layer caches (no sliding window): rows can be padded and joined."""
        if self._mergeable is None:
            from transformers.cache_utils import DynamicLayer

            layers = getattr(self.new_cache(), "layers", None)
            self._mergeable = bool(layers) and all(type(x) in (DynamicLayer, slack_layer())
                                                   for x in layers)
        return self._mergeable

    def run(self, jobs: list[Job], more: Callable[[], list[Job]] | None = None) -> None:
        """Complete every job (greedy, or sampled with the first job's settings); `more()`
        hands over compatible requests that arrived meanwhile, to join at the next step."""
        import torch

        jobs = [j for j in jobs if not j.cancel.is_set()]
        if not jobs:
            return
        opts = jobs[0].opts
        with torch.inference_mode():
            if self.mergeable():
                self._continuous(jobs, opts, more, torch)
            else:  # e.g. sliding-window layers: one padded prefill, no joining
                self._run(jobs, opts, torch)

    # --- prefill: one prompt, fixed chunks, shared prefixes --------------------------------
    def _split(self, ids: list[int]) -> int:
        if self._special is None:
            self._special = {int(i) for i in getattr(self.tokenizer, "all_special_ids", [])}
        at = turn_prefix(ids, self._special)
        return at if self.min_prefix <= at < len(ids) else 0

    def _cached_prefix(self, prefix: tuple):
        kv = self._prefixes.get(prefix)
        if kv is not None:
            self._prefixes.move_to_end(prefix)
        return kv

    def _keep_prefix(self, prefix: tuple, cache) -> None:
        if len(prefix) > self.prefix_tokens:  # would push out every other prefix
            return
        self._prefixes[prefix] = [(x.keys, x.values) for x in cache.layers]
        while sum(len(p) for p in self._prefixes) > self.prefix_tokens and len(self._prefixes) > 1:
            self._prefixes.popitem(last=False)

    def _prefill_steps(self, job: Job, torch):
        """A generator: one chunk forward per next(), yielding the tokens it took; the last
        yields (tokens, logits, cache)."""
        ids, dev = job.ids, self.device
        split = self._split(ids)
        cache, pos = self.new_cache(), 0
        kv = self._cached_prefix(tuple(ids[:split])) if split else None
        if kv is not None:
            for layer, (k, v) in zip(cache.layers, kv):
                layer.lazy_initialization(k, v)
                layer.keys, layer.values = k, v  # never written in place: update concatenates
            pos = split
            self.stats["prefix_hits"] += 1
            self.stats["reused_tokens"] += split
        # chunk boundaries depend on the prompt only: [0, split) then [split, n), in chunks
        chunk = self.chunk
        bounds = [b for b in range(0, split, chunk)] + list(range(split, len(ids), chunk))
        bounds = [b for b in bounds if b >= pos] + [len(ids)]
        arg = self.cache_arg()
        logits = None
        for start, end in zip(bounds, bounds[1:]):
            x = torch.tensor([ids[start:end]], dtype=torch.long, device=dev)
            positions = torch.arange(start, end, device=dev)[None]
            mask = torch.ones((1, end), dtype=torch.long, device=dev)
            logits = self.model(input_ids=x, attention_mask=mask, position_ids=positions,
                                use_cache=True, logits_to_keep=1, **{arg: cache}).logits[:, -1]
            self.stats["prefill_tokens"] += end - start
            if end == split:
                self._keep_prefix(tuple(ids[:split]), cache)
            if end < len(ids):
                yield end - start
        yield end - start, logits, cache

    # --- prefill of short prompts: a group in one padded forward after their prefix -------
    def _split_cached(self, job: Job) -> tuple[int, bool]:
        """Where the job's shared prefix ends, and whether that prefix is cached."""
        split = self._split(job.ids)
        return split, bool(split) and tuple(job.ids[:split]) in self._prefixes

    def _need(self, job: Job) -> int:
        """Prompt tokens a job still needs prefilled (its cached prefix not counted)."""
        split, cached = self._split_cached(job)
        return len(job.ids) - (split if cached else 0)

    def _short(self, job: Job, idle: bool = False) -> bool:
        """Prefilled with others in one forward (else alone, chunk by chunk). While nothing
        decodes (`idle`: a class asking at once) prompts up to `group_tokens` are grouped too:
        one wide forward multiplies at bf16's best rate, and no answer waits on it."""
        split, cached = self._split_cached(job)
        limit = self.group_tokens if idle else self.chunk
        return max(0 if cached else split, len(job.ids) - split) <= limit

    def _prefill_group(self, jobs: list[Job], torch):
        """(jobs, logits, cache, mask, last) per shared prefix: the prefix computed once alone
        (and kept), then every suffix in one forward, padded between prefix and suffix."""
        dev, arg = self.device, self.cache_arg()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        groups: OrderedDict = OrderedDict()
        for job in jobs:
            split = self._split(job.ids)
            groups.setdefault(tuple(job.ids[:split]), []).append(job)
        for prefix, members in groups.items():
            p = len(prefix)
            kv = self._cached_prefix(prefix) if p else None
            if p and kv is None:  # the first prompt with this prefix: computed alone, kept
                cache = self.new_cache()
                self.model(input_ids=torch.tensor([list(prefix)], dtype=torch.long, device=dev),
                           attention_mask=torch.ones((1, p), dtype=torch.long, device=dev),
                           position_ids=torch.arange(p, device=dev)[None], use_cache=True,
                           logits_to_keep=1, **{arg: cache})
                self.stats["prefill_tokens"] += p
                self._keep_prefix(prefix, cache)
                kv = [(x.keys, x.values) for x in cache.layers]
                reusing = len(members) - 1  # the others in the group reuse it already
            else:
                reusing = len(members) if p else 0
            self.stats["prefix_hits"] += reusing
            self.stats["reused_tokens"] += p * reusing
            g = len(members)
            width = max(len(j.ids) - p for j in members)
            ids = torch.full((g, width), pad, dtype=torch.long)
            mask = torch.zeros((g, p + width), dtype=torch.long)
            mask[:, :p] = 1
            positions = torch.full((g, width), p, dtype=torch.long)
            for row, job in enumerate(members):
                n = len(job.ids) - p
                ids[row, width - n:] = torch.tensor(job.ids[p:], dtype=torch.long)
                mask[row, p + width - n:] = 1
                positions[row, width - n:] = torch.arange(p, p + n)
            ids, mask, positions = ids.to(dev), mask.to(dev), positions.to(dev)
            cache = self.new_cache()
            if p:
                for layer, (k, v) in zip(cache.layers, kv):
                    layer.lazy_initialization(k, v)
                    layer.keys, layer.values = k.expand(g, -1, -1, -1), v.expand(g, -1, -1, -1)
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                use_cache=True, logits_to_keep=1, **{arg: cache}).logits[:, -1]
            self.stats["prefill_tokens"] += sum(len(j.ids) - p for j in members)
            last = torch.tensor([len(j.ids) - 1 for j in members], dtype=torch.long, device=dev)
            yield members, logits, cache, mask, last

    # --- the continuous loop ------------------------------------------------------------
    def _continuous(self, jobs: list[Job], opts: GenerationOptions, more, torch) -> None:
        if opts.seed is not None and opts.temperature > 0:
            torch.manual_seed(opts.seed)
        rows = _Rows(self, opts, torch)
        pending, long = list(jobs), None  # long: (job, its chunk-by-chunk prefill)
        burst: dict[int, Job] = {}  # the jobs that waited together while nothing decoded (held,
        # so that no later job can take one's id)
        while True:
            if more is not None and rows.jobs:  # newcomers join a batch that is decoding
                arrived = more()
                self.stats["joined"] += len(arrived)
                pending += arrived
            if not rows.jobs and long is None:  # a class asking at once: shortest prompts
                burst = {id(j): j for j in pending}  # first, so a group pads little
                pending.sort(key=self._need)
            # prefill: a burst's next group (a wide forward), then a decode step, so the first
            # students read their answers while the others' prompts are prefilled; else about
            # prefill_per_step tokens between two steps
            idle = not rows.jobs or bool(pending) and id(pending[0]) in burst
            budget = None if idle else self.prefill_per_step
            while (pending or long) and (budget is None or budget > 0):
                for job in [j for j in pending if j.cancel.is_set()]:
                    job.finish = "cancelled"
                    job.close()
                    pending.remove(job)
                if long is None and pending and not self._short(pending[0], idle):
                    long = (pending[0], self._prefill_steps(pending.pop(0), torch))
                if long is not None:  # one chunk of a long prompt per round
                    out = next(long[1])
                    if isinstance(out, int):
                        budget = None if budget is None else budget - out
                    else:
                        budget = None if budget is None else budget - out[0]
                        length = len(long[0].ids)
                        rows.add([long[0]], out[1], out[2],
                                 torch.ones((1, length), dtype=torch.long, device=self.device),
                                 torch.tensor([length - 1], dtype=torch.long, device=self.device))
                        long = None
                group, used, width = [], 0, 0
                cap = self.group_cap if idle else budget  # one forward's prompt tokens, padding too
                while pending and self._short(pending[0], idle):
                    need = self._need(pending[0])
                    if group and (len(group) + 1) * max(width, need) > cap:
                        break
                    width, used = max(width, need), used + need
                    group.append(pending.pop(0))
                if group:
                    for prefilled in self._prefill_group(group, torch):
                        rows.add(*prefilled)
                    budget = None if budget is None else budget - used
                elif long is None and not (pending and not self._short(pending[0], idle)):
                    break
                if idle and rows.jobs and long is None and self.interleave:  # a group is in
                    break
            if not rows.jobs:
                if pending or long:
                    continue
                if more is not None and (arrived := more()):
                    pending += arrived
                    continue
                return
            rows.step()
            self.stats["steps"] += 1

    # --- one padded prefill, no joining (caches that cannot be merged) ---------------------
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
        cache = DynamicCache(config=self.model.config)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                            use_cache=True, logits_to_keep=1, **{self.cache_arg(): cache}
                            ).logits[:, -1]
        rows = _Rows(self, opts, torch)
        rows.start(jobs, logits, cache, mask, positions[:, -1])
        while rows.jobs:
            rows.step()


class _Rows:
    """The sequences decoding together: their cache (left-padded to one length), attention
    mask, positions, next-token logits and the state of the logits rules, row by row."""

    def __init__(self, engine: Engine, opts: GenerationOptions, torch):
        self.engine, self.opts, self.torch, self.dev = engine, opts, torch, engine.device
        self.jobs: list[Job] = []
        self.cache = None
        self.arg = engine.cache_arg()
        self.eos = torch.tensor(sorted(engine.eos()), dtype=torch.long, device=self.dev)
        self.mask = self.last = self.logits = self.generated = self.seen = None
        self.steps: list[int] = []
        self.lookup: Lookup | None = None  # the lone row's draft index (step)
        self.croppable: bool | None = None  # this batch's cache can forget a draft (step)

    def start(self, jobs, logits, cache, mask, last) -> None:
        """Rows prefilled together (the padded path)."""
        self.jobs, self.cache, self.mask, self.last, self.logits = (list(jobs), cache, mask,
                                                                   last, logits)
        self.croppable = None
        self.steps = [0] * len(jobs)
        self.generated = self.torch.empty((len(jobs), 0), dtype=self.torch.long, device=self.dev)
        self.seen = self._seen(jobs, logits.shape[-1])

    def _seen(self, jobs, vocab):
        if self.opts.repetition_penalty == 1.0:
            return None
        seen = self.torch.zeros((len(jobs), vocab), dtype=self.torch.bool, device=self.dev)
        for row, job in enumerate(jobs):
            seen[row, self.torch.tensor(job.ids, device=self.dev)] = True
        return seen

    def add(self, jobs: list[Job], logits, cache, mask, last) -> None:
        """Prefilled prompts join: both caches left-padded to the longer, then stacked."""
        torch = self.torch
        if not self.jobs:
            self.start(jobs, logits, cache, mask, last)
            return
        width = max(self.mask.shape[1], mask.shape[1])
        pad_rows, pad_new = width - self.mask.shape[1], width - mask.shape[1]
        for mine, theirs in zip(self.cache.layers, cache.layers):
            mine.keys = torch.cat([_pad_left(mine.keys, pad_rows, torch),
                                   _pad_left(theirs.keys, pad_new, torch)], 0)
            mine.values = torch.cat([_pad_left(mine.values, pad_rows, torch),
                                     _pad_left(theirs.values, pad_new, torch)], 0)
        self.mask = torch.cat([torch.nn.functional.pad(self.mask, (pad_rows, 0)),
                               torch.nn.functional.pad(mask, (pad_new, 0))], 0)
        self.last = torch.cat([self.last, last])
        self.logits = torch.cat([self.logits, logits])
        gen = torch.full((len(jobs), self.generated.shape[1]), -1, dtype=torch.long,
                         device=self.dev)
        self.generated = torch.cat([self.generated, gen])
        if self.seen is not None:
            self.seen = torch.cat([self.seen, self._seen(jobs, logits.shape[-1])])
        self.jobs.extend(jobs)
        self.steps.extend([0] * len(jobs))

    def step(self) -> None:
        """Pick each row's next token, let finished rows leave, run one decode forward.

        A lone greedy row also feeds the forward a draft (`Lookup`): the tokens that followed
        the latest earlier occurrence of its last words, in the prompt or the answer. One
        forward scores them all; each is kept while it is the token greedy decoding picks
        there (the same rules on the same history), so the answer is the one a step at a time
        gives, in fewer forwards: a step is bound by reading the weights, not by its width.
        """
        torch = self.torch
        nxt = self._advance(self._pick(self.logits))
        if nxt is None:
            return
        draft = self._draft() if self._speculating() else []
        if not draft:
            self.logits = self._forward(nxt[:, None])[:, -1]
            return
        logits = self._forward(torch.cat([nxt, nxt.new_tensor(draft)])[None])
        self.engine.stats["drafted"] += len(draft)
        kept = 0
        for token in draft:
            pick = self._pick(logits[:, kept])
            if int(pick[0]) != token:
                break
            kept += 1
            self.engine.stats["accepted"] += 1
            if self._advance(pick) is None:
                return
        unused = len(draft) - kept
        self.cache.crop(-unused)  # the rejected tail goes (0: a sliding window trims back)
        if unused:
            self.mask, self.last = self.mask[:, :-unused], self.last - unused
        self.logits = logits[:, kept]

    def _speculating(self) -> bool:
        if not (self.engine.draft_tokens > 0 and len(self.jobs) == 1
                and self.opts.temperature == 0 and self.seen is None):
            return False
        if self.croppable is None:  # once per batch: its cache stays the same object
            self.croppable = _croppable(self.cache)
        return self.croppable

    def _draft(self) -> list[int]:
        job = self.jobs[0]
        if self.lookup is None or self.lookup.job is not job:
            self.lookup = Lookup(job, job.ids)
        self.lookup.catch_up()
        left = job.opts.max_new_tokens - self.steps[0]  # never past the answer's token limit
        return self.lookup.draft(min(self.engine.draft_tokens, left))

    def _pick(self, logits):
        """Each row's next token from its logits, after the logits rules."""
        torch, opts, engine = self.torch, self.opts, self.engine
        scores = logits.float()
        if self.seen is not None:
            picked = torch.where(scores < 0, scores * opts.repetition_penalty,
                                 scores / opts.repetition_penalty)
            scores = torch.where(self.seen, picked, scores)
        early = torch.tensor([min(j.opts.min_new_tokens, j.opts.max_new_tokens) > n
                              for j, n in zip(self.jobs, self.steps)], device=self.dev)
        if bool(early.any()) and self.eos.numel():
            banned = early[:, None] & torch.zeros_like(scores, dtype=torch.bool
                                                       ).index_fill_(1, self.eos, True)
            scores = scores.masked_fill(banned, float("-inf"))
        if opts.no_repeat_ngram_size:
            keys = engine.keys(scores.shape[-1])
            scores = apply_no_repeat(scores, self.generated, opts.no_repeat_ngram_size, keys)
        return _sample(scores, opts.temperature, opts.top_p, torch) if opts.temperature > 0 \
            else scores.argmax(-1)

    def _advance(self, nxt):
        """Rows take their token; finished ones leave (their callers hear at once). The tokens
        of the rows that remain, in order; None when none does."""
        torch, engine = self.torch, self.engine
        self.generated = torch.cat([self.generated, nxt[:, None]], 1)
        if self.seen is not None:
            self.seen[torch.arange(len(self.jobs), device=self.dev), nxt] = True
        stay = []
        for row, (job, token) in enumerate(zip(self.jobs, nxt.tolist())):
            self.steps[row] += 1
            n = self.steps[row]
            if job.cancel.is_set():
                job.finish = "cancelled"
            elif token in engine.eos() and n > job.opts.min_new_tokens:
                job.output_tokens += 1
                job.end(engine.decode_text)
            elif not job.add(token, engine.decode_text, n >= job.opts.max_new_tokens):
                stay.append(row)
                continue
            job.close()  # its caller has the whole answer now, whatever the others still do
        if len(stay) < len(self.jobs):
            self._keep(stay)
            nxt = nxt[torch.tensor(stay, dtype=torch.long, device=self.dev)] if stay else None
        return nxt

    def _forward(self, ids):
        """Run (rows, q) new tokens through the model after the cache: logits (rows, q, vocab)."""
        torch = self.torch
        q = ids.shape[1]
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.jobs), q))], 1)
        positions = self.last[:, None] + torch.arange(1, q + 1, device=self.dev)
        self.last = self.last + q
        return self.engine.model(input_ids=ids, attention_mask=self.mask, position_ids=positions,
                                 use_cache=True, **{self.arg: self.cache}).logits

    def _keep(self, stay: list[int]) -> None:
        torch = self.torch
        self.jobs = [self.jobs[r] for r in stay]
        self.steps = [self.steps[r] for r in stay]
        if not stay:
            return
        keep = torch.tensor(stay, dtype=torch.long, device=self.dev)
        self.cache.batch_select_indices(keep)
        self.mask, self.last, self.generated = self.mask[keep], self.last[keep], self.generated[keep]
        self.seen = self.seen[keep] if self.seen is not None else None
        # columns no remaining row attends to (the padding of a longer row that left) go
        start = int(self.mask.any(0).nonzero()[0]) if self.engine.mergeable() else 0
        if start:
            self.mask = self.mask[:, start:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]
        while self.generated.shape[1] and bool((self.generated[:, 0] < 0).all()):
            self.generated = self.generated[:, 1:]


SLACK_TOKENS = 64  # room a cache layer keeps past its length, so most steps copy nothing


@functools.cache
def slack_layer() -> type:
    """transformers' DynamicLayer whose keys and values are views into buffers with room to
    grow: a step writes its tokens in place instead of concatenating the whole cache again.

    Subtle: everything else still handles `keys`/`values` as plain tensors (row selection,
    left-padding, a shared prefix set as the cache's start). A layer writes in place only while
    `keys` is still the view it made (same storage and strides); any other tensor there is
    copied into a new buffer at the next update. A crop keeps the view, and the next tokens
    overwrite the cropped ones. A kept prefix is a view that later writes never reach: they
    land past its end, or in a new buffer.
    """
    from transformers.cache_utils import DynamicLayer

    class SlackLayer(DynamicLayer):
        _kbuf = _vbuf = None

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            keys, q = self.keys, key_states.shape[-2]
            n = keys.shape[-2] if keys.dim() == 4 else 0
            buf = self._kbuf
            ours = (n > 0 and buf is not None and keys.data_ptr() == buf.data_ptr()
                    and keys.stride() == buf.stride() and keys.shape[:2] == buf.shape[:2])
            if not ours or buf.shape[-2] < n + q:
                rows, heads, _, dim = key_states.shape
                room = (rows, heads, n + q + SLACK_TOKENS, dim)
                kbuf, vbuf = key_states.new_empty(room), value_states.new_empty(room)
                if n:
                    kbuf[:, :, :n], vbuf[:, :, :n] = keys, self.values
                self._kbuf, self._vbuf = kbuf, vbuf
            self._kbuf[:, :, n:n + q] = key_states
            self._vbuf[:, :, n:n + q] = value_states
            self.keys, self.values = self._kbuf[:, :, :n + q], self._vbuf[:, :, :n + q]
            return self.keys, self.values

    return SlackLayer


def _croppable(cache) -> bool:
    """Every cache layer can forget a rejected draft: plain layers, and sliding-window ones
    (Gemma 3), which from now on keep what passes out of the window until the next crop."""
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    layers = getattr(cache, "layers", None) or []
    plain = (DynamicLayer, DynamicSlidingWindowLayer, slack_layer())
    if not layers or any(type(x) not in plain for x in layers):
        return False
    for layer in layers:
        if type(layer) is DynamicSlidingWindowLayer:
            layer.activate_past_recording()
    return True


class Lookup:
    """Prompt-lookup drafts for one sequence: the tokens that followed the latest earlier
    occurrence of its last `n` tokens (the longest n of 4, 3, 2 found), in the prompt or the
    answer so far.

    A dict from each n-gram to where its latest occurrence ended: push and draft are O(1),
    however long the prompt (no scan over outside text).

    >>> look = Lookup(None, [5, 6, 7, 8, 9])
    >>> look.push(6); look.push(7)
    >>> look.draft(2)
    [8, 9]
    """

    SIZES = (4, 3, 2)  # tried on 6 course prompts, int8: (3, 2) and (2, 1) ran slower

    def __init__(self, job, ids: list[int]):
        self.job, self.taken = job, 0
        self.seq: list[int] = []
        self.ends: dict[tuple, int] = {}
        for token in ids:
            self.push(token)

    def catch_up(self) -> None:
        """Take the tokens the job's answer gained since the last call."""
        for token in self.job._tokens[self.taken:]:
            self.push(token)
        self.taken = len(self.job._tokens)

    def push(self, token: int) -> None:
        seq = self.seq
        for n in self.SIZES:  # the n-grams that end just before the new token now have a follower
            if len(seq) >= n:
                self.ends[tuple(seq[-n:])] = len(seq)
        seq.append(token)

    def draft(self, k: int) -> list[int]:
        for n in self.SIZES:
            at = self.ends.get(tuple(self.seq[-n:])) if len(self.seq) >= n else None
            if at is not None:
                return self.seq[at:at + k]
        return []


def _pad_left(x, n: int, torch):
    """(batch, heads, length, dim) with n zero positions before the first."""
    return torch.nn.functional.pad(x, (0, 0, n, 0)) if n else x


def _sample(scores, temperature: float, top_p: float, torch):
    probs = torch.softmax(scores / temperature, -1)
    if top_p < 1.0:
        ordered, order = probs.sort(-1, descending=True)
        outside = ordered.cumsum(-1) - ordered > top_p
        ordered = ordered.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter_(1, order, ordered)
    return torch.multinomial(probs, 1)[:, 0]
