"""The passage-role classifier (nlp/roles.py): layout rules, the learned model, its data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corpus.document import ExtractedDocument
from corpus.passage_layout import LayoutIndex
from corpus.segment import segment
from nlp.roles import (
    ROLES,
    UNQUOTABLE_ROLES,
    RoleInput,
    RoleModel,
    classify_roles,
    decide,
    default_model,
    layout_role,
    load_training_set,
    smooth_lists,
)
from nlp.roles_features import Unit, layout_tokens, lead_of


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


# --------------------------------------------------------------------------- lead-ins and lists


def test_a_list_item_looks_past_its_list_to_the_sentence_that_introduces_it() -> None:
    before = [  # backwards from the item, as lead_of reads them
        Unit(300, "- Fathers were rarely seen.", "list_item"),
        Unit(250, "- Plans drifted.", "list_item"),
        Unit(120, "The review ran for six months. Its findings were:", "paragraph"),
        Unit(100, "Child K", "heading"),
    ]
    assert lead_of("list_item", before) == ("Its findings were:", 120)


def test_a_paragraph_has_a_lead_in_only_after_a_colon_and_a_heading_stops_the_search() -> None:
    colon = [Unit(40, "The statutory guidance puts it this way:", "paragraph")]
    assert lead_of("paragraph", colon) == ("The statutory guidance puts it this way:", 40)
    assert lead_of("paragraph", [Unit(40, "Partners met four times.", "paragraph")]) == ("", -1)
    assert lead_of("list_item", [Unit(10, "Findings", "heading")]) == ("", 10)


def test_layout_index_gives_each_list_item_of_a_segmented_document_its_lead_in() -> None:
    text = (
        "Learning from audits\n\n"
        "The partnership audited forty cases this year. Areas for further development are:\n\n"
        "- Recording the child's own words in every assessment.\n"
        "- Inviting fathers to every core group meeting.\n"
    )
    doc = ExtractedDocument(path=Path("fictional.txt"), format="txt", text=text, sha256="0")
    inputs = LayoutIndex(len(text), segment(doc), "annual_report").passage_inputs()
    items = [i for i in inputs if i.kind == "list_item"]
    assert len(items) == 2
    assert {i.lead for i in items} == {"Areas for further development are:"}
    assert items[0].run == items[1].run >= 0


def test_the_lead_in_decides_what_a_bare_list_item_is() -> None:
    # A bare topic says nothing by itself; the sentence above the list says what it is.
    def role(lead: str) -> str:
        item = RoleInput("- Domestic abuse", kind="list_item", lead=lead, run=1, position=0.6)
        return classify_roles([item])[0].role

    assert role("Case file audits were completed this year on the following topics:") == (
        "partnership_business"
    )
    assert role("The learning identified across this year's reviews was:") == "finding"


def test_list_smoothing_pulls_items_of_one_list_towards_their_mean() -> None:
    items = [RoleInput(f"- item {n}", kind="list_item", lead="These were:", run=5) for n in (1, 2)]
    alone = RoleInput("- item 3", kind="list_item", lead="These were:", run=9)
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.9, 0.1]])
    smoothed = smooth_lists([*items, alone], probs)
    assert np.allclose(smoothed[0], [0.7, 0.3]) and np.allclose(smoothed[1], [0.3, 0.7])
    assert np.allclose(smoothed[2], probs[2])  # a list of one is left alone


# --------------------------------------------------------------------------- abstention

CLASSES = list(ROLES)


def _row(**probs: float) -> np.ndarray:
    return np.array([probs.get(role, 0.0) for role in CLASSES])


def test_an_unsure_unquotable_role_yields_to_the_best_quotable_role() -> None:
    # Business by a hair over an action: the action is chosen, not the front matter behind it.
    row = _row(partnership_business=0.34, front_matter=0.33, action=0.31, other=0.02)
    assert CLASSES[decide(row, CLASSES, margin=0.05)] == "action"
    assert CLASSES[decide(row, CLASSES, margin=0.0)] == "partnership_business"


def test_a_clear_unquotable_role_and_any_quotable_role_are_kept() -> None:
    clear = _row(front_matter=0.6, finding=0.3, other=0.1)
    assert CLASSES[decide(clear, CLASSES, margin=0.05)] == "front_matter"
    close = _row(finding=0.36, recommendation=0.34, partnership_business=0.3)
    assert CLASSES[decide(close, CLASSES, margin=0.05)] == "finding"


def test_classify_roles_applies_the_margin_the_caller_gives() -> None:
    text = "The subgroup met four times and agreed its terms of reference and budget."
    item = RoleInput(text, doc_kind="annual_report", position=0.3)
    model = default_model()
    assert classify_roles([item], model, margin=0.0)[0].role == "partnership_business"
    assert classify_roles([item], model, margin=1.0)[0].role not in UNQUOTABLE_ROLES


# --------------------------------------------------------------------------- wording cues


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("\u201cEvery practitioner shares the duty to protect children.\u201d", "__quote"),
        ("Parental substance misuse\t9/12", "__fraction"),
        ("^{4} Source: local census data", "__source"),
        ("- Rolled out a crying-baby programme to all new parents.", "__start_past"),
        ("- Escalation policy reviewed with schools (completed in May)", "__done"),
        ("We have now introduced joint visits with the police.", "__we_did"),
        ("05 Harrowdale Business Plan 2024/25", "__title_line"),
    ],
)
def test_wording_cues_become_pseudo_words(text: str, cue: str) -> None:
    assert cue in layout_tokens(RoleInput(text)).split()


def test_fictional_passages_of_every_role_are_read_right() -> None:
    cases = [  # written for this test; none is in the training set
        ("Welcome to our winter newsletter, with news from across the partnership.",
         "", "", 0.01, "front_matter"),
        ("- 7th February: Neglect awareness workshop (half day, places available)",
         "Training on offer this term:", "", 0.8, "partnership_business"),
        ("- 2. A 5-month-old baby admitted with a fractured leg; the parents' accounts differed. "
         "The panel agreed a local review was needed.",
         "The rapid reviews held this year were:", "", 0.3, "case_synopsis"),
        ("- Agencies did not share what they knew about the mother's new partner.",
         "The review identified the following learning:", "", 0.5, "finding"),
        ("- Make sure that every strategy discussion includes the child's school.",
         "Areas for further development are:", "", 0.8, "recommendation"),
        ("- Developed a joint protocol with the hospital for bruising in babies who are not "
         "yet mobile.", "What we did:", "", 0.5, "action"),
        ("- A school nurse who visited the family at home when the child stopped coming in.",
         "The audit found examples of good practice, including:", "", 0.5, "good_practice"),
        ("Harrowdale is a mostly urban borough; about one in four of its children live in "
         "low-income households.", "", "Our area", 0.1, "other"),
    ]  # fmt: skip
    items = [
        RoleInput(text, section_title=title, kind="list_item" if text.startswith("-") else
                  "paragraph", lead=lead, run=n if lead else -1, position=pos,
                  doc_kind="annual_report")
        for n, (text, lead, title, pos, _) in enumerate(cases)
    ]  # fmt: skip
    got = [d.role for d in classify_roles(items)]
    right = sum(g == want for g, (*_, want) in zip(got, cases, strict=True))
    assert right >= 7, got
