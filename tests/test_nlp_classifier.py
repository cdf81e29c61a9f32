"""Tests for the learned theme model (``nlp.classifier``).

Small fictional data only; nothing here reads the shared gold folder or loads torch.
"""

from __future__ import annotations

import json
import os
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from nlp import classifier as clf
from nlp import model_file, training_data
from nlp.classifier import ThemeClassifier, train_from_examples
from nlp.model_file import FORMAT_VERSION, ModelFormatError, needs_retraining
from nlp.training_data import LabelledExample, labels_hash, load_training_passages

CORE_IDS = {
    "under-1s", "non-accidental-injury", "neglect", "sexual-abuse", "child-exploitation",
    "online-harm", "peer-violence", "suicide-self-harm", "child-mental-health",
    "disability-complex-needs", "missing-education", "domestic-abuse", "parental-mental-health",
    "substance-misuse", "hidden-men", "parental-history", "culture-ethnicity", "poverty-housing",
    "information-sharing", "thresholds-procedures", "professional-curiosity", "voice-of-child",
    "think-family-transition", "cross-border", "was-not-brought", "sudi-safe-sleep", "covid-19",
}  # fmt: skip

_BABY = [
    "The {n}-week-old baby was seen by the health visitor at home.",
    "Baby {n} was born prematurely and spent time on the neonatal unit.",
    "The midwife saw the pregnant mother at {n} weeks for a booking appointment.",
    "The newborn infant {n} was discharged home from maternity with her mother.",
]
_SCHOOL = [
    "The {n}-year-old missed school and the attendance officer visited the family home.",
    "Child {n} was excluded from school and attended a pupil referral unit part time.",
    "The teenager {n} was removed from the school roll to be home educated.",
    "School {n} reported that the pupil had not attended lessons for many weeks.",
]


def _toy_data() -> tuple[list[str], list[set[str]]]:
    """Two clearly separable themes plus a few passages about neither."""
    texts, labels = [], []
    for n in range(1, 13):
        for tpl in _BABY:
            texts.append(tpl.format(n=n))
            labels.append({"under-1s"})
        for tpl in _SCHOOL:
            texts.append(tpl.format(n=n + 10))
            labels.append({"missing-education"})
    for n in range(10):
        texts.append(f"The partnership board met in room {n} and agreed the annual budget.")
        labels.append(set())
    return texts, labels


THEMES = ["missing-education", "under-1s"]


@pytest.fixture(scope="module")
def toy_model() -> ThemeClassifier:
    texts, labels = _toy_data()
    return ThemeClassifier().fit(texts, labels, THEMES)


def test_learns_a_separable_theme(toy_model: ThemeClassifier) -> None:
    preds = toy_model.predict(
        [
            "A 6-week-old baby was taken to hospital by her mother.",
            "The pupil was excluded from school and did not attend for weeks.",
            "The board agreed the budget for next year.",
        ]
    )
    assert "under-1s" in preds[0] and "missing-education" not in preds[0]
    assert "missing-education" in preds[1] and "under-1s" not in preds[1]
    assert preds[2] == set()


def test_predict_proba_shape_and_columns(toy_model: ThemeClassifier) -> None:
    probs = toy_model.predict_proba(["a newborn baby", "excluded from school", "x"])
    assert probs.shape == (3, 2)
    assert toy_model.theme_ids == THEMES
    assert np.all((probs >= 0) & (probs <= 1))
    assert probs[0, 1] > probs[0, 0] and probs[1, 0] > probs[1, 1]
    assert toy_model.predict_proba([]).shape == (0, 2)


def test_thresholds_in_range(toy_model: ThemeClassifier) -> None:
    assert set(toy_model.thresholds) == set(THEMES)
    for value in toy_model.thresholds.values():
        assert clf.THRESHOLD_FLOOR <= value <= clf.THRESHOLD_CEILING


def test_rare_theme_gets_default_threshold() -> None:
    texts, labels = _toy_data()
    texts += ["A child was seen alone and her wishes were recorded.", "Child voice was heard."]
    labels += [{"voice-of-child"}, {"voice-of-child"}]
    model = ThemeClassifier().fit(texts, labels, [*THEMES, "voice-of-child", "covid-19"])
    assert model.thresholds["voice-of-child"] == clf.DEFAULT_THRESHOLD
    # a theme with no positives has no model and never fires
    assert model.thresholds["covid-19"] == clf.DEFAULT_THRESHOLD
    assert np.all(model.predict_proba(texts)[:, 3] == 0.0)


def test_best_f1_threshold_is_clipped() -> None:
    scores = np.array([0.01, 0.02, 0.03, 0.99])
    y = np.array([0, 0, 0, 1])
    assert clf.THRESHOLD_FLOOR <= clf.best_f1_threshold(scores, y) <= clf.THRESHOLD_CEILING
    scores = np.array([0.02, 0.03, 0.04, 0.05])
    y = np.array([0, 1, 1, 1])
    assert clf.best_f1_threshold(scores, y) >= clf.THRESHOLD_FLOOR


def test_labels_outside_theme_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="not in theme_ids"):
        ThemeClassifier().fit(["a", "b"], [{"neglect"}, set()], ["under-1s"])


def test_save_load_round_trip(toy_model: ThemeClassifier, tmp_path: Path) -> None:
    path = toy_model.save(tmp_path / "model.pkl")
    loaded = ThemeClassifier.load(path)
    texts = ["A 3-week-old baby", "excluded from school", "nothing at all"]
    assert np.array_equal(loaded.predict_proba(texts), toy_model.predict_proba(texts))
    assert loaded.thresholds == toy_model.thresholds
    assert loaded.theme_ids == toy_model.theme_ids
    header = model_file.read_header(path)
    assert header["format_version"] == FORMAT_VERSION
    assert header["theme_ids"] == THEMES
    assert header["n_examples"] == 106
    assert {"sklearn_version", "labels_hash", "trained_at"} <= set(header)


def test_atomic_save_leaves_no_temp_files(toy_model: ThemeClassifier, tmp_path: Path) -> None:
    toy_model.save(tmp_path / "model.pkl")
    toy_model.save(tmp_path / "model.pkl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pkl"]


@pytest.mark.parametrize("fail_at", ["write", "replace"])
def test_failed_save_keeps_old_model(
    toy_model: ThemeClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    path = tmp_path / "model.pkl"
    toy_model.save(path)
    before = path.read_bytes()

    def boom(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    if fail_at == "write":
        monkeypatch.setattr(model_file, "_write_payload", boom)
    else:
        monkeypatch.setattr(model_file.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        toy_model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pkl"]
    ThemeClassifier.load(path)


def test_other_format_version_is_refused(toy_model: ThemeClassifier, tmp_path: Path) -> None:
    path = tmp_path / "old.pkl"
    header = {**toy_model.header, "format_version": FORMAT_VERSION + 1}
    with open(path, "wb") as fh:
        model_file._write_payload(fh, header, toy_model._state())
    with pytest.raises(ModelFormatError, match="format version"):
        ThemeClassifier.load(path)
    texts, labels = _toy_data()
    assert needs_retraining(path, texts, labels)


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(ModelFormatError):
        ThemeClassifier.load(path)
    path.write_bytes(pickle.dumps(["a", "list"]))
    with pytest.raises(ModelFormatError):
        ThemeClassifier.load(path)


def test_needs_retraining_flips_only_on_label_change(
    toy_model: ThemeClassifier, tmp_path: Path
) -> None:
    texts, labels = _toy_data()
    path = tmp_path / "model.pkl"
    assert needs_retraining(path, texts, labels)  # no file yet
    toy_model.save(path)
    assert not needs_retraining(path, texts, labels)
    # order and set representation do not matter
    assert not needs_retraining(path, texts[::-1], [sorted(s) for s in labels[::-1]])
    assert not needs_retraining(path, texts, labels, theme_ids=THEMES)
    changed = [set(s) for s in labels]
    changed[0] = {"under-1s", "missing-education"}
    assert needs_retraining(path, texts, changed)
    assert needs_retraining(path, [*texts, "a new passage"], [*labels, set()])
    assert needs_retraining(path, texts, labels, theme_ids=[*THEMES, "neglect"])


def test_labels_hash_sees_negatives() -> None:
    texts, labels = ["a", "b"], [{"neglect"}, set()]
    assert labels_hash(texts, labels) == labels_hash(texts[::-1], labels[::-1])
    assert labels_hash(texts, labels) != labels_hash(texts, labels, [set(), {"neglect"}])


def test_labelled_example_rejects_contradiction() -> None:
    with pytest.raises(ValueError):
        LabelledExample("text", frozenset({"neglect"}), frozenset({"neglect"}))


def _exploitation_examples() -> list[LabelledExample]:
    """'county lines' passages confirmed as exploitation, and others unlabelled for it."""
    out = []
    for n in range(12):
        out.append(
            LabelledExample(
                f"Child {n} was found running county lines for a gang.",
                frozenset({"child-exploitation"}),
                frozenset({"neglect"}),
            )
        )
        out.append(
            LabelledExample(
                f"Home {n} was dirty and the children were hungry.",
                frozenset({"neglect"}),
                frozenset({"child-exploitation"}),
            )
        )
    return out


def test_rejected_tags_act_as_negatives() -> None:
    base = _exploitation_examples()
    phrase = "The youth worker ran a county lines awareness session in school {n}."
    # Without feedback the model calls the awareness session exploitation ...
    model = train_from_examples(base, theme_ids=["child-exploitation", "neglect"])
    j = model.theme_ids.index("child-exploitation")
    probe = phrase.format(n=99)
    before = model.predict_proba([probe])[0, j]
    # ... a person rejects that tag on a dozen such passages: those become known negatives.
    rejected = [
        LabelledExample(phrase.format(n=n), frozenset(), frozenset({"child-exploitation"}))
        for n in range(12)
    ]
    retrained = train_from_examples(base + rejected, theme_ids=["child-exploitation", "neglect"])
    after = retrained.predict_proba([probe])[0, j]
    assert after < before
    assert "child-exploitation" not in retrained.predict([probe])[0]


def test_unknown_themes_are_not_negatives() -> None:
    """A passage with only a confirmed tag says nothing about the other themes."""
    texts, labels = _toy_data()
    examples = [
        LabelledExample(t, frozenset(s), frozenset(set(THEMES) - s))
        for t, s in zip(texts, labels, strict=True)
    ]
    # confirmed "under-1s" only: unknown for missing-education, so it must not be a negative
    extra = [
        LabelledExample(f"The baby was excluded from school {n}.", frozenset({"under-1s"}))
        for n in range(6)
    ]
    y, known = clf._label_matrices(
        [set(e.positives) for e in examples + extra],
        [set(e.negatives) for e in examples + extra],
        THEMES,
    )
    assert not known[-1, THEMES.index("missing-education")]
    assert known[-1, THEMES.index("under-1s")] and y[-1, THEMES.index("under-1s")] == 1
    model = train_from_examples(examples + extra, theme_ids=THEMES)
    assert "missing-education" in model.predict(["The pupil was excluded from school."])[0]


def test_human_rejection_overrides_training_file_label() -> None:
    merged = training_data.merge_examples(
        [
            LabelledExample(
                "Same  text", frozenset({"neglect", "under-1s"}), frozenset({"covid-19"})
            ),
            LabelledExample("Same text", frozenset(), frozenset({"neglect"})),
        ]
    )
    assert len(merged) == 1
    assert merged[0].positives == {"under-1s"}
    assert merged[0].negatives == {"neglect", "covid-19"}


def test_embeddings_callable_is_used_and_required(tmp_path: Path) -> None:
    texts, labels = _toy_data()
    calls: list[int] = []

    def fake_embed(batch: list[str]) -> np.ndarray:
        calls.append(len(batch))
        return np.array([[len(t) % 7 + 1.0, ("baby" in t) * 1.0, 1.0] for t in batch])

    model = ThemeClassifier(embed=fake_embed).fit(texts, labels, THEMES)
    assert calls and model.header["uses_embeddings"] and model.header["embedding_dim"] == 3
    path = model.save(tmp_path / "emb.pkl")
    with pytest.raises(ModelFormatError, match="embed"):
        ThemeClassifier.load(path)
    loaded = ThemeClassifier.load(path, embed=fake_embed)
    assert np.array_equal(loaded.predict_proba(texts[:5]), model.predict_proba(texts[:5]))


def test_split_segments() -> None:
    text = "Key issues:\n- Parents were not seen for months.\n- Baby slept on the sofa at night."
    assert clf.split_segments(text) == [
        "Parents were not seen for months.",
        "Baby slept on the sofa at night.",
    ]


# ----------------------------------------------------------------- bundled training file


def _bundled_rows() -> list[dict]:
    path = Path(training_data.__file__).parent / "data" / "training_passages.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_bundled_training_file_is_valid() -> None:
    rows = _bundled_rows()
    assert len(rows) >= 450
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    assert len({r["text"] for r in rows}) == len(rows)
    counts: Counter[str] = Counter()
    for row in rows:
        assert set(row) == {"id", "text", "themes", "origin"}
        assert row["origin"] == "synthetic"
        assert row["themes"] == sorted(set(row["themes"]))
        assert set(row["themes"]) <= CORE_IDS
        assert row["text"].strip()
        counts.update(row["themes"])
    assert set(counts) == CORE_IDS
    assert min(counts.values()) >= 15, counts.most_common()[-3:]
    assert sum(1 for r in rows if len(r["themes"]) >= 2) >= 150
    assert sum(1 for r in rows if not r["themes"]) >= 20  # hard negatives


def test_load_training_passages_is_fully_labelled() -> None:
    examples = load_training_passages()
    assert len(examples) == len(_bundled_rows())
    for ex in examples:
        assert ex.positives | ex.negatives == CORE_IDS
        assert not ex.positives & ex.negatives
    assert training_data.core_theme_ids() == sorted(CORE_IDS)


def test_train_from_examples_default_theme_ids(tmp_path: Path) -> None:
    rows = _bundled_rows()[:120]
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    examples = load_training_passages(path)
    model = train_from_examples(examples)
    present = {t for r in rows for t in r["themes"]}
    assert set(model.theme_ids) == present
    assert model.predict_proba([rows[0]["text"]]).shape == (1, len(present))
    assert os.path.exists(path)
