"""`python -m assistant` runs the courselab CLI."""

from assistant.cli import main

main()
