"""HTTP APIs: an OpenAI-compatible server over the local models."""
