"""The passage-role classifier (nlp/roles.py): layout rules, the learned model, its data."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.roles import (
    ROLES,
    RoleInput,
    RoleModel,
    classify_roles,
    default_model,
    layout_role,
    load_training_set,
)


def test_training_set_covers_every_role() -> None:
    items, labels = load_training_set()
    assert len(items) == len(labels) >= 150
    for role in ROLES:
        assert labels.count(role) >= 10, role


def test_training_set_errors_name_the_file_and_group(tmp_path: Path) -> None:
    bad = tmp_path / "roles.yaml"
    bad.write_text("- role: preface\n  texts: ['x']\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"roles\.yaml: group 1: unknown role 'preface'"):
        load_training_set(bad)


@pytest.mark.parametrize(
    "text",
    ["Contents\tPage", "Our priorities for the year ahead\t41", "Learning from reviews ..... 12",
     "27", "Page 4 of 38"],
)  # fmt: skip
def test_page_furniture_and_contents_lines_are_front_matter_by_layout(text: str) -> None:
    decision = layout_role(RoleInput(text, position=0.02))
    assert decision is not None and decision.role == "front_matter" and decision.source == "layout"


def test_a_contents_like_line_deep_in_the_body_is_left_to_the_model() -> None:
    assert layout_role(RoleInput("Neglect Toolkit\t12", position=0.7, kind="table_row")) is None


HELD_OUT = [
    # Written for this test only (not in the training set).
    ("- 2. A 10-week-old baby was brought to hospital with a fractured skull and bruised "
     "cheeks; the father's account did not explain the injuries.", "annual_report",
     "Serious incidents", "case_synopsis"),
    ("The Partnership should ensure that every agency records who lives in the household and "
     "checks their history.", "lcspr", "Recommendations", "recommendation"),
    ("The review found that the school nurse's concerns were never shared with the GP.",
     "lcspr", "Findings", "finding"),
    ("Partner contributions to the budget for the year were £210,000 in total.",
     "annual_report", "Governance", "partnership_business"),
    ("It is my pleasure to introduce this year's report on behalf of all partners.",
     "annual_report", "Foreword", "front_matter"),
]  # fmt: skip


def test_the_model_reads_clear_cases_it_was_not_trained_on() -> None:
    items = [
        RoleInput(text, section_title=title, doc_kind=doc, position=0.4)
        for text, doc, title, _ in HELD_OUT
    ]
    decisions = classify_roles(items)
    right = sum(d.role == want for d, (*_, want) in zip(decisions, HELD_OUT, strict=True))
    assert right >= 4, [d.role for d in decisions]
    assert all(d.source == "model" and 0 < d.confidence <= 1 for d in decisions)


def test_confirmed_examples_change_the_model() -> None:
    items, labels = load_training_set()
    odd = RoleInput("Quarterly dashboard refreshed for the executive.", doc_kind="annual_report")
    before = default_model().predict([odd])[0][0]
    target = "other" if before != "other" else "action"
    model = RoleModel().fit(
        [*items, *[odd] * 6], [*labels, *[target] * 6], [1.0] * len(items) + [3.0] * 6
    )
    assert model.predict([odd])[0][0] == target


def test_unknown_roles_in_training_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown passage roles"):
        RoleModel().fit([RoleInput("a"), RoleInput("b")], ["finding", "preface"])


def test_one_decision_per_passage_in_order() -> None:
    items = [RoleInput("12", position=0.5), RoleInput("The review found gaps.", position=0.5)]
    decisions = classify_roles(items)
    assert len(decisions) == 2 and decisions[0].role == "front_matter"
    assert classify_roles([]) == []


# Shapes real PDF-extracted annual reports take (own writing, not in the training set): a case
# study typed in capitals, a budget table row, a theme listed as a bare bullet, a newsletter note
# about another area's review.
PDF_SHAPED = [
    ("CASE STUDY  REASON FOR INVOLVEMENT: SCHOOL REPORTED THAT M, AGED 12, HAD ARRIVED WITH A "
     "BLACK EYE TWICE IN ONE MONTH AND SAID HE WAS AFRAID TO GO HOME.", "case_synopsis"),
    ("Multi-agency training\t36,750\t33,120", "partnership_business"),
    ("- Missed opportunities to hear from the children themselves", "finding"),
    ("Easterby Vale's board has released its review of the death of a girl of sixteen; it "
     "concluded that her disclosures to three agencies were never put together.", "finding"),
]  # fmt: skip


def test_the_model_reads_pdf_shaped_passages() -> None:
    items = [RoleInput(text, doc_kind="annual_report", position=0.5) for text, _ in PDF_SHAPED]
    decisions = classify_roles(items)
    right = sum(d.role == want for d, (_, want) in zip(decisions, PDF_SHAPED, strict=True))
    assert right >= 3, [d.role for d in decisions]
