"""What every `courselab` command shares: settings from options, notes, one-line errors."""

from __future__ import annotations

import click

from assistant.config import Settings
from assistant.errors import CourselabError, InputError

QUIET_ENV = {"ANONYMIZED_TELEMETRY": "False", "TOKENIZERS_PARALLELISM": "false",
             "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
             "TQDM_DISABLE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


class CourselabGroup(click.Group):
    """Turns library errors into one clear line and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CourselabError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


def _settings(ctx: click.Context, **overrides) -> Settings:
    from pydantic import ValidationError

    values = {k: v for k, v in ctx.obj.items() if v is not None}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as e:
        err = e.errors()[0]
        message = err["msg"].removeprefix("Value error, ")
        raise InputError(f"invalid {err['loc'][0]} {err.get('input')!r}: {message}") from None


def _note(message: str) -> None:
    click.echo(message, err=True)
