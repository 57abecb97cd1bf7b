"""One process-wide cache of the models the demos use; each loads once, on first use.

- the encoder: all-MiniLM-L6-v2 as a plain transformers BertModel (eager attention,
  so it can return attention weights; mean pooling gives its sentence embeddings);
- causal models from the registry (SmolLM2, Gemma 3 when installed): the registry's
  own loader, switched to eager attention, one copy shared by every demo;
- a FLAN-T5-base config, randomly initialised on the meta device (shapes only).
Tests put tiny models in with `install()`.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import InputError, ModelError

ENCODER = "all-minilm-l6-v2"
CAUSAL = "smollm2-135m-instruct"
GEMMA = "gemma3-270m"
T5 = "flan-t5-base-random"
CAUSAL_CHOICES = (CAUSAL, GEMMA)
ALIASES = {"minilm": ENCODER, "smollm2": CAUSAL, "gemma3": GEMMA, "gemma": GEMMA, "t5": T5,
           "flan-t5-base": T5}


def resolve(name: str | None, default: str = CAUSAL) -> str:
    """A short name ('minilm', 'smollm2', 'gemma3', 't5') or a full one -> the full name."""
    name = (name or default).strip()
    return ALIASES.get(name.lower(), name)


@dataclass
class Pair:
    """A loaded model and its tokenizer."""

    name: str
    model: Any
    tokenizer: Any
    kind: str  # "encoder", "causal" or "seq2seq"


THREADS = 1  # torch threads for a demo (see compute); the benchmark compares with the default
_lock = threading.RLock()
_cache: dict[str, Pair] = {}


@contextmanager
def compute(threads: int | None = None, train: bool = False):
    """One demo at a time, on one torch thread, without autograd (unless `train`).

    Subtle: on 2 cores shared with other work, a forward pass on 2 torch threads was
    measured 10x slower than on one (threads spin waiting for each other); one thread is
    steady, and a demo's small forward passes gain little from a second one.
    """
    import torch

    with _lock:
        before = torch.get_num_threads()
        torch.set_num_threads(threads or THREADS)
        try:
            with torch.inference_mode(not train):
                yield
        finally:
            torch.set_num_threads(before)


def install(name: str, model, tokenizer, kind: str) -> None:
    """Put a model in the cache under `name` (tests use tiny random models)."""
    with _lock:
        _cache[name] = Pair(name, model, tokenizer, kind)


def clear() -> None:
    with _lock:
        _cache.clear()
        _tokenizers.clear()


def cached(name: str) -> bool:
    return name in _cache


def get(name: str, cache_dir: Path | None = None) -> Pair:
    """The model `name` (encoder, a causal registry name, or the random T5), loaded once."""
    name = resolve(name)
    with _lock:
        if name not in _cache:
            _cache[name] = _load(name, cache_dir)
        return _cache[name]


def encoder_tokenizer(name: str = ENCODER):
    """Only the encoder's tokenizer (no weights): the tokens demo needs nothing more."""
    if name in _cache:
        return _cache[name].tokenizer
    return _tokenizer_for(name)


_TOKENIZER_MODULES = {CAUSAL: "assistant.models.smollm2", GEMMA: "assistant.models.gemma3"}
_tokenizers: dict[str, Any] = {}


def tokenizer(name: str, cache_dir: Path | None = None):
    """A model's tokenizer without its weights (a loaded model's own when there is one)."""
    name = resolve(name)
    if name in _cache:
        return _cache[name].tokenizer
    if name == ENCODER:
        return encoder_tokenizer(name)
    if name not in _TOKENIZER_MODULES:
        return get(name, cache_dir).tokenizer
    with _lock:
        if name not in _tokenizers:
            import importlib

            from transformers import AutoTokenizer

            module = importlib.import_module(_TOKENIZER_MODULES[name])
            folder = module.converted_folder(Path(cache_dir) if cache_dir else _cache_dir())
            _tokenizers[name] = AutoTokenizer.from_pretrained(folder)
        return _tokenizers[name]


def _cache_dir() -> Path:
    from assistant.config import Settings

    return Settings().cache_dir


def available(name: str) -> bool:
    """Can `name` load here (installed weights, or already cached)?"""
    name = resolve(name)
    if name in _cache or name in (ENCODER, T5):
        return True
    from assistant.models import get_spec

    try:
        return bool(get_spec(name).available())
    except ModelError:
        return False


def _load(name: str, cache_dir: Path | None) -> Pair:
    if name == ENCODER:
        return _encoder()
    if name == T5:
        return _random_t5()
    if name not in CAUSAL_CHOICES:
        raise InputError(f"unknown model {name!r} for the lab; choose one of: "
                         f"{', '.join(ALIASES)} (or {', '.join((*CAUSAL_CHOICES, ENCODER, T5))})")
    return _causal(name, cache_dir)



def _tokenizer_for(name: str):
    from transformers import AutoTokenizer

    from assistant.retrieval.embeddings import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(name))


def _encoder() -> Pair:
    from transformers import AutoModel

    from assistant.retrieval.embeddings import resolve_model

    folder = resolve_model(ENCODER)
    tokenizer = _tokenizer_for(ENCODER)
    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    return Pair(ENCODER, model, tokenizer, "encoder")


def _causal(name: str, cache_dir: Path | None) -> Pair:
    from assistant.models import get_model, get_spec

    if not get_spec(name).available():
        raise ModelError(f"{name} is not installed here")
    chat = get_model(name, cache_dir or _cache_dir(), device="cpu")
    if hasattr(chat, "precision"):
        # subtle: the chat may run int4, int8 or bf16 for speed; the lab shows the model's own numbers
        # (and int4 and int8 layers hide their parameters from the counts)
        chat.precision = "fp32"
    loaded = chat.load()
    model = loaded.model
    # subtle: SDPA attention returns no weights; eager gives the same outputs and the weights
    model.set_attn_implementation("eager")
    return Pair(name, model, loaded.tokenizer, "causal")


def _random_t5() -> Pair:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(vocab_size=32128, d_model=768, d_ff=2048, num_layers=12,
                      num_decoder_layers=12, num_heads=12, d_kv=64, feed_forward_proj="gated-gelu",
                      pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    config.tie_word_embeddings = False  # subtle: the constructor argument does not stick in 5.x
    with torch.device("meta"):  # the shapes and counts without allocating 250M random floats
        model = T5ForConditionalGeneration(config)
        # as in FLAN-T5: encoder and decoder share one embedding table, the output head is its own
        model.set_input_embeddings(model.shared)
    return Pair(T5, model, None, "seq2seq")
