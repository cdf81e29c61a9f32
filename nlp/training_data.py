"""Training data for the learned theme model: labelled examples, their hash, the bundled file.

Why a module of its own: what a label *means* (positive, negative, unknown) and when two
training sets are the same (the hash that decides whether to retrain) are questions about data,
not about the estimator; kb's services, the evaluation and the model all share these answers.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_DATA_FILE = Path(__file__).resolve().parent / "data" / "training_passages.jsonl"


@dataclass(frozen=True)
class LabelledExample:
    """One passage with what is known about its themes.

    ``positives`` are themes known to apply, ``negatives`` themes known not to apply. Any theme in
    neither set is *unknown* for this passage and is left out of that theme's training data:
    a person who confirmed one tag on a passage has said nothing about the other 26 themes.
    """

    text: str
    positives: frozenset[str] = field(default_factory=frozenset)
    negatives: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "positives", frozenset(self.positives))
        object.__setattr__(self, "negatives", frozenset(self.negatives))
        clash = self.positives & self.negatives
        if clash:
            raise ValueError(f"themes both positive and negative: {sorted(clash)}")


# --------------------------------------------------------------------------- hashing


def labels_hash(
    texts: Sequence[str],
    label_sets: Sequence[Iterable[str]],
    negative_sets: Sequence[Iterable[str]] | None = None,
) -> str:
    """Stable fingerprint of a training set, independent of example order.

    Order-independent because re-reading the same labels in another order must not trigger a
    retrain; negatives are part of it because a new human rejection changes what the model learns.
    """
    if len(texts) != len(label_sets):
        raise ValueError("texts and label_sets differ in length")
    negs = negative_sets if negative_sets is not None else [None] * len(texts)
    lines = []
    for text, pos, neg in zip(texts, label_sets, negs, strict=True):
        neg_part = "*" if neg is None else ",".join(sorted(neg))
        lines.append(f"{text}\x1f{','.join(sorted(pos))}\x1f{neg_part}")
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()


def examples_hash(examples: Sequence[LabelledExample]) -> str:
    """:func:`labels_hash` of :class:`LabelledExample` items, after merging duplicates."""
    merged = merge_examples(examples)
    return labels_hash(
        [e.text for e in merged], [e.positives for e in merged], [e.negatives for e in merged]
    )


def merge_examples(examples: Sequence[LabelledExample]) -> list[LabelledExample]:
    """Merge examples with the same (whitespace-normalised) text, later ones winning.

    Human feedback is passed after the training file, so a person's rejection of a theme that the
    training file lists as present overrides it (and a confirmation overrides a file negative).
    """
    merged: dict[str, tuple[str, set[str], set[str]]] = {}
    for ex in examples:
        key = " ".join(ex.text.split())
        text, pos, neg = merged.get(key, (ex.text, set(), set()))
        pos = (pos - ex.negatives) | ex.positives
        neg = (neg - ex.positives) | ex.negatives
        merged[key] = (text, pos, neg)
    return [LabelledExample(t, frozenset(p), frozenset(n)) for t, p, n in merged.values()]


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file, skipping blank lines."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def core_theme_ids(rows: Sequence[dict[str, Any]] | None = None) -> list[str]:
    """The core theme ids, taken from the bundled training file (which covers all 27)."""
    rows = rows if rows is not None else read_jsonl(_DATA_FILE)
    return sorted({t for r in rows for t in r["themes"]})


def load_training_passages(path: str | os.PathLike[str] | None = None) -> list[LabelledExample]:
    """The bundled fictional training passages as fully labelled examples.

    Every theme of the file's theme set that a passage does not list is recorded as a negative:
    the file was labelled against the whole core taxonomy (see ``nlp/data/README.md``).
    """
    rows = read_jsonl(path if path is not None else _DATA_FILE)
    all_ids = frozenset(core_theme_ids(rows))
    return [
        LabelledExample(r["text"], frozenset(r["themes"]), all_ids - frozenset(r["themes"]))
        for r in rows
    ]
