"""The prompt lab on the command line: `courselab prompts ...` and `courselab compare`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from assistant.errors import InputError, TemplateError


@click.group()
def prompts() -> None:
    """The prompt template library (YAML files in prompts/)."""


def _prompts_dir(ctx: click.Context) -> Path:
    from assistant.cli.common import _settings

    return _settings(ctx).prompts_dir


@prompts.command("list")
@click.pass_context
def list_command(ctx) -> None:
    """Every template: name, kind and what it is for."""
    from assistant.prompts import load_template

    for path in sorted(_prompts_dir(ctx).glob("*.yaml")):
        try:
            t = load_template(path)
        except TemplateError as e:
            click.echo(f"{path.stem:<20}{'INVALID':<18}{e}")
            continue
        click.echo(f"{t.name:<20}{t.kind:<18}{' '.join(t.description.split())}")


@prompts.command()
@click.argument("name")
@click.pass_context
def show(ctx, name) -> None:
    """Print template NAME's file, after checking it loads."""
    from assistant.prompts import find_template, template_path

    find_template(name, _prompts_dir(ctx))
    click.echo(template_path(name, _prompts_dir(ctx)).read_text(encoding="utf-8"), nl=False)


@prompts.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.pass_context
def validate(ctx, paths) -> None:
    """Check template files (default: all of prompts/); exit 2 when any is invalid."""
    from assistant.prompts import load_template

    files = list(paths) or sorted(_prompts_dir(ctx).glob("*.yaml"))
    bad = 0
    for path in files:
        try:
            t = load_template(path)
            click.echo(f"ok     {path}  ({t.kind})")
        except TemplateError as e:
            bad += 1
            click.echo(f"error: {e}", err=True)
    if bad:
        raise InputError(f"{bad} of {len(files)} template files are invalid")


@prompts.command()
@click.argument("name")
@click.option("--question", "-q", required=True, help="the question to render the prompt for")
@click.option("--model", help="model whose prompt format and tokenizer to use")
@click.option("--k", default=4, show_default=True, type=click.IntRange(1, 50), help="passages to retrieve")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def render(ctx, name, question, model, k, as_json) -> None:
    """Show exactly what MODEL receives for QUESTION with template NAME, and its token count."""
    from assistant.chain.factory import build_assistant
    from assistant.cli.common import _note, _settings

    assistant = build_assistant(_settings(ctx, k=k), model, name, notify=_note)
    prepared = assistant.prepare(question)
    text = assistant.render(prepared)
    tokens, window = assistant.model.count_tokens(text), assistant.model.input_window()
    budget = prepared.budget.to_dict() if prepared.budget else None
    if as_json:
        click.echo(json.dumps({"template": name, "model": assistant.model_name, "prompt": text,
                               "tokens": tokens, "window": window, "budget": budget,
                               "abstains": prepared.abstained}, indent=2))
        return
    click.echo(text)
    click.echo(f"\n-- {name} for {assistant.model_name}: {tokens} tokens of a {window}-token window",
               err=True)
    if budget and budget["dropped"]:
        click.echo(f"-- dropped to fit: {len(budget['dropped'])} passage(s)", err=True)
    if prepared.abstained:
        click.echo("-- the assistant would not call the model: the course does not cover this", err=True)


def _names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise InputError("give at least one name, comma-separated")
    return list(dict.fromkeys(names))


@click.command()
@click.argument("question")
@click.option("--templates", "-t", default="default", show_default=True,
              help="comma-separated template names from prompts/")
@click.option("--models", "-m", help="comma-separated model names [default: the default model]")
@click.option("--k", default=4, show_default=True, type=click.IntRange(1, 50), help="passages to retrieve")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def compare(ctx, question, templates, models, k, as_json) -> None:
    """Answer QUESTION with every template x model pair, on one retrieval."""
    from assistant.chain.factory import load_model, open_retriever
    from assistant.cli.common import _note, _settings
    from assistant.lab import compare as run_compare
    from assistant.prompts import find_template

    settings = _settings(ctx, k=k)
    chosen = [find_template(n, settings.prompts_dir) for n in _names(templates)]
    names = _names(models) if models else [settings.model]
    loaded = {n: load_model(settings, n) for n in names}
    result = run_compare(open_retriever(settings, _note), question, chosen, loaded, k,
                         settings.min_score)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    _print_table(result)


def _print_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.question}  (one retrieval, {result.prepared.retrieve_s:.2f} s)",
                  show_lines=True)
    for column in ("template", "model"):
        table.add_column(column, no_wrap=True)
    table.add_column("answer", ratio=1, min_width=30)
    for column in ("latency", "tokens in/out", "abstained"):
        table.add_column(column, no_wrap=True)
    for c in result.cells:
        a = c.answer
        if c.error or a is None:
            table.add_row(c.template, c.model, f"error: {c.error}", "", "", "")
            continue
        size = a.timings.get("batch_size", 1)
        latency = f"{a.timings.get('generate_s', 0.0):.2f} s" + (f" x{size}" if size > 1 else "")
        table.add_row(c.template, c.model, a.answer, latency,
                      f"{a.tokens.get('input', 0)}/{a.tokens.get('output', 0)}",
                      "yes" if a.abstained else "no")
    console = Console()
    if not console.is_terminal:
        console.width = 160  # piped output: wide enough that answers stay readable
    console.print(table)
    click.echo("latency xN: one batched call for N templates that share generation options")
