"""Segmentation, section kinds and sentence spans, on fictional review text."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.document import ExtractedDocument
from corpus.readers import read_document
from corpus.segment import MAX_PASSAGE_CHARS, Section, classify_section, segment
from corpus.sentences import sentence_spans, sentence_spans_many


def text_doc(text: str, pages: int = 1, fmt: str = "text") -> ExtractedDocument:
    return ExtractedDocument(
        path=Path(f"x.{fmt}"),
        format=fmt,  # type: ignore[arg-type]
        text=text,
        sha256="0" * 64,
        pages=pages,
    )


def check_offsets(doc: ExtractedDocument, sections: list[Section]) -> None:
    previous = -1
    for section in sections:
        assert 0 <= section.start <= section.end <= len(doc.text)
        for passage in section.passages:
            assert doc.text[passage.start : passage.end] == passage.text
            assert passage.text and passage.text == passage.text.strip()
            assert passage.start > previous
            previous = passage.start
            assert section.start <= passage.start and passage.end <= section.end


def titles(sections: list[Section]) -> list[tuple[str, str]]:
    return [(s.title, s.kind) for s in sections]


# --- classify_section ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        ("Background", "background"),
        ("Chronology", "background"),
        ("Family history", "background"),
        ("Summary of the case", "background"),
        ("Findings", "findings"),
        ("Learning", "findings"),
        ("Key learning", "findings"),
        ("Analysis", "findings"),
        ("Learning points", "findings"),
        ("Themes", "findings"),
        ("3.2 Findings", "findings"),
        ("Finding 2: Information sharing", "findings"),
        ("Recommendations", "recommendations"),
        ("Section 6 – Recommendations", "recommendations"),
        ("Good practice", "good_practice"),
        ("What went well", "good_practice"),
        ("Action plan", "action_plan"),
        ("Actions", "action_plan"),
        ("Introduction", "other"),
        ("Learning and development", "other"),
        ("Glossary", "other"),
        ("", "other"),
    ],
)
def test_classify_section(title: str, kind: str) -> None:
    assert classify_section(title) == kind


# --- inferred headings (text / PDF) ------------------------------------------------------------

REVIEW = """Westshire Safeguarding Children Partnership
Learning Review: Child A

This review was commissioned after a serious incident.

1. Background

Child A lived with mother and two siblings. The family had moved
from another area in 2019 and was not known to local services.

2. Findings

2.1 Information sharing

The school held concerns that were not passed on to the health
visitor.
The GP was not told about the move.

Finding 2: Professional curiosity

Practitioners accepted the mother's account without question.

RECOMMENDATIONS

1) The partnership should audit referrals.
2) Agencies should record fathers' details.
- Training on neglect should include the Graded Care Profile.
(i) A first roman item
a) A lettered item

Good Practice

The midwife made a timely referral.

Action plan

Agency | Action | Due
Police\tTrain officers\tMarch
"""


def test_inferred_headings_kinds_and_inheritance() -> None:
    doc = text_doc(REVIEW)
    sections = segment(doc)
    check_offsets(doc, sections)
    assert titles(sections) == [
        ("Westshire Safeguarding Children Partnership", "other"),
        ("Learning Review: Child A", "other"),
        ("1. Background", "background"),
        ("2. Findings", "findings"),
        ("2.1 Information sharing", "findings"),  # inherits from "2. Findings"
        ("Finding 2: Professional curiosity", "findings"),
        ("RECOMMENDATIONS", "recommendations"),
        ("Good Practice", "good_practice"),
        ("Action plan", "action_plan"),
    ]
    levels = {s.title: s.level for s in sections}
    assert levels["1. Background"] == 1 and levels["2.1 Information sharing"] == 2


def test_wrapped_lines_form_one_passage_and_list_items_split() -> None:
    doc = text_doc(REVIEW)
    by_title = {s.title: s for s in segment(doc)}
    background = by_title["1. Background"].passages
    assert len(background) == 1
    assert background[0].text.startswith("Child A lived") and "\nfrom another" in background[0].text
    sharing = by_title["2.1 Information sharing"].passages
    assert [p.kind for p in sharing] == ["paragraph", "paragraph"]
    recs = by_title["RECOMMENDATIONS"].passages
    assert [p.kind for p in recs] == ["list_item"] * 5
    assert recs[0].text == "1) The partnership should audit referrals."
    plan = by_title["Action plan"].passages
    assert [p.kind for p in plan][-1] == "table_row"


def test_numbered_list_is_not_mistaken_for_headings() -> None:
    text = "Actions agreed:\n\n1. Neglect\n2. Domestic abuse\n3. Mental health\n"
    sections = segment(text_doc(text))
    passages = [p for s in sections for p in s.passages]
    assert [p.text for p in passages if p.kind == "list_item"] == [
        "1. Neglect",
        "2. Domestic abuse",
        "3. Mental health",
    ]


def test_preamble_section_has_empty_title() -> None:
    text = "this report was written for the panel.\nIt is short.\n\nFindings\n\nNone.\n"
    sections = segment(text_doc(text))
    assert sections[0].title == "" and sections[0].kind == "other"
    assert sections[0].passages[0].text.startswith("this report")
    assert sections[1].title == "Findings"


def test_markdown_hashes_in_plain_text() -> None:
    sections = segment(text_doc("# Findings\n\nText here.\n\n## Detail\n\nMore.\n"))
    assert [(s.title, s.level, s.kind) for s in sections] == [
        ("Findings", 1, "findings"),
        ("Detail", 2, "findings"),
    ]


def test_page_numbers_and_running_headers_dropped() -> None:
    page = "Westshire LCSPR Child A - Confidential\n\n{body}\n\nPage {n} of 5"
    body = "The family were seen by the health visitor on several occasions."
    text = "\n\n".join(page.format(body=body, n=n) for n in range(1, 6))
    doc = text_doc(text, pages=5, fmt="pdf")
    sections = segment(doc)
    check_offsets(doc, sections)
    passages = [p.text for s in sections for p in s.passages]
    assert passages == [body] * 5
    assert all("Westshire" not in s.title for s in sections)


def test_long_paragraph_split_at_sentences() -> None:
    sentence = "Dr. Patel told the panel that agencies, e.g. the school, did not share records. "
    text = "Findings\n\n" + (sentence * 40).strip()
    doc = text_doc(text)
    sections = segment(doc)
    check_offsets(doc, sections)
    passages = sections[0].passages
    assert len(passages) >= 2
    assert all(len(p.text) <= MAX_PASSAGE_CHARS for p in passages)
    assert all(p.text.startswith("Dr. Patel") and p.text.endswith("records.") for p in passages)


def test_blocks_are_used_when_reader_gives_headings(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Findings", level=1)
    document.add_heading("Information sharing", level=2)
    document.add_paragraph("Schools did not share concerns.")
    document.add_paragraph("Audit referrals", style="List Number")
    document.add_heading("Recommendations", level=1)
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Police"
    table.cell(0, 1).text = "Train staff"
    path = tmp_path / "r.docx"
    document.save(str(path))
    doc = read_document(path)
    sections = segment(doc)
    check_offsets(doc, sections)
    assert [(s.title, s.kind, s.level) for s in sections] == [
        ("Findings", "findings", 1),
        ("Information sharing", "findings", 2),
        ("Recommendations", "recommendations", 1),
    ]
    assert [p.kind for p in sections[1].passages] == ["paragraph", "list_item"]
    assert sections[2].passages[0].text == "Police | Train staff"


def test_headings_inferred_from_paragraph_blocks_when_none_marked(tmp_path: Path) -> None:
    path = tmp_path / "plain.md"
    path.write_text("BACKGROUND\n\nChild A was two.\n\nKey Learning\n\nShare more.\n")
    sections = segment(read_document(path))
    assert titles(sections) == [("BACKGROUND", "background"), ("Key Learning", "findings")]


def test_empty_text_gives_no_sections() -> None:
    assert segment(text_doc("\n\n   \n")) == []


LINES = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "",
                "Findings",
                "3.2 Analysis of practice",
                "RECOMMENDATIONS",
                "- a bullet",
                "1. numbered item here.",
                "Page 3",
                "(ii) roman",
                "Child A was seen.",
                "\tcell\tcell",
                "# Heading",
                "   ",
            ]
        ),
        st.text(max_size=60),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(LINES, st.integers(min_value=1, max_value=12))
def test_segment_offsets_property(lines: list[str], pages: int) -> None:
    doc = text_doc("\n".join(lines), pages=pages)
    check_offsets(doc, segment(doc))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=2000))
def test_segment_arbitrary_text_property(text: str) -> None:
    doc = text_doc(text)
    check_offsets(doc, segment(doc))


# --- sentences --------------------------------------------------------------------------------


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def test_sentences_keep_abbreviations() -> None:
    assert sentences("Dr. Smith saw Child A on Monday. She was well.") == [
        "Dr. Smith saw Child A on Monday.",
        "She was well.",
    ]
    assert sentences("Agencies should act, e.g. by sharing records. This is key, i.e. vital.") == [
        "Agencies should act, e.g. by sharing records.",
        "This is key, i.e. vital.",
    ]
    assert len(sentences("Mr. Jones and Mrs. Jones attended. No. 3 was late.")) == 2


def test_sentences_do_not_split_list_numbers() -> None:
    text = "Actions:\n1. Share information quickly.\n2. Train staff on neglect."
    assert sentences(text) == [
        "Actions:",
        "1. Share information quickly.",
        "2. Train staff on neglect.",
    ]


def test_sentence_spans_are_trimmed_and_batch_matches() -> None:
    texts = ["  First one.  Second one.  ", "", "Single"]
    batch = sentence_spans_many(texts)
    assert batch == [sentence_spans(t) for t in texts]
    assert [texts[0][a:b] for a, b in batch[0]] == ["First one.", "Second one."]
    assert batch[1] == []


def test_section_keyword_headings_and_subsection_inheritance() -> None:
    text = (
        "Section 4 – Findings\n\nPractice was inconsistent.\n\n"
        "Professional Curiosity\n\nNobody asked about the father.\n\n"
        "Section 5 – Appendix of terms\n\nGlossary text.\n"
    )
    sections = segment(text_doc(text))
    assert [(s.title, s.kind, s.level) for s in sections] == [
        ("Section 4 – Findings", "findings", 1),
        ("Professional Curiosity", "findings", 2),  # unclassified: inherits from its parent
        ("Section 5 – Appendix of terms", "other", 1),
    ]


def test_very_long_text_never_reaches_spacys_max_length(monkeypatch) -> None:
    """A text far past spaCy's max_length is split into pieces at line or sentence ends; the
    sentences found are the same as in a short text and their offsets point into the whole."""
    from corpus import sentences

    nlp = sentences.get_nlp()
    monkeypatch.setattr(nlp, "max_length", 3_000)
    monkeypatch.setattr(sentences, "CHUNK_CHARS", 1_000)
    para = "The health visitor called twice. Nobody answered the door.\n"
    text = para * 200  # 11,800 characters: four times max_length
    spans = sentences.sentence_spans(text)
    assert len(spans) == 400
    assert [text[a:b] for a, b in spans[:2]] == [
        "The health visitor called twice.",
        "Nobody answered the door.",
    ]
    assert all(text[a:b] in para for a, b in spans)
    bounds = sentences.chunk_bounds(text, 1_000)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(text)
    assert all(b - a <= 1_000 for a, b in bounds)
    assert all(text[b - 1] == "\n" for a, b in bounds[:-1])  # cut at line ends
