"""The Gradio app: chat, prompt lab, corpus and evals tabs over one shared Service."""

from assistant.ui.app import build, launch, parse_auth

__all__ = ["build", "launch", "parse_auth"]
