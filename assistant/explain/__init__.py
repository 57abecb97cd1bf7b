"""The Course lab: the course's missing figures drawn live on the local models.

One module per demo (tokens, next_token, attention, fill_mask, architecture,
finetune, embeddings), each a function that returns a result with `to_dict()`
(the numbers) and `figure()` (a matplotlib figure captioned with its course
section). `loaded` keeps one process-wide cache of the models they use;
`catalog` says which demo illustrates which section. Nothing heavy loads at import.
"""

from assistant.explain.catalog import DEMOS, Demo, demos_for_section, lab_link, prefill_text

__all__ = ["DEMOS", "Demo", "demos_for_section", "lab_link", "prefill_text"]
