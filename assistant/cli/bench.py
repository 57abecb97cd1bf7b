"""`courselab bench`: benchmarks that run a baseline and courselab side by side, in one run."""

from __future__ import annotations

import json

import click

from assistant.cli.common import _settings


@click.group()
def bench() -> None:
    """Benchmarks that run a baseline and courselab side by side."""


DEVICE = click.option("--device", default=None,
                      help="cpu, cuda, cuda:N or mps [default: the top-level --device, else auto]")


@bench.command("generate")
@click.option("--model", default="smollm2-135m-instruct", show_default=True, help="registry name")
@click.option("--random-weights", is_flag=True,
              help="the real architecture with random weights (for machines without weights)")
@click.option("--prompts", default=16, show_default=True, type=click.IntRange(1, 4096),
              help="how many prompts")
@click.option("--new-tokens", default=32, show_default=True, type=click.IntRange(1, 1024),
              help="tokens generated per prompt (fixed, for a fair comparison)")
@DEVICE
@click.pass_context
def bench_generate_command(ctx, model, random_weights, prompts, new_tokens, device) -> None:
    """Generation speed: a naive fp32 generate loop vs the batched path.

    On a GPU machine without weights: courselab bench generate --device cuda --random-weights
    (and --model flan-t5-base).
    """
    from assistant.models.bench import bench_generate

    settings = _settings(ctx)
    bench_generate(model, settings.cache_dir, prompts, new_tokens, random_weights,
                   device or settings.device, echo=click.echo, precision=_precision(ctx))


@bench.command("decode")
@click.option("--model", default="smollm2-135m-instruct", show_default=True, help="registry name")
@click.option("--prompts", default=3, show_default=True, type=click.IntRange(1, 64),
              help="course questions (with their notes) to answer, one at a time")
@click.option("--new-tokens", default=64, show_default=True, type=click.IntRange(1, 1024),
              help="tokens generated per answer (fixed, for a fair comparison)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@DEVICE
@click.pass_context
def bench_decode_command(ctx, model, prompts, new_tokens, as_json, device) -> None:
    """Streaming decode at batch 1: fp32 naive generate vs courselab's default path."""
    from assistant.models.bench import bench_decode

    settings = _settings(ctx)
    result = bench_decode(model, settings.cache_dir, prompts, new_tokens, device or settings.device,
                          _precision(ctx), echo=None if as_json else click.echo)
    if as_json:
        click.echo(json.dumps(result, indent=2))


def _precision(ctx: click.Context) -> str:
    """--precision of the top-level command, else COURSELAB_PRECISION, else auto."""
    import os

    root = ctx.find_root().obj or {}
    return root.get("precision") or os.environ.get("COURSELAB_PRECISION") or "auto"
