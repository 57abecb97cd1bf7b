"""courselab: a local course assistant and prompt-engineering lab built on LangChain.

Heavy libraries (torch, transformers, chromadb) are imported lazily inside the
functions that need them, so `import assistant` and the CLI start fast.
"""

__version__ = "0.1.0"
