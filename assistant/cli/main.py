"""The `courselab` command line: index, retrieve, ask, chat, models.

User errors end with one line on stderr and exit code 2, never a traceback.
Heavy libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from assistant.cli.bench import bench
from assistant.cli.common import QUIET_ENV, CourselabGroup, _note, _settings
from assistant.cli.corpus import corpus_group
from assistant.cli.eval import eval_group
from assistant.cli.explain import explain_group
from assistant.cli.lab import compare, prompts
from assistant.cli.pull import pull_command
from assistant.errors import InputError
from assistant.models.precision import PRECISIONS

BATCH = 16


@click.group(cls=CourselabGroup)
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path),
              help="folder of .md/.txt course files [default: the project's corpus/]")
@click.option("--index-dir", type=click.Path(path_type=Path),
              help="folder of the Chroma index [default: user data folder]")
@click.option("--chroma-url", help="use a Chroma server (http://HOST:PORT) instead of a folder")
@click.option("--device", help="cpu, cuda, cuda:N or mps [default: cuda when present, else cpu]")
@click.option("--precision", type=click.Choice(PRECISIONS, case_sensitive=False),
              help="local model precision [default: auto (COURSELAB_PRECISION): fastest without "
                   "a quality loss on the device]")
@click.version_option(package_name="courselab")
@click.pass_context
def cli(ctx: click.Context, corpus_dir: Path | None, index_dir: Path | None,
        chroma_url: str | None, device: str | None, precision: str | None) -> None:
    """A local course assistant: index the course, retrieve passages, ask questions."""
    ctx.obj = {"corpus_dir": corpus_dir, "index_dir": index_dir, "chroma_url": chroma_url,
               "device": device, "precision": precision.lower() if precision else None}


@cli.command()
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path),
              help="folder of .md/.txt course files")
@click.option("--rebuild", is_flag=True, help="drop the index and embed everything again")
@click.pass_context
def index(ctx: click.Context, corpus_dir: Path | None, rebuild: bool) -> None:
    """Index the corpus folder (incremental: only changed chunks are embedded)."""
    from rich.progress import Progress

    from assistant.chain.factory import open_index, sync_index

    settings = _settings(ctx, corpus_dir=corpus_dir)
    store = open_index(settings)
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("embedding", total=None)
        report = sync_index(store, settings, rebuild=rebuild,
                            progress=lambda done, total: progress.update(task, completed=done,
                                                                         total=total))
    click.echo(f"{report.summary()} ({store.where})")


def _questions(question: str | None, batch: Path | None) -> list:
    from assistant.chain import check_question
    from assistant.datasets import read_rows

    if question is None and batch is None:
        raise InputError("give a QUESTION, or --batch FILE.jsonl for many")
    if question is not None and batch is not None:
        raise InputError("give either a QUESTION or --batch FILE.jsonl, not both")
    if batch is None:
        return [check_question(question or "")]
    rows = read_rows(batch, strict=False)
    for row in rows:
        check_question(row.user_input)
    return rows


@cli.command()
@click.argument("question", required=False)
@click.option("--k", default=4, show_default=True, type=click.IntRange(1, 50),
              help="how many chunks to return")
@click.option("--mode", type=click.Choice(["hybrid", "dense"]), default="hybrid",
              show_default=True, help="dense vectors fused with BM25, or dense only")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of text")
@click.option("--batch", type=click.Path(path_type=Path),
              help="JSONL file with one {'user_input': ...} per line; prints JSON lines")
@click.pass_context
def retrieve(ctx, question, k, mode, as_json, batch) -> None:
    """Show the course chunks that best match QUESTION."""
    from assistant.chain.factory import open_retriever

    items = _questions(question, batch)
    retriever = open_retriever(_settings(ctx, k=k, retrieval_mode=mode), notify=_note)
    if batch:
        for row in items:
            hits = [h.to_dict() for h in retriever.search(row.user_input, k)]
            click.echo(json.dumps({"id": row.id, "user_input": row.user_input, "hits": hits}))
        return
    hits = retriever.search(items[0], k)
    if as_json:
        click.echo(json.dumps([h.to_dict() for h in hits], indent=2))
        return
    for h in hits:
        click.echo(f"[{h.rank}] {h.section}  (score {h.score:.3f}, {h.source})")
        click.echo("    " + h.text.replace("\n", "\n    ") + "\n")


def _model_options(max_new_tokens: int | None) -> dict:
    return {} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}


def _print_sources(answer) -> None:
    title = "Closest sections:" if answer.abstained else "Sources:"
    click.echo(f"\n{title}")
    for n, h in enumerate(answer.sources, 1):
        click.echo(f"  [{n}] {h.section}  (score {h.score:.3f}, {h.source})")


def _stream_answer(assistant, question: str):
    """The course's quote first (before the model starts), the model's words under it, then
    whether the course supports them, and the sources."""
    from assistant.chain import Answer, Prepared

    answer, streaming, quoted = None, False, False
    for piece in assistant.stream(question):
        if isinstance(piece, Prepared):
            quoted = not piece.abstained
            for q in piece.quote if quoted else []:
                click.echo(f"The course says ({q.section}):\n  {q.text}")
        elif isinstance(piece, Answer):
            answer = piece
        elif piece and (assistant.generates or not quoted):  # the quote is not printed twice
            if not streaming and quoted:  # the model's words, under the course's
                click.echo("Model: ", nl=False)
            streaming = True
            click.echo(piece, nl=False)
    click.echo()
    _print_support(answer)
    _print_sources(answer)
    return answer


def _print_support(answer) -> None:
    """Why the course's words, not the model's, are what to read (when a model ran)."""
    if answer.support is None or answer.lead_from != "quote" or not answer.prompt:
        return
    if answer.support.verdict == "supported":
        click.echo("The model's answer does not say what the course says: read the course's "
                   "words above.")
        return
    claims = ", ".join(answer.support.unsupported)
    click.echo(f"Not supported by the course ({answer.support.verdict}"
               f"{': ' + claims if claims else ''}): read the course's words above.")


@cli.command()
@click.argument("question", required=False)
@click.option("--model", help="model name from `courselab models` [default: smollm2-135m-instruct]")
@click.option("--template", default="default", show_default=True,
              help="prompt template name in prompts/ (or a .yaml path)")
@click.option("--k", default=4, show_default=True, type=click.IntRange(1, 50),
              help="how many chunks to retrieve")
@click.option("--max-new-tokens", type=int, help="longest answer in tokens")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--batch", type=click.Path(path_type=Path),
              help="JSONL file with one {'user_input': ...} per line; prints JSON lines")
@click.pass_context
def ask(ctx, question, model, template, k, max_new_tokens, as_json, batch) -> None:
    """Answer QUESTION from the course, streaming, then list the sources."""
    from assistant.chain.factory import build_assistant

    items = _questions(question, batch)
    assistant = build_assistant(_settings(ctx, k=k), model, template, notify=_note,
                                options=_model_options(max_new_tokens))
    if batch:
        for start in range(0, len(items), BATCH):
            group = items[start:start + BATCH]
            for row, ans in zip(group, assistant.batch([r.user_input for r in group])):
                click.echo(json.dumps({"id": row.id, "user_input": row.user_input,
                                       **ans.to_dict()}))
        return
    if as_json:
        click.echo(json.dumps(assistant.answer(items[0]).to_dict(), indent=2))
        return
    _stream_answer(assistant, items[0])


@cli.command()
@click.option("--model", help="model name from `courselab models`")
@click.option("--template", default="default", show_default=True, help="prompt template name")
@click.option("--k", default=4, show_default=True, type=click.IntRange(1, 50),
              help="how many chunks to retrieve")
@click.pass_context
def chat(ctx, model, template, k) -> None:
    """A terminal chat over the course (empty line or Ctrl-D to quit). A follow-up ("and how
    many parameters does it have?") is searched with the subject of the questions before it,
    as in the app."""
    from assistant.chain.factory import build_assistant
    from assistant.chain.followup import rewrite

    assistant = build_assistant(_settings(ctx, k=k), model, template, notify=_note)
    click.echo("Ask about the course. An empty line or Ctrl-D quits.")
    earlier: list[str] = []  # what was searched, oldest first
    while True:
        try:
            question = input("\nyou> ").strip()
        except EOFError:
            break
        if not question:
            break
        query = rewrite(question, earlier)
        if query != question:
            click.echo(f"(searched for: {query})")
        click.echo("assistant> ", nl=False)
        try:
            _stream_answer(assistant, query)
        except InputError as e:
            click.echo(f"error: {e}", err=True)
            continue
        earlier.append(query)


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List the models --model accepts (also hf:<hub id or folder>); `models pull NAME`
    downloads one."""
    if ctx.invoked_subcommand:
        return
    from assistant.models import MODELS
    from assistant.models.hf import pick_device

    device = pick_device()[0]
    rows = [{**spec.to_dict(), "device": device} for spec in MODELS.values()
            if spec.name != "fake"]  # the fake model is for tests: usable, never listed
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'name':<24}{'kind':<11}{'weights':<9}{'window':>7}  {'prompt':<14}{'device':<7}source")
    for r in rows:
        weights = "present" if r["present"] else "missing"
        click.echo(f"{r['name']:<24}{r['kind']:<11}{weights:<9}{r['context_window']:>7}  "
                   f"{r['prompt_format']:<14}{r['device']:<7}{r['source']}")
    for r in rows:
        if r.get("terms"):
            click.echo(f"\n{r['name']}: {r['description']}")
    click.echo("\nMissing weights: courselab models pull NAME (needs internet once)")
    click.echo("Any other checkpoint: --model hf:<hub id or local folder>")


models.add_command(pull_command)


@cli.command("serve-api")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind (beyond loopback: set --api-key)")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535),
              help="port to listen on")
@click.option("--model", "models_", multiple=True,
              help="model to serve (repeatable; the first also answers for courselab/<template>) "
                   "[default: smollm2-135m-instruct]")
@click.option("--api-key", envvar="COURSELAB_API_KEY", show_envvar=True,
              help="require this key as 'Authorization: Bearer KEY' (better through the variable)")
@click.pass_context
def serve_api(ctx, host, port, models_, api_key) -> None:
    """Serve local models and the course assistant (courselab/<template>) through an
    OpenAI-compatible API (/v1/models, /v1/chat/completions)."""
    import ipaddress

    import uvicorn

    from assistant.api.backends import ModelPool
    from assistant.api.openai_server import create_app
    from assistant.models import get_spec

    settings = _settings(ctx)
    names = list(dict.fromkeys(models_)) or [settings.model]
    for name in names:
        if get_spec(name).kind == "extractive":  # unknown names fail before the server starts
            raise InputError(f"serve-api serves models that generate; {name!r} only quotes the "
                             "course: choose another --model")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        guard = "API key required" if api_key else "NO API KEY: anyone who can reach it can use it"
        _note(f"warning: serve-api is bound to {host}, beyond this machine ({guard})")
    if api_key and ctx.get_parameter_source("api_key") == click.core.ParameterSource.COMMANDLINE:
        _note("warning: --api-key on the command line shows in `ps`; prefer COURSELAB_API_KEY")
    pool = ModelPool(names, settings)
    pool.check()  # weights that are not here: one error now, not a server whose answers all fail
    _note(f"serving {', '.join(pool.served())} at http://{host}:{port}/v1")
    uvicorn.run(create_app(pool, api_key or None), host=host, port=port, log_level="warning")


@cli.command("app")
@click.option("--host", envvar="COURSELAB_HOST", default="127.0.0.1", show_default=True,
              help="address to bind (0.0.0.0 to share on a network: needs a login)")
@click.option("--port", envvar="COURSELAB_PORT", default=7860, show_default=True,
              type=click.IntRange(1, 65535), help="port to listen on")
@click.option("--auth", envvar="COURSELAB_AUTH",
              help="require a login USER:PASSWORD; from the COURSELAB_AUTH variable only (a "
                   "command line shows in `ps`)")
@click.option("--auth-file", type=click.Path(path_type=Path, dir_okay=False),
              help="require a login: a file (mode 600) holding USER:PASSWORD")
@click.option("--no-auth", "allow_open", is_flag=True,
              help="allow serving beyond this machine without a login")
@click.option("--model", help="default model [default: smollm2-135m-instruct]")
@click.option("--allow-model", "allowed", multiple=True,
              help="another model visitors may choose, e.g. hf:FOLDER or openai:M@URL (repeatable; "
                   "registry models whose weights are here are always offered)")
@click.option("--template", default="default", show_default=True, help="default prompt template")
@click.pass_context
def app_command(ctx, host, port, auth, auth_file, allow_open, model, allowed, template) -> None:
    """Open the course assistant in the browser (a Gradio app)."""
    from click.core import ParameterSource

    from assistant.config import data_home
    from assistant.corpus import corpus_files
    from assistant.service import Service
    from assistant.ui import launch, parse_auth
    from assistant.ui.app import check_exposure, read_auth_file

    if auth and ctx.get_parameter_source("auth") == ParameterSource.COMMANDLINE:
        raise InputError("--auth on the command line shows the password to every user of this "
                         "machine (ps); set COURSELAB_AUTH=USER:PASSWORD or use --auth-file")
    login = read_auth_file(auth_file) if auth_file else parse_auth(auth)
    warning = check_exposure(host, login, allow_open)
    if warning:
        _note(warning)
    settings = _settings(ctx)
    corpus_files(settings.corpus_dir)  # a missing corpus is an error now, not a page that fails
    service = Service(settings, model, template, allowed_models=list(allowed))
    # a default model whose weights are not here: one error now, not a page where every answer
    # fails (building it checks the weights; they load in the background)
    service.model(service.default_model)
    demo = launch(service, host, port, login, secret_dir=data_home(), allow_open=allow_open)
    click.echo(f"courselab app at http://{host}:{port} (the index and model load in the background;"
               " Ctrl-C stops it)", err=True)
    try:
        demo.block_thread()
    finally:
        demo.close()


for command in (prompts, compare, eval_group, corpus_group, bench):
    cli.add_command(command)
cli.add_command(explain_group)


def main(argv: list[str] | None = None) -> None:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    handler = logging.StreamHandler()  # one-time notices (model conversion) go to stderr
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("courselab")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    cli(args=argv, prog_name="courselab")
