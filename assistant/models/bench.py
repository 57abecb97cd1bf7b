"""`courselab bench generate`: the naive loop a user would write vs courselab's batched path.

Both run in this process on the same prompts with greedy decoding and a fixed
number of new tokens: the baseline in fp32, one prompt at a time; ours through
`HFChatModel.generate_texts` (the dynamic batcher's decode loop; precision auto:
bf16 on CUDA).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from assistant.config import PROJECT_ROOT
from assistant.threads import on_fresh_thread


@dataclass
class Run:
    seconds: float
    prompts: int
    new_tokens: int

    def line(self, name: str) -> str:
        return (f"{name:<34}{self.seconds:8.2f} s {self.prompts / self.seconds:8.2f} prompts/s "
                f"{self.new_tokens / self.seconds:9.1f} new tokens/s")


def questions(n: int) -> list[str]:
    from assistant.datasets import read_rows

    rows = [r.user_input for r in read_rows(PROJECT_ROOT / "evals/datasets/course_qa.jsonl")]
    return [rows[i % len(rows)] for i in range(n)]


def chat_model(name: str, cache_dir: Path, random_weights: bool, device: str | None,
               precision: str = "auto"):
    """The HFChatModel to measure, and a loader of its fp32 twin for the baseline."""
    import torch

    from assistant.models import get_model
    from assistant.models.hf import HFChatModel

    if not random_weights:
        model = get_model(name, cache_dir, device=device, precision=precision)
        return model, lambda dev: model.loader(dev, torch.float32)
    from assistant.corpus import corpus_files
    from assistant.models.random_init import architecture, train_tokenizer

    texts = [p.read_text() for p in corpus_files(PROJECT_ROOT / "corpus")]
    tokenizer = train_tokenizer(texts, vocab_size=2000)
    torch.manual_seed(0)
    weights, kind = architecture(name, tokenizer)
    with torch.no_grad():  # ids past the small tokenizer score 0 and are never picked: answers
        weights.get_output_embeddings().weight[len(tokenizer):] = 0  # stream text, as a real one's
    state = weights.state_dict()

    def load(dev, dtype):
        twin, _ = architecture(name, tokenizer)
        twin.load_state_dict(state)
        return twin.to(device=dev, dtype=dtype), tokenizer

    model = HFChatModel(model_name=f"{name} (random)", kind=kind, loader=load, device=device,
                        precision=precision)
    return model, lambda dev: load(dev, torch.float32)


def naive(load_fp32, model, prompts: list[str], tokens: int) -> Run:
    """What a user writes first: fp32, a Python loop, one `generate` per prompt."""
    import torch

    device = model.load().device
    weights, tokenizer = load_fp32(device)
    special = not getattr(tokenizer, "chat_template", None)
    with torch.inference_mode():  # the same warm-up as ours
        enc = tokenizer(prompts[0], return_tensors="pt", add_special_tokens=special).to(device)
        weights.generate(**enc, max_new_tokens=2, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    start = time.perf_counter()
    with torch.inference_mode():
        for prompt in prompts:
            enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=special).to(device)
            weights.generate(**enc, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    _sync(device)
    return Run(time.perf_counter() - start, len(prompts), len(prompts) * tokens)


def batched(model, prompts: list[str], tokens: int) -> Run:
    from assistant.models.options import parse_options

    opts = parse_options({"max_new_tokens": tokens, "min_new_tokens": tokens})
    # warm-up at the measured batch shape: CPU kernels are prepared per shape, and the first
    # batch of 16 took 2-3x longer than the next ones here (both for generate and for ours)
    model.generate_texts(prompts, parse_options({"max_new_tokens": 2, "min_new_tokens": 2}))
    start = time.perf_counter()
    model.generate_texts(prompts, opts)
    _sync(model.load().device)
    # min = max new tokens fixes every length (a random T5 emits <pad>, which counts too)
    return Run(time.perf_counter() - start, len(prompts), len(prompts) * tokens)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_generate(name: str, cache_dir: Path, n: int, tokens: int, random_weights: bool,
                   device: str | None, echo=print, precision: str = "auto") -> float:
    """Run both paths, print a line each and the ratio; return the ratio."""
    from langchain_core.messages import HumanMessage

    # torch work off the main thread: an OpenMP pool left there slows the decoder (threads.py)
    model, load_fp32 = on_fresh_thread(chat_model, name, cache_dir, random_weights, device,
                                       precision)
    prompts = [model.render([HumanMessage(q)]) for q in questions(n)]
    ours = batched(model, prompts, tokens)
    base = on_fresh_thread(naive, load_fp32, model, prompts, tokens)
    loaded = model.load()
    echo(f"{model.model_name} on {loaded.device}, {n} prompts, {tokens} new tokens each")
    echo(base.line("baseline (fp32, one at a time)"))
    echo(ours.line(f"courselab (batched, {loaded.precision})"))
    ratio = base.seconds / ours.seconds
    echo(f"speed-up: {ratio:.2f}x")
    return ratio


# --- `courselab bench decode`: streaming decode at batch 1 -------------------------------
SYSTEM = ("You are a teaching assistant for a course on Transformers, large language models and "
          "generative AI. Answer the student's question using only the course notes. Reply in one "
          "or two short sentences, reusing the notes' own words.")
ANSWER_OPTIONS = {"stop": ["\n\n", "Question:"], "no_repeat_ngram_size": 4}


def course_prompts(n: int) -> list[list]:
    """Course questions with their notes, as chat messages (no index needed)."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from assistant.datasets import read_rows

    rows = [r for r in read_rows(PROJECT_ROOT / "evals/datasets/course_qa.jsonl")
            if r.reference_contexts]
    picked = [rows[(i * 7) % len(rows)] for i in range(n)]
    return [[SystemMessage(SYSTEM), HumanMessage("Course notes:\n" + "\n".join(r.reference_contexts)
                                                 + f"\n\nQuestion: {r.user_input}")]
            for r in picked]


@dataclass
class Decode:
    tokens_per_s: float
    first_token_s: float
    new_tokens: int

    def line(self, name: str) -> str:
        return (f"{name:<44}{self.tokens_per_s:8.1f} tokens/s   first token "
                f"{self.first_token_s:6.3f} s   ({self.new_tokens} tokens)")


def _pool(runs: list[Decode]) -> Decode:
    """One figure for several prompts: total tokens over total time, the mean first token."""
    seconds = sum(r.new_tokens / max(r.tokens_per_s, 1e-9) for r in runs)
    tokens = sum(r.new_tokens for r in runs)
    return Decode(tokens / seconds, sum(r.first_token_s for r in runs) / len(runs), tokens)


def anchor_decode(weights, tokenizer, prompts: list[str], tokens: int, device: str) -> Decode:
    """fp32 `generate`, batch 1, greedy, no streaming: what a user writes first."""
    import torch

    special = not getattr(tokenizer, "chat_template", None)
    total = produced = first = 0.0
    with torch.inference_mode():
        for prompt in prompts:
            enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=special).to(device)
            t = time.perf_counter()
            weights.generate(**enc, max_new_tokens=1, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
            _sync(device)
            first += time.perf_counter() - t
            t = time.perf_counter()
            out = weights.generate(**enc, max_new_tokens=tokens, min_new_tokens=tokens,
                                   do_sample=False, pad_token_id=tokenizer.pad_token_id)
            _sync(device)
            total += time.perf_counter() - t
            produced += out.shape[1] - enc["input_ids"].shape[1]
    return Decode(produced / total, first / len(prompts), int(produced))


def ours_decode(model, prompts: list[str], tokens: int) -> Decode:
    """Courselab's streaming path as `ask` uses it: stop strings, no-repeat rule, precision."""
    from assistant.models.hf import Generation
    from assistant.models.options import parse_options

    opts = parse_options({**ANSWER_OPTIONS, "max_new_tokens": tokens, "min_new_tokens": tokens})
    total = produced = first = 0.0
    for prompt in prompts:
        t = time.perf_counter()
        got_first = None
        for piece in model.stream_text(prompt, opts):
            if got_first is None:
                got_first = time.perf_counter() - t
            if isinstance(piece, Generation):
                produced += piece.output_tokens
        total += time.perf_counter() - t
        first += got_first or 0.0
    return Decode(produced / total, first / len(prompts), int(produced))


def bench_decode(name: str, cache_dir: Path, n: int, tokens: int, device: str | None,
                 precision: str = "auto", echo=print) -> dict:
    """The fp32 naive anchor and our default streaming path in one run; returns the figures."""
    import torch

    from assistant.models import get_model
    from assistant.models.precision import check_precision

    model = get_model(name, cache_dir, device=device, precision=check_precision(precision))
    loaded = model.load()
    prompts = [model.render(m) for m in course_prompts(n)]
    ours_decode(model, prompts[:1], 4)  # warm-up: kernels, the no-repeat word table
    # torch work off the main thread: an OpenMP pool left there slows the decoder (threads.py)
    weights, tokenizer = on_fresh_thread(model.loader, loaded.device, torch.float32)
    weights.eval()
    on_fresh_thread(anchor_decode, weights, tokenizer, prompts[:1], 2, loaded.device)
    # interleaved, one prompt each in turn: on a shared machine a load spike hits both alike
    stats = loaded.engine.stats if loaded.engine is not None else {}
    before = {k: stats.get(k, 0) for k in ("drafted", "accepted")}
    runs = [(on_fresh_thread(anchor_decode, weights, tokenizer, [p], tokens, loaded.device),
             ours_decode(model, [p], tokens)) for p in prompts]
    drafts = {k: stats.get(k, 0) - before[k] for k in before}
    base, ours = (_pool([r[i] for r in runs]) for i in (0, 1))
    result = {"model": name, "device": loaded.device, "precision": loaded.precision,
              "prompts": n, "new_tokens": tokens, "threads": torch.get_num_threads(),
              "anchor": vars(base), "ours": vars(ours),
              "speedup": ours.tokens_per_s / base.tokens_per_s,
              "first_token_ratio": base.first_token_s / max(ours.first_token_s, 1e-9),
              "drafts": drafts}
    if echo is not None:
        echo(f"{name} on {loaded.device}, {n} course prompts, {tokens} new tokens, batch 1, "
             f"{result['threads']} threads")
        echo(base.line("anchor: fp32 generate, no streaming"))
        echo(ours.line(f"courselab: streaming, {loaded.precision}"))
        echo(f"prompt-lookup drafts: {drafts['accepted']} of {drafts['drafted']} drafted tokens "
             f"kept, {drafts['accepted']} forwards saved")
        echo(f"decode speed-up: {result['speedup']:.2f}x")
    return result
