"""Near misses: a question that asks for a fact the retrieved passages do not hold (a number,
a name, a date, a term, an expansion, ...) gets "The course does not say ..." instead of an
invented answer. Every regex is bounded or anchored; every loop is over bounded lists."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from functools import cached_property

from assistant.chain.grounding.questions import _PURPOSE, _WROTE, Asked, asked
from assistant.chain.grounding.values import _base, _bases, _names, _proposed, holds_kind
from assistant.text import STOPWORDS, keywords, named_terms, spells_out

ABOUT_SHARE = 0.5  # tuning pool: 0.3 to 0.6 abstain on the same questions


_BY = re.compile(r"\b(?i:by|from)\s+[A-Z]")
# what a date question asks happened, not what it is about ("according to the timeline, when
# did stable diffusion come out")
_EVENT = frozenset(_bases(
    "come came out release released launch launched appear appeared introduce introduced "
    "publish published timeline first"))
_LABEL = re.compile(r"\b([A-Za-z]+) (\d+)\b")  # a number after a noun labels it: "head 5", "step 2"


# what a sentence that recommends says (a question in the course, "what is the best way
# to ...?", recommends nothing)
_ADVICE = frozenset(_bases(
    "recommend recommended recommends recommendation advise advised advice should suggest "
    "suggested prefer preferred ideal"))
# the course's tools table ("Popular Tools: SpaCy; Utility: ... NER") recommends too
_TOOLS = re.compile(r"\bpopular tools?\b", re.I)
_TABLE_TALK = frozenset(_bases(
    "tool tools table ecosystem popular lecture course recommend recommended suggest suggested use "
    "utility"))


def missing_fact(question: str, candidates: list[tuple]) -> str | None:
    """What the question asks that no retrieved sentence holds (restated), or None.

    Each rule in `RULES` looks for one kind of unanswered question: a recommendation, a
    treatment ("what data was X trained on"), an offered alternative, a list item asked to be
    explained, a term to define, a comparison, an acronym, an offered value. Then a fact
    question (how many X, what X size, when, who, where, which term) is answerable when some
    sentence holds a value of that kind and names X, about the asked subject (in the sentence
    or its section; without a named subject, about most of the question's words): otherwise
    "how many GPUs were used to train BioGPT" is a near miss.
    """
    question = _resolve_topic(question)
    known = frozenset(_base(n) for _, sentence in candidates for n in _names(sentence)
                      if any(c.isupper() for c in n[1:]) or n.isupper())  # BERT, BioGPT, T5
    ask = asked(question, known)
    passages = Passages(candidates)
    ask = replace(ask, focus=[_as_spelled(w, passages.bases) for w in ask.focus],
                  subject=[_as_spelled(w, passages.bases) for w in ask.subject],
                  unit=_as_spelled(ask.unit, passages.bases) if ask.unit else "")
    if any(rule(question, ask, passages) for rule in RULES):
        return _restate(question)
    if ask.kind == "other" or not (ask.focus or ask.subject or ask.terms):
        return None
    if _answers(ask, candidates, counted=bool(_COUNTED.search(question))):
        return None
    # "in which year did DALL-E appear, and ChatGPT?": each name answered on its own
    names = [set(_bases(n)) for n in named_terms(question, every_sentence=True)]
    if len(names) > 1 and set(ask.subject) <= set().union(*names) and all(
            _answers(replace(ask, subject=sorted(name)), candidates) for name in names):
        return None
    return _restate(question)


# "SciBERT - what corpus was it trained on?": the topic first, then a question about "it"
_TOPIC_FIRST = re.compile(r"^\s*(\w[\w.-]*(?: \w[\w.-]*){0,2})\s*"
                          r"(?:[-\u2014\u2013:]|,\s*(?=what|which|how|who))\s*"
                          r"((?:what|which|how|who|when|where|why)\b[^?]{0,200}?)\b(it|they|them)\b", re.I)


def _resolve_topic(question: str) -> str:
    """The question with its pronoun replaced by the topic it opens with: "SciBERT - what
    corpus was it trained on?" -> "what corpus was SciBERT trained on?"."""
    m = _TOPIC_FIRST.match(question)
    if not m or m.group(1).lower() in STOPWORDS:
        return question
    return f"{m.group(2)}{m.group(1)}{question[m.end():]}"


@dataclass
class Passages:
    """The retrieved (hit, sentence) candidates, and what their text says, each worked out once
    for all the rules."""

    candidates: list[tuple]

    @cached_property
    def text(self) -> str:
        return " ".join(sentence for _, sentence in self.candidates)

    @cached_property
    def words(self) -> set[str]:
        return set(keywords(self.text))

    @cached_property
    def bases(self) -> set[str]:
        return _bases(self.text)

    @cached_property
    def values(self) -> set[str]:
        return _proposed(self.text)

    @cached_property
    def surface(self) -> set[str]:
        return _surface(self.text)

    @staticmethod
    def says(term: str, sentence: str) -> bool:
        """The sentence says every word of the term as written (a plural aside)."""
        return _all_said(term, _surface(sentence))

    def names(self, term: str) -> bool:
        """The passages say every word of the term as written (a plural aside: "beam search"
        needs "beam" and "search", and "sampling" is not "samples"), or its number."""
        return _all_said(term, self.surface) or bool(_proposed(term, words=False) & self.values)


def _surface(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _all_said(term: str, said: set[str]) -> bool:
    """Every content word of the term is in `said`, as written or with a plural s / es."""
    words = [w for w in re.findall(r"[a-z0-9]+", term.lower()) if w not in STOPWORDS]
    return bool(words) and all({w, w + "s", w + "es", w.removesuffix("s")} & said for w in words)


# --- the rules: (question, what is asked, the passages) -> the question is missed ---------------
def unrecommended(question: str, ask: Asked, passages: Passages) -> bool:
    """A recommendation asked ("which technique does the course recommend"), none given."""
    return ask.advice and not any(_recommends(ask, sentence) for _, sentence in passages.candidates)


def untreated(question: str, ask: Asked, passages: Passages) -> bool:
    """A treatment asked ("what data was BlueBERT trained on"), no sentence says it was."""
    done = ask.done and (ask.done[0], _as_spelled(ask.done[1], passages.bases))
    return bool(done) and not any(_did(done, clause, _bases(hit.section))
                                  for hit, sentence in passages.candidates for clause in sentence.split(";"))


def no_alternative(question: str, ask: Asked, passages: Passages) -> bool:
    """Alternatives offered ("which strategy (greedy, beam search)"), the passages name none;
    offered at the end ("are the positional encodings sinusoidal or learned?"), none is said
    in a sentence about what is asked (two of its words, "positional encoding")."""
    options = _alternatives(question)
    if options:
        return not any(passages.names(o) for o in options)
    m = _CHOICE.search(_ASIDE.sub("", question))  # "sinusoidal (sin/cos) or learned?"
    if not m:
        return False
    options = [m.group(1), m.group(2)]
    if m.group(2).lower() == "not":  # "is it proprietary or not": a yes/no, no alternatives
        return False
    offered = set().union(*(_bases(o) for o in options))
    # what the choice is about, in the passages' words ("quick check - are ..." is not)
    topic = ({_as_spelled(_base(t), passages.bases) for t in ask.terms} - offered - _CHOICE_TALK
             ) & passages.bases
    need = min(2, len(topic))
    return not any(passages.says(o, sentence)
                   and len(topic & _bases(f"{hit.section} {sentence}")) >= need
                   for o in options for hit, sentence in passages.candidates)


def only_listed(question: str, ask: Asked, passages: Passages) -> bool:
    """A listed name asked about ("what does Whisper do"), the course only lists it."""
    return bool(_only_listed(question, passages.candidates))


def undefined(question: str, ask: Asked, passages: Passages) -> bool:
    """A term to explain ("explain what perplexity is"), the passages never use it."""
    term, strict = _defined(question)
    if not term:
        return False
    compounds = [w.lower() for w in term.split() if "-" in w]  # "chain-of-thought": said as one
    said = _bases(term) <= passages.bases if strict else bool(_bases(term) & passages.bases)
    return not said or any(c not in passages.text.lower() for c in compounds)


def undifferentiated(question: str, ask: Asked, passages: Passages) -> bool:
    """A difference asked ("how is a GRU different from an LSTM"), one side only listed."""
    m = _DIFFER_Q.search(question) or _BETWEEN.search(question)
    sides = m.groups() if m else ()
    return any(_listed_only(side, passages.candidates) for side in sides)


# ("the difference between A and B" is `_BETWEEN`)
_DIFFER_Q = re.compile(r"\bhow (?:is|are|does|do) (?:a |an |the )?([\w-]+(?: [\w-]+)?) (?:different|differ) "
                       r"from (?:a |an |the )?([\w-]+(?: [\w-]+)?)", re.I)


def uncompared(question: str, ask: Asked, passages: Passages) -> bool:
    """A comparison ("which has more parameters, RoBERTa or BERT-Large?"), not both measured."""
    return bool(ask.compared) and not _compares(ask.compared, passages.candidates)


def unspelled(question: str, ask: Asked, passages: Passages) -> bool:
    """An acronym to expand ("what does LSTM stand for"), no passage spells it out."""
    return bool(ask.acronym) and not any(spells_out(ask.acronym, f"{hit.section} {sentence}")
                                         for hit, sentence in passages.candidates)


def unconfirmed(question: str, ask: Asked, passages: Passages) -> bool:
    """A value or term offered ("is it 512 tokens?", "teacher forcing?"), never said."""
    term = _offered(question)
    return bool(term) and bool(_proposed(term, words=False) - passages.values
                               or not set(keywords(term)) <= passages.words)


def only_linked(question: str, ask: Asked, passages: Passages) -> bool:
    """An explanation asked ("what went wrong with Gemini") whose sentence only links to it
    ("Read here where Google explained what went wrong"), unless a link or paper is asked."""
    if ask.kind != "other" or _ASKS_LINK.search(question) or not ask.terms:
        return False  # "which company was that about" is answered by the pointer's names
    wanted = {_base(t) for t in ask.terms}
    shared, sentence = max(((len(wanted & _bases(s)), s) for _, s in passages.candidates), default=(0, ""))
    return shared >= 2 and bool(_POINTER.search(sentence))


def unnamed_pick(question: str, ask: Asked, passages: Passages) -> bool:
    """A specific model or tool asked for ("which exact checkpoint should I use for the news
    feed example"), and no sentence about that names one the question does not."""
    if not _PICK.search(question):
        return False
    wanted = {_base(t) for t in ask.terms} - _PICK_TALK - _TABLE_TALK
    own = _bases(question)
    for hit, sentence in passages.candidates:
        names = {_base(n) for n in _names(f"x {sentence}") if _product(n)} - own
        about = wanted & (_bases(sentence) | _bases(hit.section))
        if names and len(about) >= ABOUT_SHARE * len(wanted):
            return False
    return True


def unpaired(question: str, ask: Asked, passages: Passages) -> bool:
    """A difference asked ("between zero shot and few shot prompting"), one side never said."""
    m = _BETWEEN.search(question)
    return bool(m) and not all(any(passages.says(side, sentence)
                                   for _, sentence in passages.candidates) for side in m.groups())


RULES = (unrecommended, untreated, no_alternative, only_listed, undefined, undifferentiated, uncompared,
         unspelled, unconfirmed, only_linked, unnamed_pick, unpaired)


def _answers(ask: Asked, candidates: list[tuple], counted: bool = False) -> bool:
    """Some clause holds the asked fact about the asked subject (`counted`: "how many X are
    listed" is answered by a list of X, counted rather than told)."""
    for i, (hit, sentence) in enumerate(candidates):
        # what a sentence is about: its section, and the sentence before it in the same chunk
        # ("BioGPT - Trained on ... . Developed by Owkin.")
        before = candidates[i - 1][1] if i and candidates[i - 1][0] is hit else ""
        context = _bases(hit.section) | _bases(before)
        # a list read as one unit ("2021 - DALL-E, GitHub Copilot; 2022 - ChatGPT by OpenAI"):
        # the fact must be in the item that names the subject, not anywhere in the list
        if any(_holds(ask, clause, context) for clause in sentence.split(";")):
            return True
        if counted and _listing(sentence) and set(ask.focus) <= _bases(sentence) | context:
            return True
    return False


_COUNTED = re.compile(r"\bhow many\b[^?.!]{0,60}?\b(?:are|were|is)\s+(?:listed|named|mentioned|given)\b|"
                      r"\bhow many\b[^?.!]{0,60}?\b(?:does|do)\s+(?:[\w-]+\s+){1,3}?(?:list|name)\b", re.I)


def _listing(sentence: str) -> bool:
    return sentence.count(";") >= 3 or sentence.count(",") >= 3


# a term the question offers for confirmation: "is perplexity the metric ...", "do they use
# teacher forcing", "..., is it byte pair encoding?"
_OFFERED = re.compile(r"(?:^|[?.!,]\s)\s*(?:is|are)\s+(?!it\b|there\b|this\b|that\b)"
                      r"([\w-]+(?: [\w-]+)?)\s+(?:the|a|an)\s|"
                      r"(?:^|[?.!,]\s)\s*(?:do|does|did)\s+(?:[\w-]+\s+){1,3}?(?:use|add|apply)\s+"
                      r"([\w-]+(?: [\w-]+){0,2})|"
                      r",\s*(?:is|are) (?:it|they)\s+(?!true\b)([\w-]+(?: [\w-]+){0,2})\??\s*$", re.I)
_LINKING = frozenset("during in on for to with by at of from when while as or and".split())
# "explain what perplexity is", "what is mode collapse": the term defined must be in the passages
_DEFINED = re.compile(r"\b(?:explain|define|what(?: exactly| actually)? is|what's|whats|what are)\s+"
                      r"(?:what\s+(?:(?:is|are)\s+)?)?"
                      r"(?:a |an |the )?['\"‘“]?([\w-]+(?: [\w-]+)?)['\"’”]?"
                      r"(?=\s*(?:[?.,!]|$)|\s(?:and|in|is|are)\b)|"
                      r"\bhow (?:is|are) (?:a |an |the )?([\w-]+(?: [\w-]+)?) "
                      r"(?:used|computed|calculated|measured|defined|trained|built|learned)\b", re.I)
# what such a question may ask about without naming a term ("what is the difference between")
_NOT_TERMS = frozenset(
    "difference differences best main purpose role point idea goal reason reasons meaning use uses "
    "advantage advantages disadvantage disadvantages problem problems benefit benefits way ways name "
    "example examples one kind kinds type types part parts step steps thing things key first last "
    "next most same other it this that they there these those he she you we i how why which when "
    "where who what wrong right true false good bad second third fourth fifth sixth item sub-item "
    "items pls please again more further diff vs versus number amount count size breakdown split "
    "gist summary takeaway intuition catch deal definition tradeoff trade-off downside upside".split())


# "what does Whisper actually do", "what is Coral used for", "what exactly is a GRU": a sentence
# must say more of it than a list does ("Utility: ChatGPT, Whisper", "Till 2013 - RNN/LSTMs/GRU")
_ADVERB = r"(?:actually |exactly |really )?"
_THING = r"(?:[\w-]+'s )?([\w-]+(?: (?!actually\b|exactly\b|really\b)[\w-]+)?) "
_DOES_Q = re.compile(rf"\bwhat (?:does|do|did) {_THING}{_ADVERB}do\b|"
                     rf"\bwhat (?:is|are|was|were|'s) {_THING}{_ADVERB}(?:used|good) for\b|"
                     rf"\bhow (?:does|do) {_THING}{_ADVERB}work\b|"
                     r"\bhow (?:a |an |the )?([\w-]+(?: [\w-]+)?) works\b|"
                     r"\bwhat (?:exactly |actually )?(?:is|are) (?:a |an |the )?([\w-]+(?: [\w-]+){0,2})"
                     r"(?=\s*(?:[?.,!]|$)|\s(?:and|in)\b)|"
                     rf"\bwhat (?:does|do) {_THING}(?:actually |exactly |really )?mean\b|"
                     r"\b(?:explain|describe)\b.{0,20}?\bwhat (?:a |an |the )?([\w-]+(?: [\w-]+)?) "
                     r"(?:is|are)\s*[?.!]*\s*$",
                     re.I)


_KIND_OF_THING = re.compile(r"\s+(?:model|tool|library|framework|package|system)s?$", re.I)
_ITEM = re.compile(r",|/| - ")  # "Utility: ChatGPT, Whisper", "Till 2013 - RNN/LSTMs/GRU"


def _only_listed(question: str, candidates: list[tuple]) -> str:
    """The name a "what does X do" question asks about, when every passage clause that names
    it is an item of a list ("Popular Tools: OpenAI; Utility: ChatGPT, Whisper"), else ''."""
    m = _DOES_Q.search(_ASIDE.sub("", question))  # "Whisper (listed in the tools table)"
    name = next((g for g in m.groups() if g), "") if m else ""
    # "OpenAI's Whisper model": the name, not the kind of thing it is
    return _listed_only(_KIND_OF_THING.sub("", name), candidates)


def _listed_only(name: str, candidates: list[tuple]) -> str:
    """The name, when every passage clause that names it is a list item, else ''."""
    wanted = _bases(name)
    named = {_base(n) for _, sentence in candidates for n in _names(f"x {sentence}")}
    if not wanted or not wanted <= named:  # a name the passages use ("whisper" typed in lower case)
        return ""
    clauses = [(clause, sentence.count(";")) for _, sentence in candidates
               for clause in sentence.split(";") if wanted <= _bases(clause)]
    if not clauses and len(name.split()) == 2:  # "openai whisper": the name is its last word
        return _listed_only(name.split()[-1], candidates)
    # an item of a list, in a few words: "Utility: ChatGPT, Whisper", "...; Image Inpainting;
    # etc" ("Popular Tools: SpaCy" heads its row of two clauses, not a list)
    listed = [c for c, semicolons in clauses
              if any(wanted <= _bases(item) and len(item.split()) <= 3 for item in _ITEM.split(c))
              and ("," in c or semicolons >= 3)]
    return name if clauses and len(listed) == len(clauses) else ""


def _defined(question: str) -> tuple[str, bool]:
    """The term a question asks to have explained ("perplexity"), up to its first linking word
    ('' for none), and whether every word of it must be said: "how is the reward model
    trained" asks about a process of a thing, "what is perplexity" about the term."""
    m = _DEFINED.search(question)
    words = next((g for g in m.groups() if g), "").split() if m else []
    words = list(itertools.takewhile(lambda w: w.lower() not in _LINKING | STOPWORDS, words))
    if not words or words[0].lower() in _NOT_TERMS or words[0].lower().endswith("ly"):
        return "", False  # "explain briefly" asks for no term
    return " ".join(words), bool(m.group(2))


# "which specific model should I pick", "what exact checkpoint do the notes say to use"
_PICK = re.compile(r"\b(?:which|what)\s+(?:specific|exact|particular)\s+(?:[\w-]+\s+){0,3}?"
                   r"(?:models?|checkpoints?|tools?|librar(?:y|ies)|llms?|versions?)\b", re.I)
_PICK_TALK = frozenset(_bases(
    "which what specific exact particular model checkpoint tool library llm version pick choose "
    "use should say notes note lecture course recommend pre trained pretrained hugging face "
    "example task we i do does"))

_FIELD_WORDS = frozenset("nlp ner llm llms ai genai ml dl gpu gpus tpu tpus api q a".split())


def _product(name: str) -> bool:
    """A model's or tool's name as written (BERT, GPT-3, BioGPT, SpaCy), not a capitalised word
    ("This", "Business") or the field's own acronyms (NLP, LLM)."""
    return (name.lower() not in _FIELD_WORDS
            and (name.isupper() or any(c.isupper() or c.isdigit() for c in name[1:])))


# a sentence that only points elsewhere, and questions that ask for the pointer
_POINTER = re.compile(r"\b(?:read|click|see) here\b|\bclick here\b", re.I)
_ASKS_LINK = re.compile(r"\b(?:link|paper|article|post|where can|read more|source)\b", re.I)

# alternatives a question offers: "which decoding strategy (greedy, beam search, sampling)",
# "what value is put there? like -infinity or 0?", "do they use greedy decoding or beam search",
# "which technique gives better results, few-shot prompting or chain of thought?"
# (an aside after the question mark, "? (exam tmrw, brain fried)", offers nothing)
_ALTERNATIVES = re.compile(r"(?<![?!.] )\(([^()]{1,80}(?:,| or )[^()]{1,80})\)|"
                           r"\blike ([^?.,]{1,40} or [^?.,]{1,40})\?*\s*$|"
                           r"\b(?:like|e\.g\.|such as) ([\w -]{1,40}(?:, [\w -]{1,40}){0,4} or [\w -]{1,40})|"
                           r"\b(?:use|uses|using) ([\w-]+(?: [\w-]+)? or [\w-]+(?: [\w-]+)?)|"
                           r"\bwhich\b[^?,]{0,80}, ([\w -]{1,40} or [\w -]{1,40})(?:\?|\s*$)",
                           re.I)


# "the difference between zero shot and few shot prompting"
_BETWEEN = re.compile(r"\bdiff(?:erence)?s? between (?:a |an |the )?([\w-]+(?: [\w-]+)?) and (?:a |an |the )?"
                      r"([\w-]+(?: [\w-]+)?)", re.I)

# a yes/no question's choice, offered at its end: "are they sinusoidal or learned?", "are they
# computed with sine and cosine functions, or are they learned?"
_CHOICE = re.compile(r"(?:^|[?.!,;:-]\s*|\band\s+|^\s*(?:in|for|with|on)\s[^?.!,]{0,40}?\s)"
                     r"(?:are|is|was|were|do|does|did)\s[^?.!,]{0,80}?"
                     r"\b([\w/-]+(?: [\w/-]+)?),? or (?:are they |is it |do they |does it )?"
                     r"([\w/-]+(?: [\w/-]+){0,2})\s*(?:\?|$)", re.I)
_ASIDE = re.compile(r"\s*\([^()]{0,60}\)")
_CHOICE_TALK = frozenset(_bases(
    "original course lecture notes slide say use model models fixed"))


def _alternatives(question: str) -> list[str]:
    """The alternatives a question offers for confirmation, or []."""
    m = _ALTERNATIVES.search(question)
    text = next((g for g in m.groups() if g), "") if m else ""
    return [a.strip() for a in re.split(r",|\bor\b|\betc\b\.?", text) if a.strip()]


def _offered(question: str) -> str:
    """The term a yes/no question offers ("teacher forcing"), up to its first linking word."""
    m = _OFFERED.search(question)
    words = next((g for g in m.groups() if g), "").split() if m else []
    return " ".join(itertools.takewhile(lambda w: w.lower() not in _LINKING, words))


def _compares(compared: tuple[str, str, str], candidates: list[tuple]) -> bool:
    """Some clause names both things compared, or each has a clause that measures it (a
    number, with the measure's word when the question names one)."""
    measure, *things = compared
    wanted = [_bases(t) for t in things]
    clauses = [(_bases(clause), clause) for hit, sentence in candidates for clause in sentence.split(";")]
    if any(all(w <= words for w in wanted) for words, _ in clauses):
        return True
    return all(any(w <= words and (not measure or measure in words) and holds_kind(clause, "number")
                   for words, clause in clauses) for w in wanted)


def _recommends(ask: Asked, sentence: str) -> bool:
    """The sentence recommends, or names something "for" the asked purpose (two words or more:
    "for GPT" names a model, not a purpose)."""
    words = _bases(sentence)
    if words & _ADVICE:
        return True
    # the course's tools table ("Popular Tools: SpaCy; Utility: ... NER") recommends, for
    # what its row says: a question word beyond the table's own must be there
    if _TOOLS.search(sentence) and {_base(t) for t in ask.terms} - _TABLE_TALK & words:
        return True
    purpose = set(ask.purpose)
    return (len(purpose) > 1 and bool(_names(f"x {sentence}"))
            and any(purpose <= _bases(m.group(1)) for m in _PURPOSE.finditer(sentence)))


def _as_spelled(word: str, words: set[str]) -> str:
    """The word as the passages (`words`, as `_bases` gives them) spell it, when the question
    swapped two letters ("pretrianed" -> "pretrained": the same letters in another order) or,
    in a word of five letters or more, dropped or doubled one ("paramters" -> "parameters")."""
    if word in words:
        return word
    head, bare = ("pre", word[3:]) if word.startswith("pre") else ("", word)  # "pretrianed": "trained"
    letters = sorted(bare)
    swapped = next((head + w for w in sorted(words) if len(w) == len(bare) and sorted(w) == letters), "")
    if swapped or len(word) < 5:
        return swapped or word
    return next((w for w in sorted(words) if _one_letter_apart(w, word)), word)


def _one_letter_apart(a: str, b: str) -> bool:
    """One of the two words is the other with one letter more."""
    long, short = (a, b) if len(a) > len(b) else (b, a)
    return len(long) == len(short) + 1 and any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def _did(done: tuple[str, str], clause: str, section: set[str]) -> bool:
    """The clause says the subject was so treated: its verb ("pretrained" as "trained" too)
    about the subject (named in the clause or its section)."""
    subject, verb = done
    words = _bases(clause)
    bare = verb.removeprefix("pre").lstrip("-")
    return bool({verb, bare} & words) and subject in words | section


# what the course and students call the same units ("what % of tokens does BERT mask": "15% of
# the words")
_ALSO = {"token": "word", "word": "token"}


def _holds(ask: Asked, clause: str, context: set[str]) -> bool:
    """The clause holds a value of the asked kind, names what is asked, about the subject."""
    words = _bases(clause)
    if ask.kind == "name" and set(ask.focus) & _WROTE:  # "who wrote X": authorship said
        named = bool(words & _WROTE) or "et al" in clause.lower()
    elif ask.kind == "name":  # "who made X": a verb of making, or an authorship "by/from <Name>"
        named = bool(words & set(ask.focus) or _BY.search(clause) or not ask.focus)
    else:
        named = all(f in words or _ALSO.get(f) in words for f in ask.focus)
    if ask.kind == "number" and ask.focus:  # "head 5" names one head: it counts none
        clause = _LABEL.sub(lambda m: "" if _base(m.group(1)) in ask.focus else m.group(0), clause)
    if not (named and holds_kind(clause, ask.kind, exclude=ask.subject)):
        return False
    if ask.kind == "number" and ask.unit and not _counts(clause, ask.unit):
        return False
    if ask.subject:
        return set(ask.subject) <= words | context
    # no named subject ("who invented generative adversarial networks"): the question's
    # other words, mostly
    topic = {_base(w) for w in ask.terms} - set(ask.focus)
    if ask.kind in ("date", "month"):  # "when did stable diffusion come out": the event is asked
        topic -= _EVENT
    return not topic or len(topic & (words | context)) >= ABOUT_SHARE * len(topic)


_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9,.]*[A-Za-z0-9]|[A-Za-z0-9]|[:=(]")
_SCALE = frozenset("million billion thousand trillion k m b t more than over about around roughly nearly "
                   "approximately ~".split())
_NUMBER_TOKEN = re.compile(r"~?\d[\d,.]*[kKmMbBtT]?$|(?i:one|two|three|four|five|six|seven|eight|nine|ten|"
                           r"eleven|twelve|hundred|dozen)$")


def _counts(clause: str, unit: str) -> bool:
    """Some number in the clause counts the unit: "24 transformer layers", "2 million articles",
    "parameters: 175B", "a vocabulary of 30,000" (not "three layers of token embedding" for tokens)."""
    tokens = _TOKEN.findall(clause)
    for i, token in enumerate(tokens):
        if not _NUMBER_TOKEN.match(token):
            continue
        after = []
        for word in tokens[i + 1:i + 6]:
            if word.lower() in ("of", "and", "or", "(", ":", "="):
                break
            if word.lower() not in _SCALE:
                after.append(word)
        # before it: "parameters: 175B", "a vocabulary of 30,000", "layers = 12"
        before = tokens[max(0, i - 2):i]
        if before and before[-1].lower() in ("of", ":", "=", "is", "was", "are", "were"):
            before = before[:-1]
        if unit in {_base(w) for w in after[:3] + before[-1:]}:
            return True
    return False


def _restate(question: str) -> str:
    """The question as the thing the course does not say: 'how many GPUs trained BioGPT'."""
    text = re.sub(r"\s*\baccording to the (course|notes)\b", "", question.strip(), flags=re.I)
    text = text.rstrip(" ?.!")
    return text[:1].lower() + text[1:]
