"""`python -m assistant` runs the courselab CLI."""

from .cli import main

main()
