"""SmolLM2 for real (fp32): course questions sharing the system prompt, asked together or
one after another while a batch decodes, get exactly the greedy answers they get alone."""

from __future__ import annotations

import pytest
from conftest import ROOT

pytestmark = pytest.mark.e2e


def test_smollm2_batched_and_joined_answers_equal_alone():
    from assistant.models import get_model
    from assistant.models.bench import ANSWER_OPTIONS, course_prompts
    from assistant.models.options import parse_options

    def fresh():
        return get_model("smollm2-135m-instruct", ROOT / ".cache", device="cpu", precision="fp32")

    opts = parse_options({**ANSWER_OPTIONS, "max_new_tokens": 16})
    model = fresh()
    prompts = [model.render(m) for m in course_prompts(4)]
    alone = []
    for p in prompts:  # each on a cold model: nothing cached, nothing else running
        single = fresh()
        single._loaded = None
        job = single._job(p, opts)
        single.scheduler().complete([job])
        alone.append((job.text, job.output_tokens))
    together = [model._job(p, opts) for p in prompts]
    model.scheduler().complete(together)  # one group prefill after the shared system prompt
    assert [(j.text, j.output_tokens) for j in together] == alone
    engine = model.load().engine
    assert engine.stats["prefix_hits"] == len(prompts) - 1
    long = model._job(prompts[0], parse_options({**ANSWER_OPTIONS, "max_new_tokens": 48,
                                                 "min_new_tokens": 48}))
    model.scheduler().submit([long])
    late = [model._job(p, opts) for p in prompts[1:]]
    model.scheduler().complete(late)  # arrive while the long answer is being written
    assert long.done.wait(120)
    assert [(j.text, j.output_tokens) for j in late] == alone[1:]
