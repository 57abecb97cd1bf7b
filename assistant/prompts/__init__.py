"""Prompt templates: validated YAML files rendered as LangChain chat prompts."""

from assistant.prompts.templates import (
    Template,
    TemplateError,
    find_template,
    load_template,
    parse_template,
    save_template,
    template_path,
)

__all__ = ["Template", "TemplateError", "find_template", "load_template", "parse_template",
           "save_template", "template_path"]
