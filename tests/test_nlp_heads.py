"""Theme heads over sentence vectors: fitting with masks, the weights-only file, the tagger's use
of them (evidence sentence, negation), quote matching, and document-level evaluation with folds.

Vectors come from a tiny deterministic bag-of-keywords "encoder", so nothing here loads torch;
every sentence and document is fictional, written for these tests.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nlp.evaluate import (
    evaluate_documents,
    load_document_gold,
    prepare_documents,
    score_tagger_on_documents,
)
from nlp.head_training import (
    PreparedDocument,
    VectorCache,
    document_units,
    holds_quote,
    labelled_units,
    matrices,
    quote_parts,
    train_heads,
    tune_thresholds,
)
from nlp.heads import NEVER, HeadsFormatError, ThemeHeads
from nlp.tagger import Tagger
from nlp.taxonomy import load_taxonomy

KEYWORDS = ["rent", "arrears", "evicted", "lodger", "garden", "football", "weather", "tea"]
THEMES = ["poverty-housing", "covid-19"]


def fake_embed(texts: list[str]) -> np.ndarray:
    """Keyword counts plus a constant, unit length: close texts share keywords."""
    out = np.zeros((len(texts), len(KEYWORDS) + 1), dtype=np.float32)
    for i, text in enumerate(texts):
        lower = text.lower()
        out[i, :-1] = [lower.count(k) for k in KEYWORDS]
        out[i, -1] = 0.5
    return out / np.linalg.norm(out, axis=1, keepdims=True)


MONEY = [
    "The family were behind with the rent for months.",
    "Rent arrears built up over the winter.",
    "They were evicted after the arrears grew.",
    "The landlord threatened eviction over unpaid rent.",
    "Arrears on the rent were never discussed at the visit.",
]
OTHER = [
    "The boy enjoyed football on Saturdays.",
    "The garden was tidy and well kept.",
    "The weather was cold during the visit.",
    "Mother offered the social worker a cup of tea.",
    "The lodger was away for the weekend.",
    "They talked about football and the garden.",
]


def fitted_heads() -> ThemeHeads:
    units = labelled_units([(t, ["poverty-housing"]) for t in MONEY], THEMES)
    units += labelled_units([(t, []) for t in OTHER], THEMES)
    y, known = matrices(units, THEMES)
    heads = ThemeHeads.fit(fake_embed([u.text for u in units]), y, known, THEMES, c=10.0)
    heads.thresholds = np.array([0.5, NEVER], dtype=np.float32)
    return heads


def test_heads_learn_and_skip_themes_without_positives() -> None:
    heads = fitted_heads()
    scores = heads.scores(fake_embed(["Unpaid rent and arrears again.", "Football and tea."]))
    assert scores[0, 0] > 0.5 > scores[1, 0]
    assert np.all(scores[:, 1] == 0.0)  # covid-19 had no positives: no head, never scores


def test_unknown_labels_are_left_out_of_training() -> None:
    units = labelled_units([(MONEY[0], ["poverty-housing"])], THEMES)
    units[0].negatives.discard("covid-19")
    y, known = matrices(units, THEMES)
    assert y[0].tolist() == [1, 0] and known[0].tolist() == [True, False]


def test_file_is_weights_only_and_round_trips(tmp_path: Path) -> None:
    heads = fitted_heads()
    heads.embedder_id = "fake-encoder"
    path = heads.save(tmp_path / "heads.npz")
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
    assert names == sorted(
        f"{n}.npy"
        for n in ("format_version", "theme_ids", "weights", "bias", "thresholds", "embedder_id")
    )
    loaded = ThemeHeads.load(path)
    assert loaded.theme_ids == THEMES and loaded.embedder_id == "fake-encoder"
    assert np.allclose(loaded.weights, heads.weights)
    assert loaded.threshold("covid-19") == pytest.approx(NEVER)
    assert loaded.fingerprint() == heads.fingerprint()


def test_bad_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(HeadsFormatError, match="junk.npz"):
        ThemeHeads.load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, format_version=np.array(99))
    with pytest.raises(HeadsFormatError, match="format 99"):
        ThemeHeads.load(other)


def test_tagger_adds_model_tag_with_evidence_sentence() -> None:
    tagger = Tagger(load_taxonomy(), heads=fitted_heads(), embed=fake_embed)
    text = "The visit was on a Tuesday afternoon. Rent arrears had grown and the landlord wrote."
    (tag,) = [t for t in tagger.tag(text) if t.theme_id == "poverty-housing"]
    assert tag.method in {"model", "rules+model"}
    evidence = [e for e in tag.evidence if "Rent arrears" in e.text]
    assert evidence and text[evidence[0].start : evidence[0].end] == evidence[0].text
    assert Tagger(load_taxonomy(), heads=fitted_heads(), embed=None).heads is None


def test_negated_sentence_is_never_heads_evidence() -> None:
    tagger = Tagger(load_taxonomy(), heads=fitted_heads(), embed=fake_embed)
    docs, rules = tagger.parse_and_match(["There were no concerns about rent arrears or debt."])
    best = tagger.head_scores(docs, rules)
    assert "poverty-housing" not in best.get(0, {})


def test_quotes_match_sentences_by_their_words() -> None:
    assert quote_parts("first part here ... second part here (annotator note)") == [
        "first part here",
        "second part here",
    ]
    assert holds_quote("In May the family were behind with the rent again.", "behind with the rent")
    assert not holds_quote("The garden was tidy.", "behind with the rent")


def _doc(key: str, themes: set[str], sentences: list[str], why=None, hard=None, rules=None):
    return PreparedDocument(
        key,
        frozenset(themes),
        why or {},
        hard or {},
        [(s, frozenset()) for s in sentences],
        rules or {},
    )


def test_document_units_use_quotes_absence_and_hard_negatives() -> None:
    doc = _doc(
        "a",
        {"poverty-housing"},
        ["Rent arrears grew all winter.", "The boy liked football."],
        why={"poverty-housing": "Rent arrears grew"},
        hard={"covid-19": "the boy liked football (not the pandemic)"},
    )
    units = document_units(doc, THEMES)
    first, second = units[0], units[1]
    assert first.positives == {"poverty-housing"} and "covid-19" in first.negatives
    assert "poverty-housing" not in second.negatives  # unknown: not the quoted sentence
    assert "covid-19" in second.negatives
    assert any(u.text == "Rent arrears grew" and u.positives for u in units)


def money_docs() -> list[PreparedDocument]:
    docs = []
    for n in range(10):
        money = n % 2 == 0
        sentence = MONEY[n % len(MONEY)] if money else OTHER[n % len(OTHER)]
        docs.append(
            _doc(
                f"doc{n}",
                {"poverty-housing"} if money else set(),
                [sentence, OTHER[(n + 1) % len(OTHER)]],
                why={"poverty-housing": sentence} if money else None,
            )
        )
    return docs


def test_thresholds_need_precise_gains_over_the_rules() -> None:
    docs = money_docs()
    perfect = np.array([[0.9 if "poverty-housing" in d.themes else 0.1, 0.0] for d in docs])
    assert tune_thresholds(docs, perfect, THEMES)[0] < NEVER
    noisy = np.array([[0.9, 0.0] for _ in docs])
    assert tune_thresholds(docs, noisy, THEMES)[0] == NEVER  # additions mostly wrong


def test_cross_validated_document_evaluation_never_scores_the_fit() -> None:
    docs = money_docs()
    vectors = VectorCache(fake_embed)
    result = evaluate_documents(docs, THEMES, method="heads", folds=5, vectors=vectors)
    assert set(result.predictions) == {d.key for d in docs}
    assert result.scores["themes"]["poverty-housing"]["support"] == 5
    rules = evaluate_documents(docs, THEMES, method="rules")
    assert rules.scores["micro"]["recall"] == 0.0
    assert {m["theme"] for row in rules.confusion for m in row["misses"]} == {"poverty-housing"}
    heads = train_heads(docs, [], vectors, THEMES, inner_folds=4)
    assert heads.theme_ids == THEMES


def test_document_gold_resolves_files_and_reports_bad_rows(tmp_path: Path) -> None:
    folder = tmp_path / "docs-gold"
    folder.mkdir()
    (folder / "one.txt").write_text(
        "The family fell behind with the rent and were evicted in March.\n\n"
        "Nobody asked the child what life at home was like.\n",
        encoding="utf-8",
    )
    gold = tmp_path / "docs-gold.jsonl"
    gold.write_text(
        json.dumps({"file": "one.txt", "themes": ["poverty-housing", "voice-of-child"]}) + "\n",
        encoding="utf-8",
    )
    (item,) = load_document_gold(gold)
    assert item.path == folder / "one.txt"
    tagger = Tagger(load_taxonomy())

    def passages_of(path: Path) -> list[tuple[int, str]]:
        text = path.read_text(encoding="utf-8")
        return [(text.index(p), p) for p in text.split("\n\n") if p.strip()]

    prepared = prepare_documents([item], passages_of, tagger)
    result = score_tagger_on_documents(prepared, [item], passages_of, tagger)
    assert result.scores["themes"]["poverty-housing"]["recall"] == 1.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"file": "missing.txt", "themes": []}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:1.*missing.txt"):
        load_document_gold(bad)
