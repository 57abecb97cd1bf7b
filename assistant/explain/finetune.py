"""Transfer learning and the fine-tuning loop, live: frozen MiniLM features vs bag-of-words.

The course's loop, on the labelled sentences shipped in data/topics.jsonl: define a
model (a linear classifier) and a learning rate, feed the training data in mini-batches,
compute the loss, backpropagate, repeat. The same classifier is trained on frozen
MiniLM sentence embeddings (transfer learning: the encoder already knows the language)
and on bag-of-words counts learnt from the training sentences alone (from scratch),
for a growing number of examples per class; accuracy is measured on the held-out part.
Everything is seeded: the same call gives the same numbers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import InputError
from assistant.explain.plots import caption, figure

DATA = Path(__file__).resolve().parent / "data" / "topics.jsonl"
SIZES = (8, 32, 80)  # examples per class
EPOCHS = 30
BATCH = 32
LEARNING_RATE = 0.01
SEED = 0
FEATURES = ("frozen MiniLM", "bag of words")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    split: str  # "train" or "test"


def load_examples(path: Path = DATA) -> list[Example]:
    """The labelled set; a bad line is an error naming it."""
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append(Example(str(row["text"]), str(row["label"]), str(row["split"])))
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path.name} line {n}: {e}") from None
        if rows[-1].split not in ("train", "test"):
            raise InputError(f"{path.name} line {n}: split must be train or test")
    return rows


@dataclass
class FinetuneResult:
    labels: list[str]
    sizes: list[int]
    accuracy: dict[str, list[float]]  # feature -> held-out accuracy per size
    examples: int  # the size whose loss curves are shown
    curves: dict[str, dict[str, list[float]]]  # feature -> {"train": [...], "held-out": [...]}
    held_out: int
    seed: int

    def to_dict(self) -> dict:
        return {"labels": self.labels, "examples_per_class": self.sizes,
                "held_out_accuracy": self.accuracy, "held_out_examples": self.held_out,
                "loss_curves": {"examples_per_class": self.examples, **self.curves},
                "epochs": EPOCHS, "learning_rate": LEARNING_RATE, "batch_size": BATCH,
                "seed": self.seed}

    def figure(self):
        return draw(self)


def bag_of_words(train: list[str], texts: list[str]):
    """Word counts over the training sentences' vocabulary (words unseen in training vanish)."""
    import numpy as np

    vocab = {w: i for i, w in enumerate(sorted({w for t in train for w in _WORD.findall(t.lower())}))}
    out = np.zeros((len(texts), max(len(vocab), 1)), dtype=np.float32)
    for r, text in enumerate(texts):
        for w in _WORD.findall(text.lower()):
            if w in vocab:
                out[r, vocab[w]] += 1.0
    return out


def train_linear(x, y, x_test, y_test, classes: int, seed: int = SEED):
    """The loop: a linear layer, cross-entropy, Adam; losses per epoch and held-out accuracy."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x, x_test = torch.as_tensor(x), torch.as_tensor(x_test)
    y, y_test = torch.as_tensor(y), torch.as_tensor(y_test)
    model = torch.nn.Linear(x.shape[1], classes)  # 1. define the model ...
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)  # ... and a learning rate
    loss_fn = torch.nn.CrossEntropyLoss()
    train_losses, test_losses = [], []
    for _ in range(EPOCHS):
        total = 0.0
        for batch in torch.randperm(len(x), generator=gen).split(BATCH):  # 2. feed the data
            optimizer.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])  # 3. compute the loss
            loss.backward()  # 4. backpropagate ...
            optimizer.step()  # ... and update the weights; 5. repeat
            total += float(loss.detach()) * len(batch)
        train_losses.append(total / len(x))
        with torch.no_grad():
            test_losses.append(float(loss_fn(model(x_test), y_test)))
    with torch.no_grad():
        accuracy = float((model(x_test).argmax(-1) == y_test).float().mean())
    return train_losses, test_losses, accuracy


def subset(rows: list[Example], per_class: int, seed: int) -> list[Example]:
    """`per_class` training examples of each label, drawn with a seeded shuffle."""
    import random

    rng = random.Random(seed)
    out = []
    for name in sorted({r.label for r in rows}):
        pool = [r for r in rows if r.label == name]
        rng.shuffle(pool)
        out.extend(pool[:per_class])
    return out


def finetune(examples: int = 32, sizes: tuple[int, ...] = SIZES, seed: int = SEED,
             path: Path = DATA, embed=None) -> FinetuneResult:
    """Both classifiers at each size; loss curves at `examples` per class."""
    import torch

    from assistant.explain import loaded

    rows = load_examples(path)
    train = [r for r in rows if r.split == "train"]
    test = [r for r in rows if r.split == "test"]
    labels = sorted({r.label for r in rows})
    most = min(sum(r.label == name for r in train) for name in labels)
    if not 1 <= examples <= most:
        raise InputError(f"--examples must be between 1 and {most} (examples per class)")
    sizes = sorted({s for s in sizes if s <= most} | {examples})
    if embed is None:
        from assistant.explain.embeddings import embed
    vectors = dict(zip([r.text for r in rows], embed([r.text for r in rows]), strict=True))
    y_of = {name: i for i, name in enumerate(labels)}
    y_test = torch.tensor([y_of[r.label] for r in test])
    accuracy = {f: [] for f in FEATURES}
    curves: dict[str, dict[str, list[float]]] = {}
    with loaded.compute(train=True):
        for size in sizes:
            chosen = subset(train, size, seed)
            y = torch.tensor([y_of[r.label] for r in chosen])
            texts = [r.text for r in chosen]
            features = {
                FEATURES[0]: ([vectors[t] for t in texts], [vectors[r.text] for r in test]),
                FEATURES[1]: (bag_of_words(texts, texts), bag_of_words(texts, [r.text for r in test])),
            }
            for name, (x, x_test) in features.items():
                tr, te, acc = train_linear(_array(x), y, _array(x_test), y_test, len(labels), seed)
                accuracy[name].append(acc)
                if size == examples:
                    curves[name] = {"train": tr, "held-out": te}
    return FinetuneResult(labels, sizes, accuracy, examples, curves, len(test), seed)


def _array(rows):
    import numpy as np

    return np.asarray(rows, dtype=np.float32)


def draw(result: FinetuneResult):
    """Loss per epoch (left) and held-out accuracy against examples per class (right)."""
    fig, (ax, bx) = figure(12, 5, 1, 2)
    colors = {FEATURES[0]: "#d9480f", FEATURES[1]: "#3b6fb6"}
    for name, curve in result.curves.items():
        epochs = range(1, len(curve["train"]) + 1)
        ax.plot(epochs, curve["train"], color=colors[name], label=f"{name}: training")
        ax.plot(epochs, curve["held-out"], color=colors[name], ls="--", label=f"{name}: held-out")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(f"the fine-tuning loop, {result.examples} examples per class", fontsize=10)
    ax.legend(fontsize=8)
    for name, acc in result.accuracy.items():
        bx.plot(result.sizes, acc, marker="o", color=colors[name], label=name)
    bx.axhline(1 / len(result.labels), color="#888", ls=":", label="chance")
    bx.set_xscale("log", base=2)
    bx.set_xticks(result.sizes, [str(s) for s in result.sizes])
    bx.set_ylim(0, 1.02)
    bx.set_xlabel("training examples per class")
    bx.set_ylabel(f"held-out accuracy ({result.held_out} sentences)")
    bx.set_title("transfer learning: frozen MiniLM vs words from scratch", fontsize=10)
    bx.legend(fontsize=8)
    caption(fig, "finetune", f"classes: {', '.join(result.labels)} · seed {result.seed}")
    return fig
