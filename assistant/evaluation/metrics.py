"""Metrics: small named functions with one result shape, {score, pass, reason}.

A metric returns None as its score when it does not apply (no reference, no key
facts); such items are left out of that metric's mean. A metric that cannot be
computed (a judge that answered garbage) raises MetricError: it is reported as an
error, never counted as a failure. A down-voted row whose right answer nobody has
written yet (`metadata.needs_reference`) is skipped by every metric that compares
with a reference: a wrong answer is not an unanswerable question.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from assistant.datasets import Row
from assistant.errors import CourselabError
from assistant.text import contains_context, has_key_facts, keywords


class MetricError(CourselabError):
    """A metric could not be computed for an item."""


@dataclass
class Sample:
    """What the metrics see of one result."""

    row: Row
    answer: str = ""
    abstained: bool = False
    context: str = ""  # the text the model saw
    hits: list[dict] = field(default_factory=list)  # retrieved, best first: section, text, chunk_id
    latency_s: float = 0.0
    embed: Callable[[list[str]], list[list[float]]] | None = None
    judge: Callable[[Sample], str] | None = None
    lead: str = ""  # what the student reads first (the answer, the quote or the abstention)
    support: str | None = None  # the verdict on the answer: supported, partial, unsupported


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[Sample, dict], tuple[float | None, str]]
    threshold: float
    higher_is_better: bool = True
    retrieval: bool = False  # computed from the hits alone (also in --retrieval-only runs)
    binary: bool = False  # scores are 0 or 1 (compared with McNemar's test)
    description: str = ""
    uses_reference: bool = False  # compares with the reference or reference contexts

    def evaluate(self, sample: Sample, args: dict | None = None, threshold: float | None = None) -> dict:
        if self.uses_reference and awaits_reference(sample.row):
            return {"score": None, "pass": None, "reason": "needs a reference (a down-voted answer)"}
        score, reason = self.fn(sample, args or {})
        if score is None:
            return {"score": None, "pass": None, "reason": reason}
        limit = self.threshold if threshold is None else threshold
        passed = score >= limit if self.higher_is_better else score <= limit
        return {"score": round(float(score), 4), "pass": bool(passed), "reason": reason}


def awaits_reference(row: Row) -> bool:
    """A down-voted row whose right answer is not written yet: no truth to compare with."""
    return row.reference is None and bool(row.metadata.get("needs_reference"))


def normalise(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation or articles, single spaces."""
    text = text.lower()
    text = "".join(c for c in text if c not in string.punctuation)
    return " ".join(w for w in text.split() if w not in {"a", "an", "the"})


def exact_match(s: Sample, args: dict):
    if s.row.reference is None:
        return None, "no reference"
    same = normalise(s.answer) == normalise(s.row.reference)
    return float(same), "matches the reference" if same else "differs from the reference"


def token_f1(s: Sample, args: dict):
    """SQuAD token F1 between answer and reference."""
    if s.row.reference is None:
        return None, "no reference"
    pred, ref = normalise(s.answer).split(), normalise(s.row.reference).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or not common:
        return 0.0, "no token in common"
    p, r = common / len(pred), common / len(ref)
    return 2 * p * r / (p + r), f"precision {p:.2f}, recall {r:.2f}"


def rouge_l(s: Sample, args: dict):
    if s.row.reference is None:
        return None, "no reference"
    from rouge_score import rouge_scorer

    score = rouge_scorer.RougeScorer(["rougeL"]).score(s.row.reference, s.answer)["rougeL"]
    return score.fmeasure, f"longest common subsequence F {score.fmeasure:.2f}"


def key_facts(s: Sample, args: dict):
    """Every key fact of the item (metadata.key_facts, alternatives split by '|') is in the answer."""
    return _facts_in(s.answer, s.row.key_facts, "present")


def lead_key_facts(s: Sample, args: dict):
    """Every key fact is in what the student reads first (the answer, the quote or the abstention)."""
    return _facts_in(s.lead, s.row.key_facts, "lead")


def _facts_in(text: str, facts: list[str], verb: str):
    if not facts:
        return None, "no key facts"
    missing = [f for f in facts if not has_key_facts(text, [f])]
    return float(not missing), f"all key facts {verb}" if not missing else f"missing: {'; '.join(missing)}"


def supported(s: Sample, args: dict):
    """The passages the model saw support its answer (the grounding check's verdict)."""
    if s.abstained or s.support is None:
        return None, "no model answer to check"
    return float(s.support == "supported"), f"the answer is {s.support}"


def regex(s: Sample, args: dict):
    """The answer matches args.pattern (case-insensitive)."""
    pattern = args.get("pattern")
    if not pattern:
        raise MetricError("the regex metric needs args.pattern")
    return _search(pattern, s.answer, ignore_case=True)


def _search(pattern: str, text: str, ignore_case: bool = False):
    """(1.0 or 0.0, reason). RE2 first: linear in the answer whatever the pattern
    (assistant/patterns.py); a pattern it does not run (a lookaround or backreference, which
    JavaScript's regexes have) runs on `regex` with a time limit, so a catastrophic pattern
    from a suite or config is an error, never a hung run."""
    from assistant.patterns import linear

    try:
        found = linear(pattern, "i" if ignore_case else "").search(text)
    except ValueError:
        found = _search_limited(pattern, text, ignore_case)
    return float(bool(found)), f"matches {pattern!r}" if found else f"no match for {pattern!r}"


def _search_limited(pattern: str, text: str, ignore_case: bool):
    import regex

    try:
        return regex.search(pattern, text, regex.IGNORECASE if ignore_case else 0,
                            timeout=REGEX_TIMEOUT_S)
    except TimeoutError:
        raise MetricError(f"regex {pattern[:60]!r} took over {REGEX_TIMEOUT_S} s") from None
    except regex.error as e:
        raise MetricError(f"invalid regex {pattern[:60]!r}: {e}") from None


def semantic_similarity(s: Sample, args: dict):
    """Cosine similarity of answer and reference embeddings (the index's embedder)."""
    if s.row.reference is None:
        return None, "no reference"
    if not s.answer.strip():
        return 0.0, "empty answer"
    from assistant.text import cosine

    a, b = s.embed([s.answer, s.row.reference])
    value = cosine(a, b)
    return value, f"cosine {value:.2f}"


def _first_relevant(s: Sample) -> int | None:
    for rank, hit in enumerate(s.hits, 1):
        if contains_context(hit["text"], s.row.reference_contexts):
            return rank
    return None


def hit_at_k(s: Sample, args: dict):
    if not s.row.reference_contexts:
        return None, "no reference contexts"
    rank = _first_relevant(s)
    return float(rank is not None), f"first relevant at rank {rank}" if rank else "not retrieved"


def mrr(s: Sample, args: dict):
    if not s.row.reference_contexts:
        return None, "no reference contexts"
    rank = _first_relevant(s)
    return (1.0 / rank if rank else 0.0), f"rank {rank}" if rank else "not retrieved"


def abstention(s: Sample, args: dict):
    """Abstain exactly on the items without a reference."""
    should = s.row.reference is None
    right = s.abstained == should
    verb = "abstained" if s.abstained else "answered"
    return float(right), f"{verb}, {'correct' if right else 'wrong'}"


def groundedness(s: Sample, args: dict):
    """The share of the answer's content words that occur in the context the model saw."""
    if s.abstained:
        return None, "abstained"
    words = set(keywords(s.answer))
    if not words:
        return None, "no content words"
    seen = set(keywords(s.context))
    supported = len(words & seen) / len(words)
    unsupported = sorted(words - seen)[:5]
    return supported, "all words in the context" if not unsupported else f"not in context: {unsupported}"


def answer_length(s: Sample, args: dict):
    n = len(s.answer.split())
    return float(n), f"{n} words"


def latency(s: Sample, args: dict):
    return s.latency_s, f"{s.latency_s:.2f} s"


def judge(s: Sample, args: dict):
    """A model grades the answer 1-5 with the prompt in args.prompt; mapped to 0-1."""
    if s.judge is None:
        raise MetricError("the judge metric needs args.model and args.prompt")
    reply = s.judge(s)
    found = re.search(r"\b([1-5])\b", reply)
    if not found:
        raise MetricError(f"the judge gave no grade from 1 to 5: {reply[:80]!r}")
    grade = int(found.group(1))
    return (grade - 1) / 4, f"grade {grade}/5"


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("exact_match", exact_match, 1.0, binary=True, uses_reference=True,
           description="answer equals the reference"),
    Metric("token_f1", token_f1, 0.5, uses_reference=True,
           description="SQuAD token F1 with the reference"),
    Metric("rouge_l", rouge_l, 0.3, uses_reference=True, description="ROUGE-L F with the reference"),
    Metric("key_facts", key_facts, 1.0, binary=True, description="every key fact in the answer"),
    Metric("lead_key_facts", lead_key_facts, 1.0, binary=True,
           description="every key fact in what the student reads first"),
    Metric("supported", supported, 1.0, binary=True,
           description="the passages the model saw support its answer"),
    Metric("regex", regex, 1.0, binary=True, description="the answer matches a pattern"),
    Metric("semantic_similarity", semantic_similarity, 0.6, uses_reference=True,
           description="embedding cosine of answer and reference"),
    Metric("hit_at_k", hit_at_k, 1.0, retrieval=True, binary=True, uses_reference=True,
           description="a reference passage is among the k retrieved"),
    Metric("mrr", mrr, 0.5, retrieval=True, uses_reference=True,
           description="1 / rank of the first reference passage"),
    Metric("abstention", abstention, 1.0, binary=True, uses_reference=True,
           description="abstained exactly when there is no reference"),
    Metric("groundedness", groundedness, 0.7,
           description="share of answer words found in the context the model saw"),
    Metric("answer_length", answer_length, 60, higher_is_better=False, description="words"),
    Metric("latency", latency, 10.0, higher_is_better=False, description="seconds per answer"),
    Metric("judge", judge, 0.5, uses_reference=True, description="a model's 1-5 grade, as 0-1"),
]}


# --- promptfoo's assertion types (evaluation/promptfoo.py) -------------------------------------
# Each takes the assertion's `value` in args; a `not-` form inverts the verdict (see `assertion`).
REGEX_TIMEOUT_S = 1.0  # a config's pattern runs on model output: bounded, never a hang


def _values(args: dict) -> list[str]:
    """A list value, or a comma-separated string as promptfoo splits it."""
    value = args.get("value")
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    raise MetricError(f"{args.get('type', 'this assertion')} needs a value (a list or a string)")


def _text(args: dict) -> str:
    value = args.get("value")
    if value is None or isinstance(value, (list, dict)):
        raise MetricError(f"{args.get('type', 'this assertion')} needs a text value")
    return str(value)


def _fold(text: str, args: dict) -> str:
    return text.lower() if args.get("ignore_case") else text


def pf_equals(s: Sample, args: dict):
    value = args.get("value")
    if isinstance(value, (dict, list)):
        import json

        try:
            same = json.loads(s.answer) == value
        except ValueError:
            same = False
    else:
        same = s.answer == str(value)
    return float(same), "output equals the value" if same else "output differs from the value"


def pf_contains(s: Sample, args: dict):
    value = _text(args)
    found = _fold(value, args) in _fold(s.answer, args)
    return float(found), f"output {'contains' if found else 'does not contain'} {value!r}"


def pf_contains_any(s: Sample, args: dict):
    values = _values(args)
    hits = [v for v in values if _fold(v, args) in _fold(s.answer, args)]
    return float(bool(hits)), f"contains {hits[0]!r}" if hits else f"contains none of {values}"


def pf_contains_all(s: Sample, args: dict):
    missing = [v for v in _values(args) if _fold(v, args) not in _fold(s.answer, args)]
    return float(not missing), "contains every value" if not missing else f"missing {missing}"


def pf_starts_with(s: Sample, args: dict):
    value = _text(args)
    ok = s.answer.startswith(value)
    return float(ok), f"output {'starts' if ok else 'does not start'} with {value!r}"


def pf_regex(s: Sample, args: dict):
    """JavaScript-style pattern (no inline flags), run with a time limit."""
    return _search(_text(args), s.answer)


def pf_similar(s: Sample, args: dict):
    """Embedding cosine of output and value (the index's embedder; promptfoo's default 0.75)."""
    if not s.answer.strip():
        return 0.0, "empty output"
    from assistant.text import cosine

    a, b = s.embed([s.answer, _text(args)])
    value = cosine(a, b)
    return value, f"cosine {value:.2f}"


def pf_latency(s: Sample, args: dict):
    """Milliseconds of the call; promptfoo's `threshold` is the ceiling in ms."""
    ms = s.latency_s * 1000
    return ms, f"{ms:.0f} ms"


def context_recall(s: Sample, args: dict):
    """The share of the value's content words (the expected answer) found in the context."""
    expected = set(keywords(_text(args)))
    if not s.context:
        raise MetricError("context-recall needs a context: a `context` var or a courselab/ provider")
    if not expected:
        return None, "no content words in the value"
    found = expected & set(keywords(s.context))
    return len(found) / len(expected), f"{len(found)}/{len(expected)} expected words in the context"


def context_faithfulness(s: Sample, args: dict):
    """groundedness (the share of the output's words found in the context), as promptfoo names it."""
    if not s.context:
        raise MetricError("context-faithfulness needs a context: a `context` var or a courselab/ "
                          "provider")
    return groundedness(s, args)


_PASS = 1.0  # deterministic assertions score 1 or 0
ASSERTIONS: dict[str, tuple[Metric, dict]] = {
    "equals": (Metric("equals", pf_equals, _PASS, binary=True), {}),
    "contains": (Metric("contains", pf_contains, _PASS, binary=True), {}),
    "icontains": (Metric("icontains", pf_contains, _PASS, binary=True), {"ignore_case": True}),
    "contains-any": (Metric("contains-any", pf_contains_any, _PASS, binary=True), {}),
    "icontains-any": (Metric("icontains-any", pf_contains_any, _PASS, binary=True),
                      {"ignore_case": True}),
    "contains-all": (Metric("contains-all", pf_contains_all, _PASS, binary=True), {}),
    "icontains-all": (Metric("icontains-all", pf_contains_all, _PASS, binary=True),
                      {"ignore_case": True}),
    "starts-with": (Metric("starts-with", pf_starts_with, _PASS, binary=True), {}),
    "regex": (Metric("regex", pf_regex, _PASS, binary=True), {}),
    "similar": (Metric("similar", pf_similar, 0.75), {}),
    "latency": (Metric("latency", pf_latency, float("inf"), higher_is_better=False), {}),
    "llm-rubric": (Metric("llm-rubric", judge, 0.5), {}),
    "context-faithfulness": (Metric("context-faithfulness", context_faithfulness, 0.0), {}),
    "context-recall": (Metric("context-recall", context_recall, 0.0), {}),
}


def assertion(kind: str, sample: Sample, value, threshold: float | None = None) -> dict:
    """One promptfoo assertion as {score, pass, reason}; 'not-X' inverts X's verdict.

    >>> assertion("not-icontains", Sample(Row(user_input="q"), answer="Hello"), "hello")["pass"]
    False
    """
    negate = kind.startswith("not-")
    metric, preset = ASSERTIONS[kind.removeprefix("not-")]
    result = metric.evaluate(sample, {**preset, "value": value, "type": kind}, threshold)
    if negate and result["pass"] is not None:
        result = {"score": round(1 - result["score"], 4) if metric.binary else result["score"],
                  "pass": not result["pass"], "reason": f"not: {result['reason']}"}
    return result
