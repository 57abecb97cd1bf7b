"""Errors raised for anything a user or their data can trigger.

The CLI turns every `CourselabError` into one line on stderr and exit code 2.
"""


class CourselabError(Exception):
    """Base class: a problem the user can fix, described in one sentence."""


class InputError(CourselabError):
    """A question, option or argument that cannot be used as given."""


class CorpusError(CourselabError):
    """The corpus folder is missing, empty or unreadable."""


class IndexStoreError(CourselabError):
    """The vector index is unreadable, incompatible or unreachable."""


class ModelError(CourselabError):
    """A model could not be found, loaded or run."""


class UnknownModelError(ModelError):
    """A model name that is not in the registry."""


class OptionsError(ModelError):
    """Generation options that are unknown or out of range."""


class TemplateError(CourselabError):
    """A prompt template file that is missing or invalid."""
