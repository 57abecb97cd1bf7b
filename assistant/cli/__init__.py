"""The `courselab` command line."""

from assistant.cli.main import cli, main

__all__ = ["cli", "main"]
