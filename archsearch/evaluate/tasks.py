"""The shipped offline tasks: multiple choice over held-out State of the Union speeches. No torch.

Both tasks are built from the documents of the bundled corpus that the default data split holds
out for validation (``is_validation`` at ``data.val_fraction=0.05``; a content hash, so no default
training run has seen them), deterministically from ``SEED``:

1. Split each held-out document into sentences (after ``.``, ``!`` or ``?`` and whitespace) and
   keep sentence *i* as an item when ``i >= 2`` and it has 8 to 40 words. Draw ``N_ITEMS`` items
   from all held-out documents with ``random.Random(SEED)``, in document order.
2. The context is the two sentences before the item's sentence, the correct ending the sentence.
3. ``sotu_word_order``: the three wrong endings are the same sentence with its words shuffled
   (each distinct from the others and from the real one). Every ending has the same bytes, so a
   model that knows only token frequencies scores chance (25%); it measures the use of order.
   ``sotu_next_sentence``: the three wrong endings are items' sentences from other held-out
   documents (a HellaSwag-like next-sentence choice).
4. The correct ending's position among the four is drawn from the same generator.

``python -m archsearch.evaluate.tasks`` rewrites the JSONL files; a test checks they are what this
module builds.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from archsearch.config import DataConfig
from archsearch.data.corpus import is_validation, iter_documents

TASK_DIR = Path(__file__).parent / "tasks"
TASKS = ("sotu_word_order", "sotu_next_sentence")
SEED = "archsearch-sotu-tasks-v1"
N_ITEMS = 400
N_CHOICES = 4
MIN_WORDS, MAX_WORDS = 8, 40
HELD_OUT_FRACTION = 0.05  # DataConfig().val_fraction: the default split's validation documents

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(document: str) -> list[str]:
    """The document's sentences, whitespace collapsed."""
    text = " ".join(document.split())
    return [s for s in _SENTENCE_END.split(text) if s]


def held_out_documents() -> list[str]:
    """The bundled corpus's documents that the default split keeps for validation, in order."""
    return [d for d in iter_documents(DataConfig()) if is_validation(d, HELD_OUT_FRACTION)]


def _shuffled_variants(sentence: str, count: int, rng: random.Random) -> list[str]:
    words = sentence.split()
    variants: list[str] = []
    while len(variants) < count:
        candidate = " ".join(rng.sample(words, len(words)))
        if candidate != sentence and candidate not in variants:
            variants.append(candidate)
    return variants


def build_items(documents: list[str], task: str) -> list[dict[str, Any]]:
    """The task's items: ``{"context", "choices", "label", "doc"}`` (``doc``: document index)."""
    if task not in TASKS:
        raise ValueError(f"task={task!r} is unknown: use one of {TASKS}")
    rng = random.Random(SEED)
    split = [sentences(d) for d in documents]
    candidates = [
        (doc, i)
        for doc, sents in enumerate(split)
        for i in range(2, len(sents))
        if MIN_WORDS <= len(sents[i].split()) <= MAX_WORDS
    ]
    picked = sorted(rng.sample(candidates, N_ITEMS))
    items = []
    for doc, i in picked:
        ending = split[doc][i]
        if task == "sotu_word_order":
            wrong = _shuffled_variants(ending, N_CHOICES - 1, rng)
        else:
            others = [(d, j) for d, j in picked if d != doc]
            wrong = [split[d][j] for d, j in rng.sample(others, N_CHOICES - 1)]
        label = rng.randrange(N_CHOICES)
        choices = wrong[:label] + [ending] + wrong[label:]
        context = " ".join(split[doc][i - 2 : i])
        items.append({"context": context, "choices": choices, "label": label, "doc": doc})
    return items


def task_file(task: str) -> Path:
    return TASK_DIR / f"{task}.jsonl"


def write_tasks() -> list[Path]:
    """Rebuild every shipped task's JSONL from the held-out documents."""
    documents = held_out_documents()
    paths = []
    for task in TASKS:
        lines = [json.dumps(item) for item in build_items(documents, task)]
        task_file(task).write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(task_file(task))
    return paths


if __name__ == "__main__":
    for path in write_tasks():
        print(f"wrote {path}")
