"""Tagger: evidence offsets, model combination, document roll-up and the matching algorithms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nlp.matching import MatchResult, matches, regex_spans
from nlp.tagger import Evidence, Tagger, TagResult, document_themes
from nlp.taxonomy import Pattern, Theme, load_taxonomy

STORY = (
    "Ava was a 10-week-old baby living with her mother.\n"
    "- The mother's new partner was not known to services.\n"
    "There were no concerns about drug use. Mother disclosed domestic abuse to the midwife."
)


class FakeModel:
    """Scores a theme 0.9 when a keyword is present, else 0.05 (stands in for nlp/classifier)."""

    theme_ids = ["neglect", "poverty-housing", "domestic-abuse"]
    thresholds = {"neglect": 0.6}
    keywords = {"neglect": "nappy", "poverty-housing": "rent", "domestic-abuse": "midwife"}

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return np.array(
            [
                [0.9 if self.keywords[t] in x.lower() else 0.05 for t in self.theme_ids]
                for x in texts
            ]
        )


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger(load_taxonomy())


def test_rules_only_tags_with_exact_evidence(tagger: Tagger) -> None:
    tags = {t.theme_id: t for t in tagger.tag(STORY)}
    assert {"under-1s", "hidden-men", "domestic-abuse"} <= set(tags)
    assert "substance-misuse" not in tags
    for tag in tags.values():
        assert tag.method == "rules" and 0.0 < tag.confidence <= 1.0 and tag.evidence
        for e in tag.evidence:
            assert STORY[e.start : e.end] == e.text
    assert tags["hidden-men"].evidence[0].text == (
        "- The mother's new partner was not known to services."
    )
    assert tags["domestic-abuse"].evidence[0].text == (
        "Mother disclosed domestic abuse to the midwife."
    )


def test_tag_many_equals_tag(tagger: Tagger) -> None:
    texts = [STORY, "Nothing of note.", "", "Neglect featured throughout."]
    many = tagger.tag_many(texts)
    assert many == [tagger.tag(t) for t in texts]
    assert many[1] == [] and many[2] == []


def test_model_adds_recall_with_evidence_from_best_sentence() -> None:
    tagger = Tagger(load_taxonomy(), model=FakeModel())
    text = (
        "The flat was cold. Rent arrears grew. "
        "There was no evidence of neglect in the nappy checks."
    )
    tags = {t.theme_id: t for t in tagger.tag(text)}
    # poverty: rules and model agree
    assert tags["poverty-housing"].method == "rules+model"
    assert tags["poverty-housing"].confidence >= 0.9
    # neglect: model fires, but its only candidate sentence is negated -> no tag without evidence
    assert "neglect" not in tags


def test_model_only_tag_uses_highest_scoring_sentence() -> None:
    tagger = Tagger(load_taxonomy(), model=FakeModel())
    text = "The family were seen weekly. Her nappy had not been changed for a day."
    tags = {t.theme_id: t for t in tagger.tag(text)}
    neglect = tags["neglect"]
    assert neglect.method == "model" and neglect.confidence == pytest.approx(0.9)
    (evidence,) = neglect.evidence
    assert evidence.text == "Her nappy had not been changed for a day."
    assert text[evidence.start : evidence.end] == evidence.text


def test_model_alone_needs_the_floor_not_just_its_tuned_threshold() -> None:
    """0.9 clears neglect's tuned 0.6 threshold; with a 0.95 floor the model adds nothing."""
    text = "The family were seen weekly. Her nappy had not been changed for a day."
    strict = Tagger(load_taxonomy(), model=FakeModel(), model_only_floor=0.95)
    assert "neglect" not in {t.theme_id for t in strict.tag(text)}
    # rule hits are unaffected: the model still confirms them
    rent = "Rent arrears grew and the family were evicted."
    tags = {t.theme_id: t for t in strict.tag(rent)}
    assert tags["poverty-housing"].method == "rules+model"


def test_document_themes_rolls_up_and_shifts_offsets() -> None:
    a = [TagResult("neglect", "Neglect", 0.6, "rules", [Evidence("x", 0, 1)])]
    b = [TagResult("neglect", "Neglect", 0.8, "model", [Evidence("y", 2, 3)])]
    (doc_tag,) = document_themes([a, b], offsets=[0, 100])
    assert doc_tag.confidence == 0.8 and doc_tag.method == "rules+model"
    assert [(e.start, e.end) for e in doc_tag.evidence] == [(0, 1), (102, 103)]
    assert a[0].evidence[0].start == 0  # inputs untouched


def theme(algorithm: str, *phrases: str, regexes: tuple[str, ...] = ()) -> Theme:
    patterns = tuple(Pattern("phrase", p) for p in phrases) + tuple(
        Pattern("regex", r) for r in regexes
    )
    return Theme(id="t", label="T", group="g", algorithm=algorithm, patterns=patterns)


@pytest.mark.parametrize(
    ("algorithm", "phrases", "text", "expected"),
    [
        ("any", ("foster", "kinship care"), "Placed in Kinship  care by the court.", True),
        ("any", ("foster",), "Fosterage was discussed.", False),
        ("all", ("foster", "carer"), "The foster carer called.", True),
        ("all", ("foster", "carer"), "The foster family called.", False),
        ("literal", ("Private Fostering",), "private fostering", False),
        ("literal", ("Private Fostering",), "A Private Fostering notice.", True),
        ("fuzzy", ("private fostering",), "privat fostring arrangement", True),
        ("fuzzy", ("private fostering",), "public housing", False),
        ("auto", ("anything",), "anything", False),
    ],
)
def test_matching_algorithms(
    algorithm: str, phrases: tuple[str, ...], text: str, expected: bool
) -> None:
    result = matches(theme(algorithm, *phrases), text)
    assert isinstance(result, MatchResult) and result.matched is expected and result.reason
    for start, end in result.spans:
        assert 0 <= start < end <= len(text)


def test_regex_algorithm_and_spans() -> None:
    result = matches(theme("regex", regexes=(r"\bS\.?47\b",)), "A s47 enquiry and an S.47.")
    assert result.matched and len(result.spans) == 2


def test_rules_algorithm_through_matches() -> None:
    neglect = load_taxonomy()["neglect"]
    text = "Cumulative neglect was missed."
    result = matches(neglect, text)
    assert result.matched and text[slice(*result.spans[0])] == text
    assert not matches(neglect, "There was no evidence of neglect.").matched


def test_hostile_regex_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nlp.regexes.REGEX_TIMEOUT_SECONDS", 0.05)
    hostile = theme("regex", regexes=(r"(a|aa)+$",))
    text = "a" * 40 + "!"
    with pytest.raises(TimeoutError):
        regex_spans(r"(a|aa)+$", text)
    result = matches(hostile, text)
    assert not result.matched and "timed out" in result.reason


def test_partnership_theme_with_simple_algorithm_is_tagged(tmp_path: Path) -> None:
    extra = tmp_path / "local.yaml"
    extra.write_text(
        "themes:\n  - {id: local-pf, group: context, label: Private fostering, match: any, "
        "patterns: [private fostering]}\n",
        encoding="utf-8",
    )
    tagger = Tagger(load_taxonomy(extra=[extra]))
    text = "She lived in a private fostering arrangement. No private fostering checks were made."
    (tag,) = [t for t in tagger.tag(text) if t.theme_id == "local-pf"]
    assert [e.text for e in tag.evidence] == ["She lived in a private fostering arrangement."]
