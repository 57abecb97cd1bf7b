"""Next-token prediction: the top-k next tokens of a causal model, and how sampling reshapes them.

`reshape()` is the sampler's arithmetic on the model's logits: temperature (0 puts all
mass on the argmax), then top-k, then top-p (the smallest set whose probability reaches
p), renormalised. `branch()` appends a chosen token, for step-by-step generation.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.errors import InputError
from assistant.explain import loaded
from assistant.explain.plots import caption, figure, label
from assistant.explain.tokens import check_text

MAX_TOKENS = 512  # of the prompt, kept from the end
SHOWN = 10


@dataclass
class Candidate:
    token: str  # the decoded text the token adds
    token_id: int
    probability: float  # as the model gives it (temperature 1, nothing cut)
    shaped: float  # after temperature, top-k and top-p

    def to_dict(self) -> dict:
        return {"token": self.token, "id": self.token_id, "probability": self.probability,
                "shaped_probability": self.shaped}


@dataclass
class NextTokenResult:
    model: str
    prompt: str
    temperature: float
    top_k: int
    top_p: float
    candidates: list[Candidate]
    kept: int  # tokens left with non-zero probability after reshaping
    chosen: int | None = None  # the token id picked, in step-by-step generation
    final: str = ""  # the text after the last step

    def to_dict(self) -> dict:
        out = {"model": self.model, "prompt": self.prompt, "temperature": self.temperature,
               "top_k": self.top_k, "top_p": self.top_p, "tokens_kept": self.kept,
               "candidates": [c.to_dict() for c in self.candidates]}
        if self.chosen is not None:
            out["chosen_id"] = self.chosen
        return {**out, "text_after": self.final} if self.final else out

    def figure(self):
        return draw(self)


def check_sampling(temperature: float, top_k: int, top_p: float) -> None:
    if not 0.0 <= temperature <= 5.0:
        raise InputError(f"temperature must be between 0 and 5, got {temperature}")
    if top_k < 0:
        raise InputError(f"top-k must be 0 (off) or more, got {top_k}")
    if not 0.0 < top_p <= 1.0:
        raise InputError(f"top-p must be in (0, 1], got {top_p}")


def reshape(logits, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
    """Probabilities after temperature, top-k and top-p (a 1-D tensor summing to 1)."""
    import torch

    check_sampling(temperature, top_k, top_p)
    logits = logits.float()
    if temperature == 0.0:
        probs = torch.zeros_like(logits)
        probs[int(torch.argmax(logits))] = 1.0
        return probs
    probs = torch.softmax(logits / temperature, dim=-1)
    if 0 < top_k < probs.numel():
        cut = torch.topk(probs, top_k).values[-1]
        probs = torch.where(probs >= cut, probs, torch.zeros_like(probs))
    if top_p < 1.0:
        ordered, order = torch.sort(probs, descending=True)
        before = torch.cumsum(ordered, dim=0) - ordered  # mass of the tokens ranked above
        keep = torch.zeros_like(probs, dtype=torch.bool)
        keep[order] = before < top_p * ordered.sum()
        probs = torch.where(keep, probs, torch.zeros_like(probs))
    return probs / probs.sum()


def last_logits(pair, prompt: str):
    """The model's logits for the token after `prompt`."""
    import torch

    # the tokenizer's own start token where it adds one (Gemma's <bos>; SmolLM2 adds none)
    ids = pair.tokenizer(prompt, return_tensors="pt")["input_ids"]
    ids = ids[:, -MAX_TOKENS:]
    if ids.shape[1] == 0:
        raise InputError("the prompt has no tokens")
    with torch.inference_mode():
        return pair.model(input_ids=ids.to(pair.model.device)).logits[0, -1].float().cpu()


def predict(prompt: str, model: str = loaded.CAUSAL, temperature: float = 1.0, top_k: int = 0,
            top_p: float = 1.0, shown: int = SHOWN, cache_dir=None) -> NextTokenResult:
    """The `shown` most likely next tokens, before and after reshaping."""
    return _predict(prompt, model, temperature, top_k, top_p, shown, cache_dir)[0]


def _predict(prompt, model, temperature, top_k, top_p, shown, cache_dir):
    import torch

    prompt = check_text(prompt, strip=False)  # subtle: a trailing space changes the next token
    check_sampling(temperature, top_k, top_p)
    shown = max(1, min(int(shown), 50))
    pair = loaded.get(model, cache_dir)
    with loaded.compute():
        logits = last_logits(pair, prompt)
        raw = torch.softmax(logits, dim=-1)
        shaped = reshape(logits, temperature, top_k, top_p)
    top = torch.topk(raw, shown).indices.tolist()
    candidates = [Candidate(pair.tokenizer.decode([i]), i, float(raw[i]), float(shaped[i]))
                  for i in top]
    return NextTokenResult(pair.name, prompt, temperature, top_k, top_p, candidates,
                           int((shaped > 0).sum())), shaped


def branch(prompt: str, token_id: int, model: str = loaded.CAUSAL, cache_dir=None) -> str:
    """The prompt with one chosen token appended ("branch from here")."""
    pair = loaded.get(model, cache_dir)
    if not 0 <= int(token_id) < len(pair.tokenizer):
        raise InputError(f"no token with id {token_id}")
    return prompt + pair.tokenizer.decode([int(token_id)])


def steps(prompt: str, count: int, model: str = loaded.CAUSAL, temperature: float = 0.0,
          top_k: int = 0, top_p: float = 1.0, seed: int = 0, shown: int = 3,
          cache_dir=None) -> list[NextTokenResult]:
    """Generation one token at a time: each step's candidates and the token the sampler picked
    (the argmax at temperature 0, else a seeded draw from the reshaped distribution)."""
    import torch

    if not 1 <= count <= 64:
        raise InputError(f"steps must be between 1 and 64, got {count}")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        result, shaped = _predict(prompt, model, temperature, top_k, top_p, shown, cache_dir)
        result.chosen = (int(torch.multinomial(shaped, 1, generator=gen)) if temperature
                         else int(torch.argmax(shaped)))
        out.append(result)
        prompt = branch(prompt, result.chosen, model, cache_dir)
    out[-1].final = prompt
    return out


def draw(result: NextTokenResult):
    """Bars: each candidate's probability as trained and after the chosen sampling settings."""
    import numpy as np

    fig, ax = figure(9, 4.6)
    cands = result.candidates
    y = np.arange(len(cands))
    ax.barh(y - 0.2, [c.probability for c in cands], 0.4, label="as trained (T=1, no cut)",
            color="#8fb3e0")
    ax.barh(y + 0.2, [c.shaped for c in cands], 0.4, color="#f0a35e",
            label=f"T={result.temperature:g}, top-k={result.top_k or 'off'}, "
                  f"top-p={result.top_p:g}")
    ax.set_yticks(y, [label(repr(c.token), 24) for c in cands], family="monospace")
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability of being the next token")
    ax.set_ylabel("candidate next token")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(label(f"{result.model}: what comes after “{result.prompt[-60:]}”?", 100),
                 fontsize=10)
    caption(fig, "next-token", f"{result.kept} tokens keep a non-zero probability after reshaping")
    return fig
