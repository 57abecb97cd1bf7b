"""Prompt templates as validated YAML files in `prompts/`.

A template file declares its name, kind, description, an optional system
message, the f-string template and its variables. Loading refuses anything that
could run code (jinja2, attribute or index access in a field) and any mismatch
between the declared and the used variables, naming the file and the field.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistant.errors import TemplateError
from assistant.files import read_text, yaml_problem

KINDS = ("zero-shot", "few-shot", "instruction", "chain-of-thought", "citing")
VARIABLES = ("context", "question")  # what the chain fills in; nothing else can be rendered
MAX_PATTERN_CHARS = 200
MAX_TEMPLATE_BYTES = 1_000_000  # a template file or an example pool
MAX_ANSWER_SCAN = 4000  # answer_pattern runs on the end of a reply only: a bound on any regex
BACKUPS = ".backups"
KEEP_BACKUPS = 10


def fields_of(text: str) -> set[str]:
    """The f-string fields of a text; refuses '{x.attr}', '{x[0]}', conversions and format
    specs ('{question:>999999999}' would build a gigabyte, '{context:d}' fails at render time).

    >>> sorted(fields_of("Q: {question} C: {context}"))
    ['context', 'question']
    """
    names = set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as e:
        raise ValueError(f"not a valid f-string template: {e}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(f"field {{{name}}} is not a plain name (no attribute or index access)")
        if conversion or spec:
            raise ValueError(f"field {{{name}}} uses a conversion or format spec; write plain "
                             f"{{{name}}}")
        names.add(name)
    return names


class Selector(BaseModel):
    """How a few-shot template picks its examples: all of `examples` (fixed), or the k of a
    pool most similar to the question (LangChain's SemanticSimilarityExampleSelector)."""

    model_config = ConfigDict(extra="forbid")

    by: Literal["fixed", "similarity"] = "fixed"
    k: int = Field(default=2, ge=1, le=10)
    pool: str | None = Field(default=None, pattern=r"^[\w-]+(/[\w-]+)*\.jsonl$",
                             description="JSONL of examples, relative to the template's folder")


class Template(BaseModel):
    """A prompt template file's contents."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    kind: Literal[KINDS]  # type: ignore[valid-type]
    description: str = Field(min_length=1)
    system: str | None = None
    template: str = Field(min_length=1)
    variables: list[str] = Field(min_length=1)
    examples: list[dict[str, str]] = Field(default_factory=list)
    selector: Selector = Field(default_factory=Selector)
    answer_pattern: str | None = Field(
        default=None, description="regex whose first group is the final answer (chain-of-thought)")
    generation: dict[str, Any] = Field(default_factory=dict, description="model options it needs")
    template_format: Literal["f-string"] = "f-string"
    folder: Path | None = Field(default=None, exclude=True)  # where the file is, for `pool`

    @property
    def numbered_context(self) -> bool:
        """Citing templates see the passages numbered [1], [2], ... to cite them."""
        return self.kind == "citing"

    def final_answer(self, text: str) -> str:
        """The answer line of a chain-of-thought reply (the whole reply when there is none)."""
        if not self.answer_pattern:
            return text
        found = answer_regex(self.answer_pattern).search(text[-MAX_ANSWER_SCAN:])
        return found.group(1).strip() if found else text

    @field_validator("template", "system")
    @classmethod
    def _no_code(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.strip():
                raise ValueError("must not be empty")
            fields_of(value)
        return value

    def model_post_init(self, _context) -> None:
        used = fields_of(self.template) | fields_of(self.system or "")
        if used != set(self.variables):
            missing, extra = used - set(self.variables), set(self.variables) - used
            detail = "; ".join(filter(None, [
                missing and f"used but not declared: {', '.join(sorted(missing))}",
                extra and f"declared but not used: {', '.join(sorted(extra))}"]))
            doubled = "{{" in self.template + (self.system or "")
            hint = " (a field is {question}: doubled braces {{ }} are literal text)" if doubled else ""
            raise ValueError(f"variables: {detail}{hint}")
        unknown = set(self.variables) - set(VARIABLES)
        if unknown or "question" not in self.variables:
            raise ValueError(f"variables: only {' and '.join(VARIABLES)} can be filled in, and "
                             f"question is needed (got: {', '.join(map(str, self.variables))})")
        for n, example in enumerate(self.examples, 1):
            if set(example) != {*self.variables, "answer"}:
                raise ValueError(f"examples.{n}: needs exactly the keys "
                                 f"{', '.join([*self.variables, 'answer'])}")
        if self.kind == "few-shot" and not (self.examples or self.selector.pool):
            raise ValueError("examples: a few-shot template needs examples or a selector pool")
        if self.selector.by == "similarity" and not self.selector.pool:
            raise ValueError("selector.pool: similarity selection needs a pool file of examples")
        if self.kind == "chain-of-thought" and not self.answer_pattern:
            raise ValueError("answer_pattern: a chain-of-thought template needs its answer line")
        if self.answer_pattern is not None:
            _check_pattern(self.answer_pattern)
        if self.generation:
            from assistant.models.options import parse_options

            try:
                parse_options(self.generation)
            except Exception as e:
                raise ValueError(f"generation: {e}") from None

    def pool_examples(self) -> list[dict[str, str]]:
        """The examples of the selector's pool file (validated like inline examples)."""
        if not self.selector.pool:
            return []
        folder = self.folder or Path(".")
        path = folder / self.selector.pool
        # subtle: a link could make a template read any file the app can; only real files inside
        inside = [p for p in [path, *path.parents] if p != folder and p.is_relative_to(folder)]
        if any(p.is_symlink() for p in inside) or not path.resolve().is_relative_to(
                folder.resolve()):
            raise TemplateError(f"{path}: the example pool must be a plain file in the template's "
                                "folder, not a link")
        return _read_pool(path, [*self.variables, "answer"])

    def chat_prompt(self, embedder=None):
        """The LangChain ChatPromptTemplate for this template (f-string only).

        Fixed examples become demonstration turns; with `selector.by: similarity` the k pool
        examples nearest the question are chosen per question, which needs the embedder.
        """
        from langchain_core.messages import AIMessage, HumanMessage
        from langchain_core.prompts import ChatPromptTemplate

        messages: list = [("system", self.system)] if self.system else []
        if self.selector.by == "similarity":
            messages.append(self._selected_examples(embedder))
        else:
            for example in self.examples + self.pool_examples():  # not templated again
                messages.append(HumanMessage(self.template.format(**{
                    k: v for k, v in example.items() if k != "answer"})))
                messages.append(AIMessage(example["answer"]))
        messages.append(("human", self.template))
        return ChatPromptTemplate.from_messages(messages, template_format="f-string")

    def _selected_examples(self, embedder):
        from langchain_core.example_selectors import SemanticSimilarityExampleSelector
        from langchain_core.prompts import ChatPromptTemplate, FewShotChatMessagePromptTemplate
        from langchain_core.vectorstores import InMemoryVectorStore

        if embedder is None:
            raise TemplateError(f"template {self.name!r} selects examples by similarity: "
                                "it needs an embedder")
        examples = self.examples + self.pool_examples()
        key = (self.name, id(embedder), self.selector.k, _fingerprint(examples))
        if key not in _SELECTORS:
            _SELECTORS[key] = SemanticSimilarityExampleSelector.from_examples(
                examples, embedder, InMemoryVectorStore, k=self.selector.k, input_keys=["question"])
        example_prompt = ChatPromptTemplate.from_messages(
            [("human", self.template), ("ai", "{answer}")], template_format="f-string")
        return FewShotChatMessagePromptTemplate(example_selector=_SELECTORS[key],
                                                example_prompt=example_prompt,
                                                input_variables=list(self.variables))


_SELECTORS: dict[tuple, object] = {}  # example embeddings, computed once per pool and embedder


def _fingerprint(examples: list[dict]) -> int:
    return hash(tuple(tuple(sorted(e.items())) for e in examples))


def _check_pattern(pattern: str) -> None:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"answer_pattern: longer than {MAX_PATTERN_CHARS} characters")
    compiled = answer_regex(pattern)
    if compiled.groups < 1:
        raise ValueError("answer_pattern: needs a group around the answer, e.g. '^Answer:(.*)'")


def answer_regex(pattern: str):
    """An answer_pattern compiled for any case, ^ and $ at every line, by RE2: linear in the
    reply whatever the pattern (assistant/patterns.py); ValueError for what RE2 refuses."""
    from assistant.patterns import linear

    try:
        return linear(pattern, "mi")
    except ValueError as e:
        raise ValueError(f"answer_pattern: not a regular expression RE2 runs in linear time "
                         f"({e}; backreferences and lookarounds are not allowed)") from None


def _read_pool(path: Path, keys: list[str]) -> list[dict[str, str]]:
    """Examples from a JSONL file, each with exactly `keys`; a bad line is named."""
    import json

    lines = read_text(path, TemplateError, MAX_TEMPLATE_BYTES).splitlines()
    examples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except json.JSONDecodeError as e:
            raise TemplateError(f"{path}:{number}: invalid JSON ({e.msg})") from None
        if not isinstance(example, dict) or set(example) != set(keys) or \
                not all(isinstance(v, str) and v.strip() for v in example.values()):
            raise TemplateError(f"{path}:{number}: an example needs the text keys {', '.join(keys)}")
        examples.append(example)
    if not examples:
        raise TemplateError(f"{path}: the example pool is empty")
    return examples


def load_template(path: Path) -> Template:
    """Load and validate one template file; any problem is one TemplateError naming the file."""
    path = Path(path)
    return parse_template(read_text(path, TemplateError, MAX_TEMPLATE_BYTES), str(path), path.parent)


def parse_template(text: str, where: str, folder: Path) -> Template:
    """A template from YAML text; errors start with `where` (a file, or the editor)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise TemplateError(f"{where}: invalid YAML ({yaml_problem(e)})") from e
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise TemplateError(f"{where}: a template file must be a YAML mapping of field names")
    if "folder" in data:
        raise TemplateError(f"{where}: folder: Extra inputs are not permitted")
    try:
        template = Template(**data, folder=Path(folder))
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'template'}: {err['msg'].removeprefix('Value error, ')}"
            for err in e.errors())
        raise TemplateError(f"{where}: {problems}") from None
    try:
        template.pool_examples()  # a broken pool is an error of this file, now
    except TemplateError as e:
        raise TemplateError(f"{where}: selector.pool: {e}") from None
    return template


def save_template(text: str, prompts_dir: Path, overwrite: bool = False,
                  protected: frozenset[str] | set[str] = frozenset()) -> Path:
    """Validate YAML text and write it as prompts_dir/NAME.yaml, atomically.

    An existing file is only replaced with `overwrite=True` (an explicit confirmation), never
    when its name is `protected`, and the old one is kept in prompts_dir/.backups first.
    """
    prompts_dir = Path(prompts_dir)
    template = parse_template(text, "the edited template", prompts_dir)
    path = prompts_dir / f"{template.name}.yaml"
    if path.exists() or path.is_symlink():
        if template.name in protected:
            raise TemplateError(f"{path.name} is a library template and cannot be replaced from "
                                "here; save your version under another `name`")
        if not overwrite:
            raise TemplateError(f"{path.name} already exists: tick \"Overwrite an existing "
                                "template of the same name\" to replace it, or change `name`")
        _backup(path)
    _write_new(path, text if text.endswith("\n") else text + "\n")
    return path


def _write_new(path: Path, text: str) -> None:
    """Write through a fresh temp file (never following a link someone left), then rename."""
    from assistant.files import write_atomic

    write_atomic(path, text)  # replaces a link at `path` itself, never its target


def _backup(path: Path) -> Path | None:
    """Keep the file about to be replaced in .backups/ (the last KEEP_BACKUPS per name)."""
    import time

    if path.is_symlink() or not path.is_file():
        return None
    folder = path.parent / BACKUPS
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"
    target = folder / f"{path.stem}.{stamp}.yaml"
    _write_new(target, path.read_text(encoding="utf-8"))
    for old in sorted(folder.glob(f"{path.stem}.*.yaml"))[:-KEEP_BACKUPS]:
        old.unlink(missing_ok=True)
    return target


def template_path(name: str, prompts_dir: Path) -> Path:
    """The file of a template named in the prompts folder, or given as a path."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    path = Path(prompts_dir) / f"{name}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in Path(prompts_dir).glob("*.yaml"))
        raise TemplateError(f"unknown template {name!r}; choose one of: {', '.join(names) or 'none'}")
    return path


def find_template(name: str, prompts_dir: Path) -> Template:
    """A template by name from the prompts folder, or by file path."""
    return load_template(template_path(name, prompts_dir))
