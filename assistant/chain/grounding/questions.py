"""What a question asks: the kind of fact (a number, a date, a name, ...), what it names and
what it is about (`asked`). Every regex is bounded or anchored: questions come from outside."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.chain.grounding.values import _base, _names
from assistant.text import CLIPPED, STOPWORDS, keywords, stem

# words that say nothing about what is asked ("according to the course", "what does X use")
_GENERIC = frozenset(stem(w) for w in (
    "course notes note say says according mention mentioned describe described explain "
    "used use uses using give given name named called call example main lecture slide kind type sort "
    ).split())


@dataclass(frozen=True)
class Asked:
    """What kind of fact a question asks for, and about what."""

    kind: str  # "number", "percent", "date", "month", "place", "formula", "name", "term" or "other"
    focus: list[str]  # stemmed words naming the asked property ("gpu", "vocabulary")
    subject: list[str]  # stemmed names the question is about ("biogpt")
    terms: list[str] = field(default_factory=list)  # every content word, for ranking sentences
    advice: bool = False  # asks what the course recommends: a sentence must recommend something
    purpose: tuple[str, ...] = ()  # "recommended for training and fine-tuning LLMs": what it is for
    done: tuple[str, str] | None = None  # "what data was BlueBERT trained on": (bluebert, train)
    acronym: str = ""  # "what does LSTM stand for": the passages must spell it out
    compared: tuple[str, str, str] | None = None  # "which has more parameters, A or B": (parameter, A, B)
    unit: str = ""  # "how many GPUs", "... in tokens": what the asked number must count


# ("When we fine-tune a model, ..." is a condition, not a date question)
_DATE_Q = re.compile(r"\band when\b|\bwhen (?:exactly )?(?:did|was|were)\b|"
                     r"\b(?:which|what) (?:year|date|day|month)\b", re.I)
# "the name of the (cleaned Common Crawl) dataset": the kind of thing named, which the
# answering sentence must say too (not just any name near the subject)
_NAME_OF = re.compile(r"\bname of (?:the |that |this |a |an )?(?:[\w-]+ ){0,3}?(dataset|benchmark|"
                      r"corpus|company|organi[sz]ation|lab|paper|algorithm|method|technique|library|"
                      r"framework|tool|metric|university|person)s?\b", re.I)
_NAME_Q = re.compile(r"(?:^|[.?!;,:\u2014\u2013-]\s)\s*(?:who|which (?:company|organi[sz]ation|lab|team|"
                     r"person|university|institute|institution|firm|startup|group))\b|"
                     r"\bwhat(?: is|'?s|\s+was) the name of\b", re.I)
# "how many attention heads does ...": the counted thing runs up to the verb
_COUNT_Q = re.compile(r"\bhow many ((?:(?!and (?:how|what|when|who|which|why)\b)[\w-]+ ){0,4}?)"
                      r"(?:does|do|did|is|are|was|were|can|could|has|have|"
                      r"had|will|would|should|fit|go|went)\b|"
                      r"\bhow many ([\w-]+ [\w-]+s)\b|"
                      r"\bhow many ([\w-]+s)\s*(?:[?.!,]|$)", re.I)  # "... and on how many TPUs?"
# "what vocabulary size / dropout rate / batch size ...": the property named before its unit
# (a score, a temperature, a threshold, a rate: the unit itself is what a sentence must name)
_PROPERTY_Q = re.compile(r"\b(?:what(?:'?s| is| was| are)?|tell me|give me|state) (?:the )?"
                         r"((?:[\w-]+ ){0,3}?)(?:size|length|"
                         r"number|count|dimension|ratio|resolution|window|"
                         r"(score|temperature|threshold|rate))s?\b(?! as\b)"  # "count as" is a verb
                         r"(?: of (?:the |a |an )?([\w-]+(?: [\w-]+)?))?", re.I)
# "gpt-3 number of parameters?", "number of parameters in gpt-3?": a keyword query for a count
_TERSE_OF_Q = re.compile(r"^\s*(?!(?:what|whats|which|how|who|when|where|why|tell|give)\b)"
                         r"(?:[\w-]+(?: [\w-]+){0,2} )?(?:number|count|size) of ([\w-]+)"
                         r"(?: (?:in|of|for) [\w-]+(?: [\w-]+)?)?\s*\??\s*$", re.I)
# "BERT's" (not "what's", "it's")
_POSSESSIVE = re.compile(r"\b(?!(?:what|that|it|who|there|here|where|how|let|he|she)['\u2019]s\b)"
                         r"(\w+)['\u2019]s\b", re.I)
_NUMBER_OF = re.compile(r"\b(?:number|count) of ([\w-]+)", re.I)
# what a maker is asked of: "who makes coral", "Coral is listed ... which company makes it?"
_MAKING = (r"(?:made|makes|make|built|builds|build|created|creates|create|developed|develops|develop|"
           r"released|releases|owns|own)")
_MADE_WHAT = re.compile(rf"\bwho\s+(?:\w+\s+)?{_MAKING}\s+(?:the\s+)?([\w-]+)|"
                        rf"^\s*([\w-]+)\b[^?]{{0,80}}\bwhich\s+(?:company|organi[sz]ation|lab|team|institute)\s+"
                        rf"(?:\w+\s+)?{_MAKING}\s+(?:it|them)\b", re.I)
# "gpt-3 parameter count?", "bert vocab size": a keyword query for a number
_TERSE_Q = re.compile(r"^\s*((?:[\w-]+ ){1,4})(?:size|count|length|number)(?: in [\w-]+)?\s*\??\s*$",
                      re.I)
# "in which country is Cohere based", "where is Cohere located": a sentence must say where
_PLACE_Q = re.compile(r"\b(?:which|what) (?:country|city|state|continent|place)\b|"
                      r"\bwhere (?:is|are|was|were) (?:[\w-]+ ){1,4}?(?:based|located|headquartered)\b", re.I)
# "the exact formula for ...": a sentence must hold one; "which version of X": a version number
_FORMULA_Q = re.compile(r"\b(?:formula|equation)s?\b", re.I)
_VERSION_Q = re.compile(r"\b(?:which|what) versions?\b", re.I)
# "in which month", "on what date": a year does not answer it
_MONTH_Q = re.compile(r"\b(?:which|what) (?:month|day|date)\b", re.I)
_AMOUNT_Q = re.compile(r"\bhow (?:long|large|big)\b", re.I)
# "how much did it cost", "how much data was used": the amount's verb or noun
_HOW_MUCH_Q = re.compile(r"\bhow much (?:(?:did|does|do|would|will|was|is) (?:it|they|this|that) ([a-z]+)|"
                         r"(?!of\b)([a-z]+)(?: (?:did|does|do|was|is|were|are|would|will|in)\b|,))", re.I)
# "... in kWh", "... in tokens": the value must come in that unit
_IN_UNIT = re.compile(r"\bin (kwh|mwh|kw|watts|tokens|gb|tb|mb|gigabytes|hours|days|weeks|months|"
                      r"dollars|usd|words|parameters|layers|gpus|tpus)\b", re.I)
# "what percentage of vocabulary overlap ...": the measured thing follows "of"
_PERCENT_Q = re.compile(r"\bwhat (?:percentage|percent|fraction|proportion|share|%)(?!\w)"
                        r"(?: of ([\w-]+(?: (?!gets?\b|are\b|is\b|were\b|was\b|do\b|does\b|did\b)[\w-]+)?))?|"
                        r"\bhow much of\b", re.I)
# words that qualify a counted thing without naming it: "how many different NLP tasks"
# (or how it is measured: "the maximum context window", "the default image resolution")
_VAGUE = frozenset("different various distinct separate total unique individual overall maximum "
                   "minimum max min default typical average exact approximate".split())
# "which optimizer / activation function / tokenizer ...": a thing the course must name
# ("hardware/resources": either will do; "which loss function": a loss)
_TERM_Q = re.compile(r"\b(?:which|what(?:'?s)?) (?:[\w-]+ ){0,4}?(optimi[sz]er|activation|"
                     r"tokeni[sz](?:er|ation)|benchmark|licen[cs]e|programming language|hardware|"
                     r"algorithm|metric|loss|prefix|"
                     r"(?<=mathematical )function|function(?= do| does| is| are))"
                     r"(?:es|s)?\b(?!/)(?: functions?\b)?", re.I)

# "what does LSTM stand for", "what's NSP short for": an acronym of 3 to 6 letters (a name in
# mixed case, "RoBERTa", is not spelled out by initials)
_STANDS_Q = re.compile(r"\bwhat(?:'s| is| does| do)? (?:the )?(?:acronym |abbreviation )?([A-Za-z]{3,6})"
                       r"(?: stand for| short for| an abbreviation for| expand to)\b|"
                       r"\bfull (?:form|name) of (?:the )?([A-Za-z]{3,6})\b", re.I)

# "which has more parameters, RoBERTa or BERT-Large?": both must be measured, or compared
_COMPARE_Q = re.compile(r"^\s*which\b(?:\s+[\w-]+){0,4}?\s+(?:more|less|fewer|larger|bigger|smaller|"
                        r"faster|slower|higher|lower|better|worse)\b((?:\s+[\w-]+){0,4}?)\s*,?\s*"
                        r"([\w.-]+)\s+or\s+(?:the\s+)?([\w.-]+)\s*\??\s*$", re.I)

# "which technique does the course recommend": only a sentence that recommends answers it, or
# one that says what serves the purpose asked ("... for training and fine-tuning LLMs")
# ("how do the notes suggest deciding ..." asks for a method, not a recommendation)
_ADVICE_Q = re.compile(r"^(?!\s*how\b).*?\b(?:recommend|advis|suggest|prefer\b|"
                       r"should (?:i|we|you) (?:use|pick|choose)\b|"
                       r"which (?:[\w-]+ ){0,2}(?:is|works?) (?:better|best)\b)",
                       re.I | re.S)
_PURPOSE = re.compile(r"\bfor ([\w-]+(?: [\w-]+){1,5})", re.I)

# "what data was BlueBERT trained on", "which framework was BERT implemented in": a sentence
# must say that the subject was so treated ("BioGPT - Trained on ..."), whatever it names
_DONE_PREPOSITIONS = (" on", " in", " with", " by", " from", " at", " using")
_DONE_Q = re.compile(r"\b(?:which|what)\s+(?:[\w-]+\s+){1,3}?(?:is|are|was|were)\s+(?:the\s+)?"
                     r"(?:original\s+)?([\w-]+)\s+([a-z-]+ed)(?:\s+(?:on|in|with|by|from|at|using)\b|\s*[,?.]|$)",
                     re.I)
# the same asked at the end: "SciBERT was trained on what corpus exactly?"
_DONE_LAST_Q = re.compile(r"\b([\w-]+)\s+(?:is|are|was|were)\s+(?:[a-z]+ly\s+)?([a-z-]+ed)\s+"
                          r"(?:on|in|with|by|from|at|using)\s+(?:what|which)\b", re.I)


def asked(question: str, known: frozenset[str] = frozenset()) -> Asked:
    """The fact type a question asks for, the property it names, and what it is about.

    `known`: names (as `_base` gives them) of the passages at hand, so a subject typed in
    lower case ("who made roberta") is still one.

    >>> a = asked("How many GPUs were used to train BioGPT?")
    >>> a.kind, a.focus, a.subject
    ('number', ['gpu'], ['biogpt'])
    >>> asked("What vocabulary size does GPT use?").focus
    ['vocabulary']
    """
    kind, focus, unit = _kind_and_focus(_POSSESSIVE.sub(r"\1", question))  # "BERT's maximum input length"
    typed = [w for w in re.findall(r"[a-z][a-z0-9-]*", question.lower()) if _base(w) in known]
    made = _MADE_WHAT.search(question) if kind == "name" else None  # "who makes coral"
    made = next(g for g in made.groups() if g).split("-") if made else []
    subject = [w for w in dict.fromkeys(_base(n) for n in _names(question, questions=True) + typed + made)
               if w not in focus and w not in STOPWORDS]
    if kind == "name":  # "who developed X": a verb of making, or "by <Name>", must be there
        focus = [w for w in (_base(k) for k in keywords(question)) if w in _MADE | _WROTE]
        # "who coined ...": that verb; "the name of the benchmark ...": that kind of thing
        if not focus and (m := _WHO_DID.search(question) or _NAME_OF.search(question)):
            focus = [_base(m.group(1))]
    terms = [w for w in dict.fromkeys(keywords(question)) if w not in _GENERIC]
    if kind == "term" and (m := _TERM_Q.search(question)) and m.group(0).endswith(("function", "functions")):
        terms = [w for w in terms if w != "function"]  # "which loss function": a loss
    done = _done(question, subject)
    advice = _ADVICE_Q.search(question)
    purpose = _PURPOSE.search(question, advice.end()) if advice else None
    stands = _STANDS_Q.search(question)
    acronym = next((g for g in stands.groups() if g), "") if stands else ""
    compared = None
    if m := _COMPARE_Q.search(question):
        measure = next(iter(keywords(m.group(1))), "")
        compared = (_base(measure) if measure else "", m.group(2), m.group(3))
    return Asked(kind, focus, subject, terms, advice=bool(advice), done=done, compared=compared, unit=unit,
                 acronym=acronym if acronym.isupper() or acronym.islower() else "",
                 purpose=tuple(_base(w) for w in keywords(purpose.group(1))) if purpose else ())


def _done(question: str, subject: list[str]) -> tuple[str, str] | None:
    """(subject, verb) of "what data was BlueBERT trained on" or "SciBERT was trained on what
    corpus", else None."""
    if ((m := _DONE_Q.search(question)) and _base(m.group(2)) not in _GENERIC_DONE
            and m.group(1).lower() not in STOPWORDS  # "what text is it trained on": whose?
            # with no "on"/"in" after the verb, only a named subject ("which two sentences are
            # being compared" is no "what data was X trained on")
            and (m.group(0).rstrip().endswith(_DONE_PREPOSITIONS) or _base(m.group(1)) in subject)):
        return _base(m.group(1)), _base(m.group(2))
    if ((m := _DONE_LAST_Q.search(question)) and _base(m.group(2)) not in _GENERIC_DONE
            and _base(m.group(1)) in subject):
        return _base(m.group(1)), _base(m.group(2))
    return None


def _kind_and_focus(question: str) -> tuple[str, list[str], str]:
    """The kind of fact asked for, the words naming the asked property (stemmed), and the unit
    an asked number must come in: the counted thing ("how many GPUs") or the unit named ("in
    tokens")."""
    kind, focus, unit = "other", [], ""
    if _PLACE_Q.search(question):
        kind = "place"
    elif _FORMULA_Q.search(question):
        kind = "formula"
    elif _VERSION_Q.search(question):
        kind = "number"
    elif _DATE_Q.search(question):
        kind = "month" if _MONTH_Q.search(question) else "date"
    elif m := _TERSE_OF_Q.search(question):
        kind, focus = "number", [_base(CLIPPED.get(m.group(1).lower(), m.group(1)))]
        unit = focus[0]
    elif m := _TERSE_Q.search(question):  # the word before "size" names it: "bert vocab size"
        kind, focus = "number", [_base(w) for w in keywords(m.group(1))[-1:]]
    elif m := _COUNT_Q.search(question) or _PROPERTY_Q.search(question):
        # "how many are there?" names nothing: group 1 is empty and group 2 did not take part
        named = f"{m.group(1)} {m.group(2) or ''}" if m.re is _PROPERTY_Q \
            else m.group(1) or m.group(2) or m.group(3) or ""
        kind, focus = "number", [_base(w) for w in keywords(named) if w.lower() not in _VAGUE]
        if m.re is _COUNT_Q:
            unit = _counted(named)  # "how many attention heads": heads; "words of text": words
        if not focus and m.re is _PROPERTY_Q:  # "what is the dimension of the feed-forward layer"
            focus = [_base(w) for w in keywords(m.group(3) or "") if w.lower() not in _VAGUE]
    elif m := _PERCENT_Q.search(question):
        kind, focus = "percent", [_base(w) for w in keywords(m.group(1) or "")][-1:]
    elif _AMOUNT_Q.search(question):
        kind = "number"
    elif m := _HOW_MUCH_Q.search(question):
        # "how much data": a sentence counts it in articles, words or tokens, not in "data"
        kind, focus = "number", [w for w in [_base(m.group(1) or m.group(2))] if w != "data"]
    elif m := _TERM_Q.search(question):  # before names: "what's the name of the optimizer"
        kind, focus = "term", [_base(w) for w in m.group(1).split()]
    elif _NAME_Q.search(question):
        kind = "name"
    if kind == "number" and (m := _IN_UNIT.search(question)):
        unit = _base(m.group(1))
        focus = focus if unit in focus else [*focus, unit]
    elif kind == "number" and not unit and (m := _COUNT_Q.search(question) or _NUMBER_OF.search(question)):
        # "what's the max input length bert can take, how many tokens?", "how big, number of params?"
        unit = _counted(next((g for g in m.groups() if g is not None), ""))
    return kind, focus, unit


def _counted(named: str) -> str:
    """The thing a count names, stemmed: "attention heads" -> head, "words of text" -> word."""
    head = keywords(re.split(r"\bof\b", named)[0])
    return _base(head[-1]) if head else ""


_GENERIC_DONE = frozenset(_base(w) for w in "used called named based mentioned described".split())


# verbs of making: "who created X" is answered by a clause that says who made it
_MADE = frozenset(_base(w) for w in (
    "create created develop developed build built make made release released introduce introduced "
    "propose proposed publish published invent invented found founded author wrote write own "
    "launch launched behind").split())
# authorship: "who wrote X", "the authors of X" want a sentence that says who wrote it; a
# paper "introduced by Google" names its lab, not its authors
_WROTE = frozenset(_base(w) for w in "author authors wrote written writer coauthor".split())
# "who coined ...", "who won ...": the verb a sentence must say, when it is not one of making
_WHO_DID = re.compile(r"^\s*who\s+(?!is\b|are\b|was\b|were\b|did\b|does\b|do\b|has\b|have\b)([a-z]+)\b",
                      re.I)
