"""`courselab corpus`: list and remove the files that were added from the app."""

from __future__ import annotations

import click


@click.group("corpus")
def corpus_group() -> None:
    """Files added to the course from the app."""


@corpus_group.command("added")
@click.pass_context
def added_command(ctx) -> None:
    """List the files added from the app (only these can be removed)."""
    from assistant.cli.common import _settings
    from assistant.corpus.uploads import uploaded_names

    for name in uploaded_names(_settings(ctx).corpus_dir):
        click.echo(name)


@corpus_group.command("remove")
@click.argument("name")
@click.pass_context
def remove_command(ctx, name: str) -> None:
    """Remove NAME, a file added from the app, from the corpus and the index."""
    from assistant.chain.factory import open_index, sync_index
    from assistant.cli.common import _settings
    from assistant.corpus.uploads import remove_upload

    settings = _settings(ctx)
    index = open_index(settings)
    index.count()  # takes the index first: with the app running, nothing is removed
    remove_upload(name, settings.corpus_dir)
    report = sync_index(index, settings)
    click.echo(f"removed {name}: {report.summary()}")
