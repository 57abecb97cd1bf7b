"""`courselab bench generate`: the naive loop a user would write vs courselab's batched path.

Both run in this process on the same prompts with greedy decoding and a fixed
number of new tokens: the baseline in fp32, one prompt at a time; ours through
`HFChatModel.generate_texts` (one padded batch sorted by length; bf16 on CUDA).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from assistant.config import PROJECT_ROOT


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


def chat_model(name: str, cache_dir: Path, random_weights: bool, device: str | None):
    """The HFChatModel to measure, and a loader of its fp32 twin for the baseline."""
    import torch

    from assistant.models import get_model
    from assistant.models.hf import HFChatModel

    if not random_weights:
        model = get_model(name, cache_dir, device=device)
        return model, lambda dev: model.loader(dev, torch.float32)
    from assistant.corpus import corpus_files
    from assistant.models.random_init import architecture, train_tokenizer

    texts = [p.read_text() for p in corpus_files(PROJECT_ROOT / "corpus")]
    tokenizer = train_tokenizer(texts, vocab_size=2000)
    torch.manual_seed(0)
    weights, kind = architecture(name, tokenizer)
    state = weights.state_dict()

    def load(dev, dtype):
        twin, _ = architecture(name, tokenizer)
        twin.load_state_dict(state)
        return twin.to(device=dev, dtype=dtype), tokenizer

    model = HFChatModel(model_name=f"{name} (random)", kind=kind, loader=load, device=device)
    return model, lambda dev: load(dev, torch.float32)


def naive(load_fp32, model, prompts: list[str], tokens: int) -> Run:
    """What a user writes first: fp32, a Python loop, one `generate` per prompt."""
    import torch

    device = model.load().device
    weights, tokenizer = load_fp32(device)
    special = not getattr(tokenizer, "chat_template", None)
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
    model.generate_texts(prompts[:2], opts)  # warm-up (kernels, allocator)
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
                   device: str | None, echo=print) -> float:
    """Run both paths, print a line each and the ratio; return the ratio."""
    from langchain_core.messages import HumanMessage

    model, load_fp32 = chat_model(name, cache_dir, random_weights, device)
    prompts = [model.render([HumanMessage(q)]) for q in questions(n)]
    ours = batched(model, prompts, tokens)
    base = naive(load_fp32, model, prompts, tokens)
    echo(f"{model.model_name} on {model.load().device}, {n} prompts, {tokens} new tokens each")
    echo(base.line("baseline (fp32, one at a time)"))
    echo(ours.line("courselab (batched)"))
    ratio = base.seconds / ours.seconds
    echo(f"speed-up: {ratio:.2f}x")
    return ratio
