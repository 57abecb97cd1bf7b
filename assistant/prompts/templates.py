"""Prompt templates as validated YAML files in `prompts/`.

A template file declares its name, kind, description, an optional system
message, the f-string template and its variables. Loading refuses anything that
could run code (jinja2, attribute or index access in a field) and any mismatch
between the declared and the used variables, naming the file and the field.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistant.errors import TemplateError

KINDS = ("zero-shot", "few-shot", "instruction", "chain-of-thought", "citing")


def fields_of(text: str) -> set[str]:
    """The f-string fields of a text; refuses '{x.attr}', '{x[0]}' and conversions.

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
        if conversion or (spec and "{" in spec):
            raise ValueError(f"field {{{name}}} uses a conversion or nested field")
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
        found = re.search(self.answer_pattern, text, flags=re.MULTILINE | re.IGNORECASE)
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
            raise ValueError(f"variables: {detail}")
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
        path = (self.folder or Path(".")) / self.selector.pool
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
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"answer_pattern: not a regular expression ({e})") from None
    if compiled.groups < 1:
        raise ValueError("answer_pattern: needs a group around the answer, e.g. '^Answer:(.*)'")


def _read_pool(path: Path, keys: list[str]) -> list[dict[str, str]]:
    """Examples from a JSONL file, each with exactly `keys`; a bad line is named."""
    import json

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise TemplateError(f"{path}: cannot read the example pool ({e.strerror})") from e
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
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise TemplateError(f"{path}: cannot read ({e.strerror})") from e
    return parse_template(text, str(path), path.parent)


def parse_template(text: str, where: str, folder: Path) -> Template:
    """A template from YAML text; errors start with `where` (a file, or the editor)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise TemplateError(f"{where}: invalid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(data, dict):
        raise TemplateError(f"{where}: a template file must be a YAML mapping")
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


def save_template(text: str, prompts_dir: Path, overwrite: bool = False) -> Path:
    """Validate YAML text and write it as prompts_dir/NAME.yaml, atomically.

    An existing file is only replaced with `overwrite=True` (an explicit confirmation).
    """
    import os

    prompts_dir = Path(prompts_dir)
    template = parse_template(text, "the edited template", prompts_dir)
    path = prompts_dir / f"{template.name}.yaml"
    if path.exists() and not overwrite:
        raise TemplateError(f"{path.name} already exists: confirm to overwrite it, or change `name`")
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


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
