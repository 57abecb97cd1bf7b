"""Grounded answers: the quote, near-miss abstention, the support check and the lead."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from assistant.chain import Prepared
from assistant.chain.factory import build_assistant
from assistant.chain.grounding import (
    LEAD_AGREEMENT,
    MAX_QUOTE_WORDS,
    QUOTE_FEATURES,
    QUOTE_WEIGHTS,
    Quote,
    agreement,
    asked,
    check_support,
    choose_quote,
    missing_fact,
    sentence_features,
)
from assistant.retrieval import Hit


def course_hit(n: int, section: str, score: float = 0.5) -> Hit:
    """The n-th chunk of the course file, under `section`."""
    return Hit(n, score, section, "", "course.md", f"c{n}")


BERT = course_hit(1, "Popular Models > 1. BERT")
GPT = course_hit(2, "Popular Models > 2. GPT", score=0.4)
CANDIDATES = [
    (BERT, "BERT uses WordPiece Embeddings with a 30,000 token vocabulary."),
    (BERT, "The first token of every sequence is always a special classification token."),
    (GPT, "GPT relies on the decoder portion of the Transformer."),
    (GPT, "By OpenAI - Autoregressive Language Model."),
]


@pytest.mark.parametrize("question, kind, focus, subject", [
    ("How many GPUs were used to train BioGPT according to the course?", "number", ["gpu"], ["biogpt"]),
    ("What vocabulary size does GPT use?", "number", ["vocabulary"], ["gpt"]),
    ("What percentage of tokens does BERT mask?", "percent", ["token"], ["bert"]),
    ("In what year was BERT released?", "date", [], ["bert"]),
    ("On what date did Google launch Gemini?", "month", [], ["google", "gemini"]),
    ("What is the dimension of the feed-forward layer?", "number", ["feed", "forward", "layer"], []),
    ("what % of input words does bert mask", "percent", ["word"], []),
    ("What BLEU score did the Transformer reach?", "number", ["bleu", "score"], ["transformer"]),
    ("What temperature setting works best for ChatGPT?", "number", ["temperature"], ["chatgpt"]),
    ("How many different NLP tasks can BERT be used for?", "number", ["nlp", "task"], ["bert"]),
    ("What is the name of the dataset T5 was trained on?", "name", ["dataset"], ["t5"]),
    ("Which company released Stable Diffusion?", "name", ["relea"], ["stable", "diffusion"]),
    ("Which optimizer does the course use for fine-tuning?", "term", ["optimizer"], []),
    ("When we fine-tune a model, what changes?", "other", [], []),
    ("Who made GPT?", "name", ["made"], ["gpt"]),
    ("Who coined the term 'generative AI'?", "name", ["coin"], ["ai"]),
    ("How many human annotators provided feedback for ChatGPT?", "number", ["human", "annotator"],
     ["chatgpt"]),
    ("How many encoder and decoder layers does the Transformer stack?", "number",
     ["encoder", "decoder", "layer"], ["transformer"]),
    ("What's the maximum context window of GPT-4?", "number", ["context"],
     ["gpt", "4"]),
    ("How much did it cost to train T5?", "number", ["cost"], ["t5"]),
    ("What percent of input words get masked in BERT?", "percent", ["word"], ["bert"]),
    ("whats the name of the optimizer they used to train bert", "term", ["optimizer"], []),
    ("when exactly was bard renamed to gemini?", "date", [], []),
    ("When is a model considered GenAI?", "other", [], ["genai"]),
    ("who won the world cup in 2010", "name", ["won"], []),
    ("What is self-attention?", "other", [], []),
    ("What should I keep in mind when deploying a model?", "other", [], []),
    ("What learning rate does the course use?", "number", ["learn", "rate"], []),  # a rate is said
    ("who developed BioGPT and how much data was it trained on", "number", [], ["biogpt"]),
    ("How much data was BioGPT trained on?", "number", [], ["biogpt"]),  # articles, words: not "data"
    ("How much electricity, in kWh, does it take to train GPT?", "number", ["electricity", "kwh"],
     ["gpt"]),  # the value must come in the unit asked
    ("whats the vocab size of bert", "number", ["vocabulary"], []),
    ("roughly how much electricity in kwh does it take to train GPT-3", "number",
     ["electricity", "kwh"], ["gpt", "3"]),
    ("GPT-3 parameter count?", "number", ["parameter"], ["gpt", "3"]),  # a keyword query
    ("How many are there?", "number", [], []),  # names nothing (it once raised)
    ("how long did T5 take to train, and on how many TPUs?", "number", ["tpu"], ["t5"]),
    ("number of parameters in gpt-3?", "number", ["parameter"], []),  # lower case: no name yet
    ("what makes a model count as generative AI?", "other", [], ["ai"]),  # "count as" is a verb
    ("what hardware/resources do transformers need?", "other", [], []),  # either will do
    ("how many TPUs and how long did it take to train BERT", "number", [], ["tpu", "bert"]),  # not "long"
    ("how many encoder and decoder layers does the Transformer stack?", "number",
     ["encoder", "decoder", "layer"], ["transformer"]),
    ("GPT-J is in the list. Who developed GPT-J?", "name", ["develop"], ["gpt", "j"]),  # after context
    ("In BERT's MLM, what share of words gets masked?", "percent", ["word"], ["bert", "mlm"]),
    ("BERT is said to solve 11+ NLP tasks. What is the name of the benchmark those tasks come from?",
     "name", ["benchmark"], ["bert", "nlp"]),  # a benchmark must be named, and "What" is no name
    ("I read that BERT was trained on TPUs. According to the lecture, how many TPUs were used?",
     "number", ["tpu"], ["bert"]),
])
def test_what_a_question_asks(question, kind, focus, subject):
    a = asked(question)
    assert (a.kind, a.focus, a.subject) == (kind, focus, subject)


@pytest.mark.parametrize("question, missing", [
    ("What vocabulary size does BERT use?", False),  # the sentence holds it
    ("What vocabulary size does GPT use according to the course?", True),  # BERT's, not GPT's
    ("How many layers does GPT have?", True),
    ("Who made GPT?", False),  # "By OpenAI"
    ("Who developed BERT?", True),  # no name and no authorship about BERT
    ("What does the GPT decoder do?", False),  # not a fact question
])
def test_near_misses_are_told_apart_from_answerable_fact_questions(question, missing):
    assert (missing_fact(question, CANDIDATES) is not None) == missing


@pytest.mark.parametrize("question, missing", [
    ("are the positional encodings in the transformer sinusoidal or learned?", True),  # neither said
    ("are autoencoding models unidirectional or bidirectional?", False),  # said of them
    ("what happens if you mask too few or too many words?", False),  # no yes/no choice
    ("the timeline says GRU till 2013 - what exactly is a GRU?", True),  # only listed
    ("explain briefly what zero-shot classification is", True),  # only listed
    ("what exactly is multi-head attention?", False),  # explained
    ("multi head attention vs normal attention - whats the diff", False),  # "diff" is no term
    ("how do we evaluate a language model, is perplexity the metric used?", True),  # offered
    ("for T5, do you add a text prefix to the input?", True),  # every word of it must be said
    ("which one does the lecture say to prefer, GRU or LSTM?", True),  # a recommendation asked
    ("according to the timeline when did stable diffusion come out", False),  # the event is asked
    ("difference between zero shot and few shot prompting?", True),  # "few shot" is never said
    ("what's the difference between autoencoding models and language modeling?", False),
    ("were the positional encodings sinusoidal or learned? which is better", True),  # a choice, then more
    ("which technique gives better results, few-shot prompting or chain of thought?", True),
    ("explain briefly how zero-shot classification works", True),  # only listed
    ("how is the reward model trained in RLHF?", True),  # "reward" is never said
    ("how is language modeling defined?", False),
    ("once a word is picked, does bert swap it? whats the breakdown", False),  # no term to define
    ("LSTM vs GRU - which one is better and why?", True),  # a judgement the course never makes
    ("for generation which decoding is better, beam search or greedy? does the lecture say", True),
    ("what does language modeling predict? like whats the definition", False),
    ("why not mask more words? whats the tradeoff", False),  # no term to define
    ("is language modeling proprietary or not?", False),  # a yes/no, no alternatives
])
def test_choices_listed_terms_and_offered_terms_need_the_passages_to_say_them(question, missing):
    tf = course_hit(7, "Attention is all you need: Introduction to Transformers")
    cands = [
        (tf, "Positional Encoding: the model introduces positional encodings."),
        (tf, "These encodings are added to the input embeddings."),
        (tf, "Multi-Head Attention: The Transformer employs multi-head attention, computed with "
             "different learned linear projections."),
        (tf, "Bidirectional Learning: Autoencoding models are bidirectional."),
        (tf, "If you mask too many words, the model has too little context."),
        (tf, "Timeline; Till 2013 - RNN/LSTMs/GRU; 2014 - Seq2seq; 2017 - Transformers; "
             "2020 - Stable Diffusion / GPT3."),
        (tf, "What NLP task does it map to?; Text Classification; Summarization; Translation; "
             "Zero-Shot Classification."),
        (tf, "Language Modeling predicts the likelihood of a sequence of tokens."),
        (tf, "T5 casts every task as text-to-text, with the input text in and output text out."),
    ]
    assert (missing_fact(question, cands) is not None) == missing


def test_a_choice_is_offered_in_the_clause_that_asks_it():
    from assistant.chain.grounding.missing import _CHOICE

    assert _CHOICE.search("are positional encodings sinusoidal or learned?")
    assert not _CHOICE.search("does BERT mask 15%, and what if you mask too little or too much")


def test_a_misspelt_focus_a_counted_list_and_a_listed_tool_named_in_full():
    bert = course_hit(8, "Disadvantages of Transformers")
    cands = CANDIDATES + [
        (bert, "T5: Has 11B parameters."),
        (bert, "Needs GPUs; Huge amount of Data; Overfitting; Energy Consumption; Interpretation."),
        (bert, "Popular Tools: OpenAI; Utility: ChatGPT, Whisper."),
    ]
    assert missing_fact("how many paramters does T5 have", cands) is None  # one letter dropped
    assert missing_fact("how many disadvantages of transformers are listed?", cands) is None
    assert missing_fact("how many disadvantages did the authors measure?", cands) is not None
    assert missing_fact("what is openai whisper used for", cands) is not None  # only listed


def test_a_number_that_labels_a_thing_does_not_count_it():
    figure = course_hit(6, "Transformers")
    cands = [(figure, "Below is an image of the attention for head 5 of the Transformer."),
             (figure, "BERT-Base: 12 attention heads, 110M parameters.")]
    assert missing_fact("How many attention heads does the Transformer use?", cands[:1]) is not None
    assert missing_fact("How many attention heads does BERT-Base use?", cands) is None


def test_authorship_recommendations_and_what_a_subject_was_trained_on_need_a_sentence_that_says_so():
    paper = course_hit(3, "Transformers")
    cands = CANDIDATES + [(paper, "(2017) Attention is all you need paper introduced by Google."),
                          (paper, "The Transformer paper was written by Vaswani et al. in 2017.")]
    assert missing_fact("Who developed the Transformer?", cands[:5]) is None  # "introduced by Google"
    assert missing_fact("Who were the authors of the Transformer paper?", cands[:5]) is not None
    assert missing_fact("Who were the authors of the Transformer paper?", cands) is None  # "written by"
    # the course recommends nothing: "which technique does it recommend" is not answered by a list
    advice = "Which prompting style does the course recommend for GPT?"
    assert missing_fact(advice, cands) is not None
    assert missing_fact(advice, cands + [(GPT, "We recommend few-shot prompts for GPT.")]) is None
    # ... or one that names something "for" the purpose asked (two words or more)
    tools = [(BERT, "The Transformers package from Hugging Face provides a neat and clean interface "
                    "for training and fine-tuning LLMs.")]
    assert missing_fact("which package is recommended for training and fine tuning llms", tools) is None
    assert missing_fact("which package is recommended for image inpainting", tools) is not None
    assert missing_fact("which package does the course recommend for BERT", tools) is not None
    # the course's tools table recommends what its row is for
    table = [(BERT, "Popular Tools: SpaCy; Utility: Production grade NLP, especially NER.")]
    assert missing_fact("which tool does the ecosystem table recommend for NER", table) is None
    assert missing_fact("which tool does the ecosystem table suggest for image inpainting", table) is not None
    # "how do the notes suggest deciding ..." asks for a method, not for a recommendation
    assert not asked("How do the notes suggest deciding whether to fine-tune?").advice
    data = [(BERT, "BERT - Trained on BooksCorpus and English Wikipedia."), (GPT, "GPT; BlueBERT.")]
    assert missing_fact("What data was BERT trained on?", data) is None
    assert missing_fact("What data was BlueBERT pretrained on?", data) is not None
    assert missing_fact("what data was bert pretrianed on", data) is None  # two letters swapped
    assert asked("What data is it trained on?").done is None  # a pronoun names no subject


def test_a_subject_typed_in_lower_case_is_one_when_the_passages_name_it():
    assert asked("when did roberta come out").subject == []
    assert asked("when did roberta come out", frozenset({"roberta"})).subject == ["roberta"]
    assert asked("who made roberta").subject == ["roberta"]  # what is made is the subject
    hit = Hit(1, 0.5, "Models", "", "c.md", "r1")
    cands = [(hit, "RoBERTa by Facebook AI shown to not require NSP task.")]
    assert missing_fact("who made roberta and which task did it drop", cands) is None
    assert missing_fact("who made biogpt", cands) is not None


def test_a_month_or_a_day_asked_is_not_answered_by_a_year():
    hit = Hit(1, 0.5, "Timeline", "", "c.md", "t1")
    cands = [(hit, "2020 - Stable Diffusion by Stability AI.")]
    assert missing_fact("In which year was Stable Diffusion released?", cands) is None
    assert missing_fact("In which month was Stable Diffusion released?", cands) is not None
    dated = [(hit, "Stable Diffusion was released by Stability AI in August 2022.")]
    assert missing_fact("In which month was Stable Diffusion released?", dated) is None


def test_a_second_sentence_that_cannot_be_read_alone_is_not_quoted():
    hit = Hit(1, 0.5, "BERT", "", "c.md", "b1")
    cands = [(hit, "BERT-Large has 340M parameters."), (hit, "T5: Text-To-Text Transfer Transformer."),
             (hit, "Has 11B parameters.")]
    quote = choose_quote("How many parameters does BERT-Large have?", cands, [0.6, 0.1, 0.5])
    assert [q.text for q in quote][0] == "BERT-Large has 340M parameters."
    assert "Has 11B parameters." not in [q.text for q in quote]


def test_a_fact_about_the_subject_of_the_sentence_before_is_found():
    hit = Hit(1, 0.5, "Domain Specific LLMs", "", "c.md", "d1")
    cands = [(hit, "BioGPT - Trained on large scale biomedical literature."),
             (hit, "Developed by the AI healthcare company, Owkin, in collaboration with Hugging Face.")]
    assert missing_fact("Who developed BioGPT?", cands) is None
    assert missing_fact("Who developed SciBERT?", cands) is not None


def test_the_quote_is_at_most_two_sentences_and_sixty_words_with_the_answering_span():
    scores = [0.3, 0.2, 0.1, 0.1]
    quote = choose_quote("What vocabulary size does BERT use?", CANDIDATES, scores)
    assert 1 <= len(quote) <= 2
    assert sum(len(q.text.split()) for q in quote) <= MAX_QUOTE_WORDS
    first = quote[0]
    assert first.chunk_id == "c1" and first.section == BERT.section
    start, end = first.span
    assert first.text[start:end] == "30,000"
    long = [(BERT, " ".join(["word"] * 200))]
    assert len(choose_quote("What is a word?", long, [0.5])[0].text.split()) <= MAX_QUOTE_WORDS


def test_a_sentence_that_refers_back_brings_the_one_before():
    hit = Hit(1, 0.5, "Attention", "", "c.md", "a1")
    cands = [(hit, "The context vector is the weighted sum of the encoder's hidden states."),
             (hit, "And these weights are called attention weights.")]
    quote = choose_quote("What are attention weights?", cands, [0.1, 0.6])
    assert [q.text[:10] for q in quote] == ["The contex", "And these "]


def test_a_heading_fragment_does_not_beat_the_sentence_that_answers():
    hit = Hit(1, 0.5, "Autoencoding Models", "", "c.md", "e1")
    cands = [(hit, "Autoencoding models correspond to the encoder part of the transformer."),
             (hit, "By Google - Autoencoding Language Model")]
    quote = choose_quote("Which part of the transformer do autoencoding models correspond to?",
                         cands, [0.6, 0.65])
    assert quote[0].text.startswith("Autoencoding models correspond")


def test_rare_question_words_weigh_more_than_common_ones():
    hit = Hit(1, 0.5, "GANs", "", "c.md", "g1")
    cands = [(hit, "Models are trained on data with a loss for many tasks."),
             (hit, "The discriminator learns to tell real samples from fake ones.")]
    question = "What does the discriminator do to the models' data?"
    idf = {"discriminator": 4.0, "model": 0.2, "data": 0.2}
    plain = choose_quote(question, cands, [0.5, 0.45])
    weighted = choose_quote(question, cands, [0.5, 0.45], idf)
    assert plain[0].text.startswith("Models") and weighted[0].text.startswith("The discriminator")


def test_the_best_sentence_brings_its_neighbour_before_a_sentence_from_elsewhere():
    first = Hit(1, 0.6, "Stable Diffusion", "", "c.md", "s1")
    second = Hit(2, 0.4, "GANs", "", "c.md", "s2")
    cands = [(first, "Stable diffusion refines a noise input over many steps."),
             (first, "It is particularly effective for high-resolution images."),
                 (second, "GANs train a generator against a discriminator.")]
    quote = choose_quote("How does stable diffusion generate from noise?", cands, [0.5, 0.3, 0.4])
    assert [q.chunk_id for q in quote] == ["s1", "s1"]
    assert "high-resolution" in quote[1].text


def test_an_answer_that_copies_the_first_sentence_but_not_the_fact_after_it_does_not_agree():
    quote = [Quote("The core of the Seq2Seq model is the encoder-decoder architecture.", "", "s"),
             Quote("Both encoder and decoder used RNN/LSTM cells.", "", "s")]
    question = "What kind of cells did the encoder and decoder use in seq2seq models?"
    copied = "The core of the Seq2Seq model is the encoder-decoder architecture."
    assert agreement(copied, quote, question) < LEAD_AGREEMENT
    said = "They used RNN/LSTM cells; the core is the architecture."
    assert agreement(said, quote, question) >= LEAD_AGREEMENT


def test_the_ranker_weighs_every_feature_it_computes():
    features = sentence_features(asked("How many layers?"), "It has 12 layers.", 0.5, 0)
    assert len(features) == len(QUOTE_FEATURES) == len(QUOTE_WEIGHTS)


@pytest.mark.parametrize("answer, verdict, unsupported", [
    ("BERT uses a WordPiece vocabulary of 30,000 tokens.", "supported", []),
    ("BERT's WordPiece vocabulary is 1012 tokens.", "partial", ["1012"]),
    ("GPT-4 uses a large vocabulary of over 100 million words from Wikipedia.", "unsupported",
     ["100 million", "GPT-4", "Wikipedia"]),
    ("", "unsupported", []),
])
def test_the_support_check_names_claims_absent_from_the_passages(answer, verdict, unsupported):
    passages = [CANDIDATES[0][1], CANDIDATES[1][1]]
    support = check_support(answer, passages, "What vocabulary size does BERT use?")
    assert support.verdict == verdict
    assert sorted(support.unsupported) == sorted(unsupported)


@pytest.fixture
def assistant(settings):
    return build_assistant(settings)


def test_an_unsupported_answer_never_leads(assistant):
    assistant.model.enqueue("BERT masks 42% of the tokens, says Wikipedia.")
    answer = assistant.answer("What percentage of tokens does BERT mask?")
    assert answer.support.verdict != "supported" and "42%" in answer.support.unsupported
    assert answer.lead_from == "quote" and answer.lead == " ".join(q.text for q in answer.quote)
    assert "15%" in answer.lead and "42%" not in answer.lead


def test_a_supported_answer_leads(assistant):
    assistant.model.enqueue("In Masked Language Modeling BERT masks 15% of the input tokens.")
    answer = assistant.answer("What percentage of tokens does BERT mask?")
    assert answer.support.verdict == "supported" and answer.lead_from == "answer"
    assert answer.lead == answer.answer
    card = answer.to_dict()
    assert {"quote", "support", "lead", "lead_from"} <= set(card)
    assert {"text", "section", "chunk_id", "span"} <= set(card["quote"][0])


def test_a_supported_answer_that_drops_facts_of_the_quote_does_not_lead(assistant):
    """The quote (15%, and Masked Language Modeling, MLM) is what the student reads then."""
    assistant.model.enqueue("BERT masks 15% of the input tokens.")
    answer = assistant.answer("What percentage of tokens does BERT mask?")
    assert answer.support.verdict == "supported" and answer.support.agreement < 0.6
    assert answer.lead_from == "quote" and "MLM" in answer.lead


def test_the_answer_carries_the_models_own_finish_reason_batched_and_streamed(assistant):
    from assistant.models.fake import FakeChatModel

    class Cut(FakeChatModel):  # a model that says it stopped at its token limit
        def _generate(self, *args, **kwargs):
            result = super()._generate(*args, **kwargs)
            result.generations[0].message.response_metadata["finish_reason"] = "length"
            return result

        def _stream(self, *args, **kwargs):
            for chunk in super()._stream(*args, **kwargs):
                if chunk.message.chunk_position == "last":
                    chunk.message.response_metadata["finish_reason"] = "length"
                yield chunk

    assistant.model = Cut()
    question = "What percentage of tokens does BERT mask?"
    assistant.model.enqueue("BERT masks 15% of the input tokens.", "BERT masks 15% of the input tokens.")
    assert assistant.answer(question).finish == "length"
    *_, streamed = assistant.stream(question)
    assert streamed.finish == "length" and streamed.to_dict()["finish"] == "length"


def test_a_supported_answer_that_does_not_say_what_the_course_says_does_not_lead(assistant):
    assistant.model.enqueue("BERT masks some input tokens.")  # true to the notes, but no 15%
    answer = assistant.answer("What percentage of tokens does BERT mask?")
    assert answer.support.verdict == "supported" and answer.support.agreement == 0.0
    assert answer.lead_from == "quote" and "15%" in answer.lead


def test_the_quote_comes_before_the_model_writes(assistant):
    assistant.model.enqueue("BERT masks 15% of the input tokens.")
    pieces = list(assistant.stream("What percentage of tokens does BERT mask?"))
    assert isinstance(pieces[0], Prepared) and pieces[0].quote
    assert assistant.model.history == [] or isinstance(pieces[1], str)


def test_a_near_miss_abstains_with_the_closest_passage_and_no_model(assistant):
    answer = assistant.answer("How many layers does GPT have according to the course?")
    assert answer.abstained and answer.missing
    assert answer.lead.startswith("The course does not say: how many layers does GPT have?")
    assert answer.quote and assistant.model.history == []

    # a fact asked without inversion reads on as one sentence
    from types import SimpleNamespace

    from assistant.chain.assistant import abstention
    near = SimpleNamespace(missing="how many GPUs trained BioGPT", quote=[Quote("BioGPT - ...", "", "")])
    assert abstention(near).startswith("The course does not say how many GPUs trained BioGPT. ")


def test_the_extractive_baseline_answers_with_the_quote(settings):
    assistant = build_assistant(settings, model_name="extractive")
    answer = assistant.answer("What percentage of tokens does BERT mask?")
    assert answer.answer == answer.lead == " ".join(q.text for q in answer.quote)
    assert answer.prompt == "" and answer.tokens == {"input": 0, "output": 0}


@hsettings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_any_answer_gets_a_verdict_and_only_a_supported_one_could_lead(answer):
    support = check_support(answer, [CANDIDATES[0][1]], "What vocabulary size does BERT use?")
    assert support.verdict in {"supported", "partial", "unsupported"}
    if support.unsupported:
        assert support.verdict != "supported"


def test_table_rows_read_as_sentences_with_their_column_names():
    from assistant.chain.compress import units

    table = ("Now a quick note on the NLP ecosystem:\n\n| Popular Tools | Utility |\n| :---: | :---: |\n"
             "| **Hugging Face Transformers** | Pre-trained models |\n| **LangChain** | LLM Workflows |\n"
             "\nAfter the table.")
    got = units(table)
    assert "Popular Tools: LangChain; Utility: LLM Workflows" in got
    assert not any("---" in u or u.startswith("|") for u in got)
    assert got[-1] == "After the table."
    # a chunk that starts inside a table has no column names: the cells alone
    assert units("| **NLTK** | Classical NLP |\n| **SpaCy** | NER |") == ["NLTK; Classical NLP",
                                                                       "SpaCy; NER"]


def test_the_steps_under_an_item_are_one_unit_and_long_top_level_items_stay_apart():
    from assistant.chain.compress import units

    steps = ("3. Fine-tuning trains the LLM on a small dataset. The basic fine-tuning loop is the same.\n"
             "    a. Define a model you want to fine-tune as well as fine-tuning parameters "
             "(eg: learning rate)\n"
             "    b. Aggregate some training data.\n    c. Compute loss and gradients.\n")
    assert units(steps) == [
        "Fine-tuning trains the LLM on a small dataset.", "The basic fine-tuning loop is the same.",
        "Define a model you want to fine-tune as well as fine-tuning parameters (eg: learning rate); "
        "Aggregate some training data.; Compute loss and gradients."]
    top = ("1. Masked Language Modeling hides some words of a sentence and trains the model to predict.\n"
           "2. BERT masks 15% of the input tokens during pre-training.\n")
    assert len(units(top)) == 2  # two statements, not the parts of one
    labelled = ("5. Data: Pretrained on:\n    a. English Wikipedia - 2.5 Billion words\n"
                "    b. Book Corpus - 800 Million words\n")
    assert units(labelled) == ["Data: Pretrained on: English Wikipedia - 2.5 Billion words; "
                               "Book Corpus - 800 Million words"]


def test_a_sentence_does_not_end_at_an_abbreviation():
    from assistant.chain.compress import units

    got = units("The first token is always a special classification token i.e. `[CLS]`. "
                "Pairs use a separator e.g. [SEP]. Then it trains.")
    assert got == ["The first token is always a special classification token i.e. [CLS].",
                   "Pairs use a separator e.g. [SEP].", "Then it trains."]


@pytest.mark.parametrize("question, missing", [
    ("whats the max input length bert can take, is it 512 tokens?", True),  # no passage says 512
    ("is bert's vocabulary 30k tokens?", False),  # "30,000" says 30k
    ("Does BERT have a 30,000 token vocabulary?", False),
    ("do autoregressive models use teacher forcing during training", True),  # never said
    ("Does GPT use the decoder of the Transformer?", False),
    ("how is a language model evaluated? is perplexity the metric people use", True),
    ("Is WordPiece the tokenizer BERT uses?", False),
    ("what does GPT rely on, is it the decoder?", False),
    ("one of the models uses three kinds of embeddings: which one?", False),  # number words propose nothing
    ("the slides give like 5 reasons for BERT, what are they", False),  # a count of the course's list
])
def test_a_value_or_term_offered_for_confirmation_must_be_in_the_passages(question, missing):
    assert (missing_fact(question, CANDIDATES) is not None) == missing


@pytest.mark.parametrize("question, missing", [
    ("What does NSP stand for?", False),  # the passage spells it out
    ("what does lstm stand for", True),  # no passage does
    ("What's RoBERTa short for?", False),  # a mixed-case name is not spelled by initials
    ("Which has more parameters, BERT or GPT?", True),  # GPT is never measured
    ("Which has more layers, BERT-Base or BERT-Large?", False),  # both are
    ("which used more energy to train, BERT-Base or BERT-Large?", True),  # energy is never said
    ("what is the full name of lstm", True),
    ("In which country is OpenAI based?", True),  # no passage says where anything is based
    ("explain what perplexity is", True),  # a term no passage uses
    ("explain what NSP is", False),
    ("what's the fourth item?", False),  # positions are not terms
    ("Is NSP about sentence pairs? Explain briefly.", False),  # "explain briefly" names no term
    ("what does whisper actually do", True),  # only listed
    ("What is SpaCy used for?", False),  # its row says
    ("On what kind of texts was BioGPT trained, and who built it?", True),  # never "trained"
    ("What is 'teacher forcing', and why is it used?", True),  # quoted, never said
    ("what's the exact formula for BERT's loss?", True),  # no passage holds one
    ("Which version of SpaCy does the course use?", True),
    ("how does image inpainting actually work?", True),  # an item of a list
    ("Which two sentences are being compared?", False),  # "being compared" is no "trained on"
    ("In which year did BERT-Base appear, and in which year BERT-Large?", False),  # each on its own
    ("which decoding strategy (greedy, beam search) does GPT use?", True),  # neither is named
    ("what value goes in the masked positions? like -infinity or 0?", True),
    ("which embeddings (WordPiece or BPE) does BERT use?", False),  # WordPiece is named
    ("what does NSP teach? (exam tmrw, brain fried)", False),  # an aside offers nothing
    ("does GPT pick tokens with a strategy like greedy search or nucleus sampling?", True),
    ("Explain chain-of-thought prompting.", True),  # the compound is never said, whatever "prompt" is
    ("Tell me the context window size of GPT.", True),  # an instruction asks for a number too
    ("bert maximum input sequence length in tokens", True),  # a keyword query with its unit
    ("which tool should I use for image inpainting?", True),  # a recommendation asked
    ("which tool should I use for NER?", False),  # the tools table's row says
    ("How is perplexity used to evaluate GPT?", True),  # a term no passage uses
    ("what went wrong with Gemini after launch?", True),  # the course only links to it
    ("where can I read what went wrong with Gemini?", False),  # the link is what is asked
    ("GPT-3 number of parameters?", True),  # a keyword query for a count
    ("which decoding (greedy, top-k sampling) does GPT use?", True),  # "samples" is no "sampling"
    ("At inference, do GPT models use greedy decoding or beam search?", True),  # offered by "use"
    ("does BERT use WordPiece or BPE embeddings?", False),  # WordPiece is named
    ("which specific model should I pick for image inpainting?", True),  # a list item names none
    ("which exact tool does the course name for NER?", False),  # SpaCy's row does
    ("which specific model uses WordPiece embeddings?", False),  # BERT's sentence
])
def test_what_the_passages_must_say_for_acronyms_comparisons_places_terms_and_lists(question, missing):
    nsp = course_hit(5, "Popular Models > 1. BERT")
    cands = CANDIDATES + [
        (nsp, "Next Sentence Prediction (NSP) helps BERT learn relationships between sentences."),
        (nsp, "BERT-Base: 12 transformer layers, 110M parameters."),
        (nsp, "BERT-Large: 24 transformer layers, 340M parameters."),
        (nsp, "RoBERTa: A Robustly Optimized BERT Pretraining Approach."),
        (nsp, "Popular Tools: OpenAI; Utility: ChatGPT, Whisper."),
        (nsp, "Popular Tools: SpaCy; Utility: Production grade NLP, especially NER."),
        (nsp, "Text Generation; Summarization; Image Editing; Image Inpainting; etc..."),
        (nsp, "BERT-Base came out in 2018; BERT-Large followed in 2019."),
        (nsp, "Read here where Google explained what went wrong after the launch of Gemini."),
        (nsp, "2020 - Stable Diffusion / GPT-3; 2021 - DALL-E."),
        (nsp, "GANs generate new data samples from random noise, searching for realism."),
    ]
    assert (missing_fact(question, cands) is not None) == missing


@pytest.mark.parametrize("question, missing", [
    # an asked number must count what is asked: "three layer of token embedding" counts no tokens
    ("What's the maximum input length of BERT in tokens?", True),
    ("How many layers does BERT-Large have?", False),  # "24 transformer layers"
    ("how big is biogpt, like number of params?", True),  # 2 million counts articles
    ("how many articles was BioGPT trained on?", False),
    ("how many paramters does BERT-Large have", False),  # the unit as the passages spell it
    # a treatment asked at the end, or about "it" after the topic
    ("SciBERT was trained on what corpus exactly?", True),  # only listed
    ("SciBERT - what corpus was it trained on?", True),
    ("BioGPT was trained on what data?", False),
    # who makes a thing: the thing named, wherever the question puts it
    ("Coral is listed among the popular LLMs \u2014 which company makes it?", True),
    ("who makes coral, the llm in the list", True),
    ("who makes FLAN-T5?", False),
    ("which institute built SciBERT?", True),
    # a loss or a prefix asked: a sentence about the subject must name one
    ("what loss function do GANs use during training", True),
    ("which loss function do autoregressive models use?", False),
    ("what prefix do you put in front of the input for T5?", True),
    # a choice after a phrase of place, an aside in brackets
    ("in the original transformer are the positional encodings sinusoidal (sin/cos) or learned?", True),
    # a difference asked, one side only listed; a term to explain that is only listed
    ("how is a GRU different from an LSTM?", True),
    ("whats the difference between BERT-Base and BERT-Large?", False),
    ("what is zero shot classification?", True),
    ("what does zero-shot classification mean exactly", True),
    # a possessive before the asked property; a count's unit must come right before its number
    ("What is BERT's maximum input length in tokens?", True),
    ("how many books are in the Book Corpus that bert was trained on", True),  # 800 Million words
    ("How many words are in the Book Corpus?", False),
    # "OpenAI's Whisper model", "Whisper (in the tools table)": the listed name
    ("What does OpenAI's Whisper model do?", True),
    ("What does Whisper (listed in the tools table) actually do?", True),
    # which mathematical function: a sentence about the subject must name one
    ("What mathematical functions are used to compute the positional encodings?", True),
    # a student's "tokens" are the course's "words"
    ("what % of tokens does BERT mask?", False),
    ("what % of layers does BERT mask?", True),
])
def test_what_is_asked_must_be_what_the_passages_say(question, missing):
    bert = BERT
    bio = course_hit(7, "Popular Models > Domain-specific")
    lm = course_hit(8, "AutoEncoding Vs AutoRegressive")
    misc = course_hit(9, "Applications")
    prompts = course_hit(10, "Prompt Engineering")
    cands = [
        (bert, "Input to BERT: BERT uses three layer of token embedding for a given piece of text."),
        (bert, "BERT-Base: 12 transformer layers, 110M parameters."),
        (bert, "BERT-Large: 24 transformer layers, 340M parameters."),
        (bio, "BioGPT - Trained on large scale biomedical literature (more than 2 million articles)."),
        (bio, "SciBERT; BlueBERT."),
        (prompts, "Few models are aligned with instructions: ChatGPT (closed-source model from OpenAI) "
                  "and FLAN-T5 (an open-source model from Google)."),
        (prompts, "Popular LLMs like GPT-3, GPT-4, ChatGPT, Coral, GPT-J, FLAN-T5, etc."),
        (bio, "GANs consist of two neural networks: a generator and a discriminator."),
        (bio, "T5 uses both encoder and decoder and can solve tasks such as translation."),
        (lm, "The autoregressive model adjusts its parameters using a cross-entropy loss."),
        (misc, "Positional Encoding: positional encodings are added to the input embeddings."),
        (misc, "Till 2013 - RNN/LSTMs/GRU; 2014 - Seq2seq; 2017 - Transformers; 2018 - BERT."),
        (misc, "Text Classification; Zero-Shot Classification; Summarization; Translation; etc."),
        (bert, "Data: Pretrained on: English Wikipedia - 2.5 Billion words; "
               "Book Corpus - 800 Million words."),
        (bert, "In BERT, we mask out a random k=15% of the words."),
        (misc, "Popular Tools: OpenAI; Utility: ChatGPT, Whisper."),
    ]
    assert (missing_fact(question, cands) is not None) == missing
