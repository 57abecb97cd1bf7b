"""Models from the Hugging Face hub or a local folder: presence checks and loaders.

A hub model whose weights are not on this machine fails fast with one sentence,
never a hang on a network that is not there; a folder that does not exist is named
as such, not passed to the hub as a malformed repo id.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from assistant.errors import ModelError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
# what the hub accepts as a repo id: 'name' or 'owner/name', no '--' or '..', 96 chars at most
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")


def is_local(source: str) -> bool:
    return Path(source).expanduser().is_dir()


def is_repo_id(source: str) -> bool:
    """True for 'google/flan-t5-base'; False for '/path/to/checkpoint', './nope', '~/x'."""
    return (_REPO_ID.fullmatch(source) is not None and "--" not in source and ".." not in source
            and not source.endswith(".") and len(source) <= 96)


def check_source(source: str) -> None:
    """A folder must exist; anything else must be a well-formed hub id."""
    if is_local(source):
        return
    if not is_repo_id(source):
        raise ModelError(f"model folder not found: {source} (hf: takes a folder that exists or "
                         "a hub id such as google/flan-t5-base)")


def weights_present(source: str) -> bool:
    """True when the weights are in a local folder or already in the hub cache."""
    if is_local(source):
        folder = Path(source).expanduser()
        return (folder / "config.json").is_file() and any((folder / f).exists() for f in WEIGHT_FILES)
    if not is_repo_id(source):
        return False
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(source, "config.json"), str):
        return False
    return any(isinstance(try_to_load_from_cache(source, f), str) for f in WEIGHT_FILES)


def not_present(source: str) -> ModelError:
    return ModelError(f"the weights of {source!r} are not on this machine and the hub cannot be "
                      "reached (offline); on a machine with internet, `courselab models pull NAME` "
                      "fetches a registry model once, or pass a local folder with --model hf:FOLDER")


def require(source: str) -> None:
    """Fail now, in one sentence, when the weights are absent and the hub is unreachable."""
    check_source(source)
    if weights_present(source):
        return
    if is_local(source):
        raise ModelError(f"{source} has no config.json and model weights")
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not _hub_reachable():
        raise not_present(source)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connect to the hub (huggingface_hub itself retries for about a minute)."""
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def read_kind(source: str) -> str:
    """'seq2seq' or 'causal', from the checkpoint's config (is_encoder_decoder)."""
    require(source)
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source, local_files_only=_offline(source))
    except OSError as e:
        raise not_present(source) if not is_local(source) else ModelError(
            f"{source} is not a transformers model folder ({e})") from e
    return "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"


def loader(source: str, kind: str):
    """A loader for HFChatModel: (device, dtype) -> (model, tokenizer)."""

    def load(device, dtype):
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        auto = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
        offline = _offline(source)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
            model = auto.from_pretrained(source, dtype=dtype, local_files_only=offline)
        except OSError as e:
            if not is_local(source):
                raise not_present(source) from e
            raise ModelError(f"cannot load the model folder {source}: {e}") from e
        return model.to(device), tokenizer

    return load


def _offline(source: str) -> bool:
    """Use only local files when the weights are here or the user asked for offline mode."""
    return is_local(source) or weights_present(source) or os.environ.get("HF_HUB_OFFLINE") == "1"
