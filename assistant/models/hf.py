"""A LangChain chat model over a local transformers model, seq2seq or causal.

One interface for both kinds: messages become the model's chat template where
it has one, else one plain text prompt. `batch` runs a single padded `generate`
(left padding for causal models), `stream` yields tokens as they are decoded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from assistant.errors import CourselabError, ModelError
from assistant.models.decode import Engine, Job, apply_no_repeat, cut_at_stop
from assistant.models.options import GenerationOptions, parse_options
from assistant.threads import on_fresh_thread


@dataclass
class Loaded:
    """A model and tokenizer placed on a device."""

    model: Any
    tokenizer: Any
    device: str
    precision: str = "fp32"
    engine: Engine | None = None  # the decode loop of a causal model


@dataclass
class Generation:
    text: str
    input_tokens: int
    output_tokens: int
    finish: str = ""  # OpenAI's finish_reason ("stop", "length"); "": not known (generate path)


def finish_reason(job: Job) -> str:
    """Why a job ended, in OpenAI's words: an end token or stop string is 'stop' even on the
    last allowed token; only running out of tokens is 'length'."""
    return "length" if job.finish == "length" else "stop"


def pick_device(requested: str | None = None) -> tuple[str, Any]:
    """('cuda', bfloat16) when a GPU is present, else ('cpu', float32); an explicit device wins."""
    import torch

    if requested and requested.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {requested!r} was requested but no CUDA GPU is available")
    device = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return device, dtype


def plain_prompt(messages: list[BaseMessage]) -> str:
    """Messages as one text for models without a chat template (FLAN-T5, gpt2)."""
    return "\n\n".join(str(m.content) for m in messages if str(m.content).strip())


class HFChatModel(BaseChatModel):
    """Chat model over a transformers checkpoint, loaded lazily by `loader`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str
    kind: Literal["causal", "seq2seq"]
    loader: Callable[[str, Any], tuple[Any, Any]] = Field(exclude=True)
    options: GenerationOptions = Field(default_factory=GenerationOptions)
    device: str | None = None
    precision: str = Field("auto", description="auto, fp32, bf16, int4 or int8 (see models/precision.py)")
    context_window: int | None = Field(None, description="input tokens; None: from the checkpoint")
    line_answer: bool = Field(False, description="the answer ends at the end of its first line "
                                                 "(base models prompted with plain text)")
    batch_window_ms: int = Field(20, ge=0, le=1000,
                                 description="how long a batch waits for concurrent requests")
    max_batch: int = Field(64, ge=1, le=1024, description="most sequences decoded together")
    max_queue: int = Field(256, ge=1, description="waiting requests before 'busy, try again'")
    _loaded: Loaded | None = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.RLock)  # one generate at a time
    _scheduler: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return f"courselab-hf-{self.kind}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "kind": self.kind, **self.options.model_dump()}

    def load(self) -> Loaded:
        """Load weights once (thread-safe); later calls return the same objects."""
        if self._loaded is not None:  # no lock: the batcher's worker holds it while decoding
            return self._loaded
        with self._lock:
            if self._loaded is None:
                from assistant.models.precision import load_dtype, quantize, resolve

                device, _ = pick_device(self.device)
                precision = resolve(self.precision, device, self.model_name)
                try:  # on a thread that ends: no OpenMP pool left behind (assistant/threads.py)
                    model, tokenizer = on_fresh_thread(self.loader, device, load_dtype(precision))
                    if precision in ("int4", "int8"):
                        model = on_fresh_thread(quantize, model, precision)
                except CourselabError:
                    raise
                except Exception as e:  # missing files, a bad folder, out of memory, ...
                    raise ModelError(f"cannot load model {self.model_name!r}: {e}") from e
                if self.kind == "causal":
                    tokenizer.padding_side = "left"  # generation continues right after the prompt
                if tokenizer.pad_token is None:
                    tokenizer.pad_token = tokenizer.eos_token
                model = model.eval()
                if self.kind == "causal" and device == "cpu":
                    from assistant.models.attention import use_for

                    use_for(model)  # sdpa with a mask for decode steps (models/attention.py)
                engine = Engine(model, tokenizer, device) if self.kind == "causal" else None
                self._loaded = Loaded(model, tokenizer, device, precision, engine)
            return self._loaded

    def share(self, source: HFChatModel) -> None:
        """Use `source`'s loaded weights, lock and batcher (the same weights under other
        options, e.g. serve-api's bare model and its course assistant): their concurrent
        requests then share decode batches instead of queueing behind each other."""
        self._loaded, self._lock = source.load(), source._lock
        if source.kind == "causal":
            self._scheduler = source.scheduler()

    def scheduler(self):
        """The dynamic batcher every generation of a causal model goes through."""
        from assistant.models.scheduler import Scheduler

        if self._scheduler is not None:
            return self._scheduler
        with self._lock:
            if self._scheduler is None:
                engine = self.load().engine
                self._scheduler = Scheduler(engine.run, self._lock, self.batch_window_ms / 1000,
                                            self.max_batch, self.max_queue, self.model_name)
            return self._scheduler

    # --- prompts -------------------------------------------------------------------------
    def render(self, messages: list[BaseMessage]) -> str:
        """The exact text the model receives for these messages."""
        tok = self.load().tokenizer
        if getattr(tok, "chat_template", None):
            roles = {"human": "user", "ai": "assistant", "system": "system"}
            chat = [{"role": roles.get(m.type, "user"), "content": str(m.content)} for m in messages]
            return tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return plain_prompt(messages)

    def input_window(self) -> int:
        """The most prompt tokens the model takes (512 for FLAN-T5)."""
        if self.context_window:
            return self.context_window
        loaded = self.load()
        limit = getattr(loaded.tokenizer, "model_max_length", None)
        if limit and limit < 1_000_000:  # tokenizers without a limit report a huge sentinel
            return int(limit)
        return int(getattr(loaded.model.config, "max_position_embeddings", 2048))

    def count_tokens(self, text: str) -> int:
        return len(self.load().tokenizer(text, add_special_tokens=False)["input_ids"])

    # --- generation ----------------------------------------------------------------------
    def _settings(self, stop: list[str] | None, kwargs: dict) -> GenerationOptions:
        extra = {k: v for k, v in kwargs.items() if k in GenerationOptions.model_fields}
        unknown = set(kwargs) - set(extra)
        if unknown:
            raise ModelError(f"unknown generation option(s): {', '.join(sorted(unknown))}")
        if stop:
            extra["stop"] = tuple(self.options.stop) + tuple(stop)
        return parse_options(extra, base=self.options)

    def _generate_kwargs(self, opts: GenerationOptions, prompt_length: int) -> dict:
        loaded = self.load()
        kw: dict[str, Any] = {"max_new_tokens": opts.max_new_tokens,
                              "pad_token_id": loaded.tokenizer.pad_token_id}
        if opts.min_new_tokens:
            kw["min_new_tokens"] = min(opts.min_new_tokens, opts.max_new_tokens)
        if opts.no_repeat_ngram_size:
            from transformers import LogitsProcessorList

            start = prompt_length if self.kind == "causal" else 0
            keys = loaded.engine.keys(len(loaded.tokenizer)) if loaded.engine else None
            kw["logits_processor"] = LogitsProcessorList(
                [answer_no_repeat(opts.no_repeat_ngram_size, start, keys)])
        if opts.temperature > 0:
            kw.update(do_sample=True, temperature=opts.temperature, top_p=opts.top_p)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if opts.repetition_penalty != 1.0:
            kw["repetition_penalty"] = opts.repetition_penalty
        if opts.stop:
            kw.update(stop_strings=list(opts.stop), tokenizer=loaded.tokenizer)
        return kw

    def _encode(self, prompts: list[str]):
        loaded = self.load()
        # subtle: chat templates already hold the BOS/special tokens; plain prompts need them added
        special = not getattr(loaded.tokenizer, "chat_template", None)
        enc = loaded.tokenizer(prompts, return_tensors="pt", padding=True,
                               add_special_tokens=special)
        return enc.to(loaded.device)

    def generate_texts(self, prompts: list[str], opts: GenerationOptions | None = None
                       ) -> list[Generation]:
        """Greedy/sampled completions for many prompts in one padded `generate` call."""
        import torch

        opts = opts or self.options
        loaded = self.load()
        if loaded.engine is not None:
            jobs = [self._job(p, opts) for p in prompts]
            self.scheduler().complete(jobs)
            return [Generation(j.text, len(j.ids), j.output_tokens, finish_reason(j)) for j in jobs]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths pad less
        enc = self._encode([prompts[i] for i in order])
        if opts.seed is not None:
            torch.manual_seed(opts.seed)
        kwargs = self._generate_kwargs(opts, enc["input_ids"].shape[1])

        def generate():  # on a thread that ends (assistant/threads.py)
            with self._lock, torch.inference_mode():
                return loaded.model.generate(**enc, **kwargs)

        try:
            out = on_fresh_thread(generate)
        except RuntimeError as e:  # e.g. out of memory, a prompt longer than the model's positions
            raise ModelError(f"generation failed on {self.model_name!r}: {e}") from e
        if self.kind == "causal":
            out = out[:, enc["input_ids"].shape[1]:]
        texts = loaded.tokenizer.batch_decode(out, skip_special_tokens=True)
        pad = loaded.tokenizer.pad_token_id
        results: list[Generation | None] = [None] * len(prompts)
        for row, i in enumerate(order):
            n_out = int((out[row] != pad).sum())
            n_in = int(enc["attention_mask"][row].sum())
            results[i] = Generation(cut_at_stop(texts[row], opts.stop).strip(), n_in, n_out)
        return results  # type: ignore[return-value]

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        gen = self.generate_texts([self.render(messages)], self._settings(stop, kwargs))[0]
        return ChatResult(generations=[ChatGeneration(message=self._message(gen))])

    def _message(self, gen: Generation) -> AIMessage:
        usage = {"input_tokens": gen.input_tokens, "output_tokens": gen.output_tokens,
                 "total_tokens": gen.input_tokens + gen.output_tokens}
        return AIMessage(content=gen.text, usage_metadata=usage,
                         response_metadata=self._metadata(gen))

    def _metadata(self, gen: Generation) -> dict:
        meta = {"model_name": self.model_name, "device": self.load().device}
        return {**meta, "finish_reason": gen.finish} if gen.finish else meta

    def batch(self, inputs: list, config: Any = None, *, return_exceptions: bool = False,
              **kwargs: Any) -> list:
        """All inputs in one batched `generate`, not a loop of invokes."""
        if not inputs:
            return []
        opts = self._settings(kwargs.pop("stop", None), kwargs)
        prompts = [self.render(self._convert_input(i).to_messages()) for i in inputs]
        try:
            return [self._message(g) for g in self.generate_texts(prompts, opts)]
        except Exception as e:
            if return_exceptions:
                return [e] * len(inputs)
            raise

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any
                ) -> Iterator[ChatGenerationChunk]:
        opts = self._settings(stop, kwargs)
        pieces = self.stream_text(self.render(messages), opts)
        for piece in pieces:
            if isinstance(piece, Generation):
                usage = {"input_tokens": piece.input_tokens, "output_tokens": piece.output_tokens,
                         "total_tokens": piece.input_tokens + piece.output_tokens}
                yield ChatGenerationChunk(message=AIMessageChunk(
                    content="", usage_metadata=usage, chunk_position="last",
                    response_metadata=self._metadata(piece)))
                return
            if run_manager:
                run_manager.on_llm_new_token(piece)
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))

    def stream_text(self, prompt: str, opts: GenerationOptions) -> Iterator[str | Generation]:
        """Text pieces as the model decodes them, then one final `Generation` with counts."""
        loaded = self.load()
        if loaded.engine is not None:
            yield from self._stream_job(self._job(prompt, opts))
            return
        import torch
        from transformers import TextIteratorStreamer

        enc = self._encode([prompt])
        streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=self.kind == "causal",
                                        skip_special_tokens=True, timeout=600)
        result: dict[str, Any] = {}
        kwargs = self._generate_kwargs(opts, enc["input_ids"].shape[1])
        halt = threading.Event()  # set when the consumer stops reading (e.g. a client left)
        kwargs["stopping_criteria"] = _halt_criteria(halt)

        def run():
            try:
                with self._lock, torch.inference_mode():
                    out = loaded.model.generate(**enc, streamer=streamer, **kwargs)
                start = enc["input_ids"].shape[1] if self.kind == "causal" else 0
                result["out"] = int((out[0, start:] != loaded.tokenizer.pad_token_id).sum())
            except Exception as e:  # re-raised in the consumer; ending the stream avoids a hang
                result["error"] = e
                streamer.on_finalized_text("", stream_end=True)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield from _hold_back_stops(streamer, opts.stop)
        finally:  # subtle: also on close(): a stream nobody reads must not keep the lock
            halt.set()
        thread.join()
        if "error" in result:
            raise ModelError(f"generation failed: {result['error']}") from result["error"]
        yield Generation("", int(enc["attention_mask"][0].sum()), result.get("out", 0))


    # --- the causal decode loop (assistant/models/decode.py) through the batcher -------
    def _stops(self, opts: GenerationOptions) -> tuple[str, ...]:
        return tuple(opts.stop) + (("\n",) if self.line_answer else ())

    def _job(self, prompt: str, opts: GenerationOptions, emit=None) -> Job:
        """A decode job whose prompt and token limit fit the model's window (decode.fit_prompt),
        so no request can hold a batch with a prompt the model cannot take."""
        from assistant.models.decode import fit_prompt

        tok = self.load().tokenizer
        special = not getattr(tok, "chat_template", None)
        ids = tok(prompt, add_special_tokens=special)["input_ids"]
        ids, limit = fit_prompt(ids, opts.max_new_tokens, self.input_window())
        if limit != opts.max_new_tokens:
            opts = opts.model_copy(update={"max_new_tokens": limit,
                                           "min_new_tokens": min(opts.min_new_tokens, limit)})
        return Job(ids, opts, self._stops(opts), emit)

    def _stream_job(self, job: Job) -> Iterator[str | Generation]:
        import queue

        done = object()
        pieces: queue.SimpleQueue = queue.SimpleQueue()
        job.emit, job.on_done = pieces.put, lambda: pieces.put(done)
        self.scheduler().submit([job])
        try:
            while (piece := pieces.get()) is not done:
                yield piece
        finally:  # subtle: also on close(): a client that left leaves the batch at the next step
            job.cancel.set()
        if isinstance(job.error, CourselabError):  # already says what failed (busy, generation)
            raise job.error
        if job.error is not None:
            raise ModelError(f"generation failed: {job.error}") from job.error
        yield Generation("", len(job.ids), job.output_tokens, finish_reason(job))


def _halt_criteria(halt: threading.Event):
    """Stopping criteria that end generation as soon as `halt` is set."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Halt(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), halt.is_set(), dtype=torch.bool,
                              device=input_ids.device)

    return StoppingCriteriaList([Halt()])


def answer_no_repeat(size: int, start: int, keys=None):
    """A logits processor banning any token that would repeat an n-gram of the answer.

    Subtle: transformers' `no_repeat_ngram_size` and `repetition_penalty` also count
    the prompt of a causal model, which would stop an answer from quoting its
    context; this one looks only at tokens generated after position `start`. With
    `keys` (decode.word_keys) it compares words, so a banned " of" also bans "of".
    """
    from transformers import LogitsProcessor

    class AnswerNoRepeat(LogitsProcessor):
        def __call__(self, input_ids, scores):
            return apply_no_repeat(scores, input_ids[:, start:], size, keys)

    return AnswerNoRepeat()


def _hold_back_stops(pieces: Iterator[str], stop: tuple[str, ...]) -> Iterator[str]:
    """Yield text until a stop string, never emitting a partial stop string."""
    keep = max((len(s) for s in stop), default=1) - 1
    buffer, started = "", False
    for piece in pieces:
        buffer += piece
        if not started:  # answers do not start with blank lines
            buffer = buffer.lstrip()
            started = bool(buffer)
        cut = cut_at_stop(buffer, stop)
        if cut != buffer:
            if cut.rstrip():
                yield cut.rstrip()
            return
        if len(buffer) > keep:
            emit, buffer = buffer[: len(buffer) - keep], buffer[len(buffer) - keep:]
            yield emit
    if buffer.rstrip():
        yield buffer.rstrip()
