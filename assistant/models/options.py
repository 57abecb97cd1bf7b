"""Generation options: validated, with unknown names rejected (a typo is an error)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.errors import OptionsError


class GenerationOptions(BaseModel):
    """How a local model generates. temperature 0 means greedy decoding."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(96, ge=1, le=4096, description="most tokens to generate")
    min_new_tokens: int = Field(0, ge=0, le=4096, description="fewest tokens (fixes lengths in benchmarks)")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling mass")
    repetition_penalty: float = Field(1.0, ge=1.0, le=2.0,
                                      description="CTRL-style penalty on repeated tokens")
    no_repeat_ngram_size: int = Field(0, ge=0, le=20,
                                      description="ban repeating n-grams of the answer (0: off)")
    seed: int | None = Field(None, description="sampling seed (ignored when greedy)")
    stop: tuple[str, ...] = Field((), description="strings that end the answer")


def parse_options(values: dict | None = None, base: GenerationOptions | None = None
                  ) -> GenerationOptions:
    """Validate option values on top of `base`; one OptionsError names every bad field.

    >>> parse_options({"max_new_tokens": 8}).max_new_tokens
    8
    """
    merged = {**(base.model_dump() if base else {}), **(values or {})}
    try:
        return GenerationOptions(**merged)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'options'}: {err['msg']}" for err in e.errors())
        raise OptionsError(f"invalid generation options: {problems}") from None
