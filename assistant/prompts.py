"""Prompt templates as validated YAML files in `prompts/`.

A template file declares its name, kind, description, an optional system
message, the f-string template and its variables. Loading refuses anything that
could run code (jinja2, attribute or index access in a field) and any mismatch
between the declared and the used variables, naming the file and the field.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import TemplateError

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
    template_format: Literal["f-string"] = "f-string"

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
        if self.kind == "few-shot" and not self.examples:
            raise ValueError("examples: a few-shot template needs at least one example")

    def chat_prompt(self):
        """The LangChain ChatPromptTemplate for this template (f-string only)."""
        from langchain_core.messages import AIMessage, HumanMessage
        from langchain_core.prompts import ChatPromptTemplate

        messages: list = [("system", self.system)] if self.system else []
        for example in self.examples:  # fixed demonstration turns, not templated again
            messages.append(HumanMessage(self.template.format(**{
                k: v for k, v in example.items() if k != "answer"})))
            messages.append(AIMessage(example["answer"]))
        messages.append(("human", self.template))
        return ChatPromptTemplate.from_messages(messages, template_format="f-string")


def load_template(path: Path) -> Template:
    """Load and validate one template file; any problem is one TemplateError naming the file."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise TemplateError(f"{path}: cannot read ({e.strerror})") from e
    except yaml.YAMLError as e:
        raise TemplateError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: a template file must be a YAML mapping")
    try:
        return Template(**data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'template'}: {err['msg'].removeprefix('Value error, ')}"
            for err in e.errors())
        raise TemplateError(f"{path}: {problems}") from None


def find_template(name: str, prompts_dir: Path) -> Template:
    """A template by name from the prompts folder, or by file path."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return load_template(candidate)
    path = Path(prompts_dir) / f"{name}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in Path(prompts_dir).glob("*.yaml"))
        raise TemplateError(f"unknown template {name!r}; choose one of: {', '.join(names) or 'none'}")
    return load_template(path)
