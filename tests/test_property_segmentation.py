"""Property-based tests: readers, segmentation and sentences keep their offsets exact.

Generated review-like documents (headings, numbered and bulleted lists, wrapped paragraphs,
tables, unicode, CRLF, tabs, page numbers) go through the real readers, so what is checked is
what ingest stores: every section, passage and sentence is an exact ``[start, end)`` slice of
the canonical text, in order, never overlapping, and no line of content goes missing.
"""

from __future__ import annotations

import html
import operator
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus.document import ExtractedDocument, ReaderError
from corpus.readers.html import read_html
from corpus.readers.markdown import read_markdown
from corpus.readers.text import normalise_newlines, read_text
from corpus.segment import Section, segment
from corpus.sentences import sentence_spans, sentence_spans_many

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- generators -------------------------------------------------------------------------------

#: Words that are plain text in every format: no Markdown or HTML syntax, no list markers.
WORD = st.one_of(
    st.sampled_from(
        ["child", "baby", "mother", "school", "GP", "police", "health", "visitor", "referral",
         "Café", "naïve", "Zoë", "Łódź", "straße", "中文", "😀", "e\u0301", "O'Neil", "co-sleeping",
         "3-month-old", "2019", "week", "(home)", "agencies,", "shared;", "well?", "Ms", "Dr"]
    ),
    st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=8),
)  # fmt: skip
#: A sentence opens with an ordinary word, so it never reads as a list item or a heading.
SENTENCE = st.builds(
    lambda first, words: " ".join([first, *words]) + ".",
    st.sampled_from(["The", "Child", "Agencies", "Her", "Staff", "Élodie", "Ông"]),
    st.lists(WORD, max_size=13),
)
HEADING_TEXT = st.sampled_from(
    ["Background", "Findings", "Recommendations", "Good practice", "Action plan",
     "Key learning", "The family", "Analysis of practice", "Introduction", "Appendix"]
)  # fmt: skip
PARAGRAPH = st.lists(SENTENCE, min_size=1, max_size=5).map(" ".join)

Block = tuple[str, str]  # (kind, text)

BLOCK = st.one_of(
    st.tuples(st.just("heading"), HEADING_TEXT),
    st.tuples(st.just("paragraph"), PARAGRAPH),
    st.tuples(st.just("list_item"), SENTENCE),
    st.tuples(st.just("table_row"), st.lists(WORD, min_size=2, max_size=4).map(" | ".join)),
)
DOCUMENT = st.tuples(HEADING_TEXT, st.lists(BLOCK, min_size=1, max_size=14))


def _markdown(title: str, blocks: list[Block], newline: str) -> str:
    lines = [f"# {title}", ""]
    number = 0
    for kind, text in blocks:
        if kind == "heading":
            lines += [f"## {text}", ""]
        elif kind == "paragraph":
            lines += [text, ""]
        elif kind == "list_item":
            number += 1
            lines += [f"{number}. {text}", ""]
        else:
            cells = text.split(" | ")
            lines += [
                "| " + " | ".join(cells) + " |",
                "|" + "---|" * len(cells),
                "",
            ]
    return newline.join(lines)


def _html(title: str, blocks: list[Block]) -> str:
    parts = [f"<html><body><nav>Menu</nav><h1>{html.escape(title)}</h1>"]
    for kind, text in blocks:
        if kind == "heading":
            parts.append(f"<h2>{html.escape(text)}</h2>")
        elif kind == "paragraph":
            parts.append(f"<p>{html.escape(text)}</p>")
        elif kind == "list_item":
            parts.append(f"<ul><li>{html.escape(text)}</li></ul>")
        else:
            cells = "".join(f"<td>{html.escape(c)}</td>" for c in text.split(" | "))
            parts.append(f"<table><tr>{cells}</tr></table>")
    return "\n".join(parts) + "<script>var x = '<p>not text</p>';</script></body></html>"


# Plain text lines as PDFs and text exports produce them: wrapped paragraphs, stray spacing.
TEXT_LINE = st.one_of(
    SENTENCE,
    PARAGRAPH,
    st.builds(lambda h: h.upper(), HEADING_TEXT),
    st.builds(lambda n, h: f"{n}. {h}", st.integers(1, 12), HEADING_TEXT),
    st.builds(lambda n, m, h: f"{n}.{m} {h}", st.integers(1, 9), st.integers(1, 9), HEADING_TEXT),
    st.builds(lambda h: f"## {h}", HEADING_TEXT),
    st.builds(lambda m, s: f"{m} {s}", st.sampled_from(["-", "•", "1.", "a)", "(iv)"]), SENTENCE),
    st.builds(lambda a, b: f"{a}\t{b}", WORD, WORD),
    st.sampled_from(["", "", "   ", "\t", "Page 3 of 12", "7", "CONFIDENTIAL"]),
    st.builds(lambda s: f"   {s}  ", SENTENCE),
    st.builds(operator.add, st.sampled_from(["\u00a0", "\u2003", "\u200b", "\ufeff"]), SENTENCE),
    st.sampled_from(["#", "# ", "####### Too deep", "1.2.3.4.5 Findings", "\x0c", "\u2028", "***"]),
    st.builds(lambda s: s * 6, SENTENCE),  # one very long line
)  # fmt: skip
NEWLINE = st.sampled_from(["\n", "\r\n", "\r"])


# --- checks -----------------------------------------------------------------------------------


def check_sections(doc: ExtractedDocument, sections: list[Section]) -> None:
    """The offset contract for sections and passages, plus order and no overlap."""
    text = doc.text
    last = 0
    for section in sections:
        assert 0 <= section.start <= section.end <= len(text)
        assert section.start >= last, "sections overlap or run backwards"
        if section.title:
            title = " ".join(section.title.split())
            assert title in " ".join(text[section.start : section.end].split())
        inner = section.start
        for passage in section.passages:
            assert text[passage.start : passage.end] == passage.text
            assert passage.text and passage.text == passage.text.strip()
            assert passage.start >= inner, "passages overlap or run backwards"
            assert section.start <= passage.start and passage.end <= section.end
            inner = passage.end
        last = section.end


def check_sentences(text: str, spans: list[tuple[int, int]]) -> None:
    last = 0
    for start, end in spans:
        assert last <= start < end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip() and piece
        last = end


# --- properties -------------------------------------------------------------------------------


@PROPERTY
@given(DOCUMENT, NEWLINE)
def test_markdown_structure_survives_reading_and_segmentation(
    document: tuple[str, list[Block]], newline: str
) -> None:
    title, blocks = document
    source = _markdown(title, blocks, newline)
    doc = read_markdown(Path("review.md"), source.encode("utf-8"))
    assert "\r" not in doc.text
    assert [(b.kind, b.text) for b in doc.blocks] == [("heading", title), *blocks]
    for block in doc.blocks:
        assert doc.text[block.start : block.end] == block.text
    sections = segment(doc)
    check_sections(doc, sections)
    headings = [title] + [text for kind, text in blocks if kind == "heading"]
    assert [s.title for s in sections] == headings
    passages = [(p.kind, p.text) for s in sections for p in s.passages]
    assert passages == [(kind, text) for kind, text in blocks if kind != "heading"]


@PROPERTY
@given(DOCUMENT)
def test_html_structure_survives_reading_and_segmentation(
    document: tuple[str, list[Block]],
) -> None:
    title, blocks = document
    doc = read_html(Path("review.html"), _html(title, blocks).encode("utf-8"))
    assert [(b.kind, b.text) for b in doc.blocks] == [("heading", title), *blocks]
    sections = segment(doc)
    check_sections(doc, sections)
    passages = [(p.kind, p.text) for s in sections for p in s.passages]
    assert passages == [(kind, text) for kind, text in blocks if kind != "heading"]


@PROPERTY
@given(st.lists(TEXT_LINE, min_size=1, max_size=40), NEWLINE)
def test_plain_text_segments_exactly_and_loses_no_line(lines: list[str], newline: str) -> None:
    source = newline.join(lines)
    try:
        doc = read_text(Path("review.txt"), source.encode("utf-8"))
    except ReaderError as exc:
        assert not source.strip() and "empty" in exc.reason
        return
    # The text is the source with one newline convention (and no leading byte-order mark).
    assert doc.text == normalise_newlines(source.removeprefix("\ufeff"))
    sections = segment(doc)
    check_sections(doc, sections)
    # Every line with content is inside a section, unless it is a bare page number.
    offset = 0
    for line in doc.text.split("\n"):
        stripped = line.strip()
        start = offset + len(line) - len(line.lstrip())
        offset += len(line) + 1
        if not stripped or re.fullmatch(r"(?:Page )?\d+(?: of \d+)?", stripped):
            continue
        assert any(s.start <= start < s.end for s in sections), f"line lost: {stripped!r}"


@PROPERTY
@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=400), NEWLINE)
def test_arbitrary_text_through_the_text_reader(source: str, newline: str) -> None:
    source = source.replace("\n", newline)
    try:
        doc = read_text(Path("any.txt"), source.encode("utf-8"))
    except ReaderError as exc:
        assert "\x00" in source or not source.strip(), exc.reason
        return
    check_sections(doc, segment(doc))


@PROPERTY
@given(st.lists(TEXT_LINE, min_size=1, max_size=30))
def test_sentences_map_back_to_passages_and_documents(lines: list[str]) -> None:
    text = "\n".join(lines)
    spans = sentence_spans(text)
    check_sentences(text, spans)
    if text.strip():
        assert spans, "text with content has at least one sentence"
    try:
        doc = read_text(Path("s.txt"), text.encode("utf-8"))
    except ReaderError:
        return
    passages = [p for s in segment(doc) for p in s.passages]
    batch = sentence_spans_many(p.text for p in passages)
    assert batch == [sentence_spans(p.text) for p in passages]
    for passage, passage_spans in zip(passages, batch, strict=True):
        check_sentences(passage.text, passage_spans)
        for start, end in passage_spans:  # re-based onto the document, as evidence is
            assert doc.text[passage.start + start : passage.start + end] == passage.text[start:end]


@PROPERTY
@given(
    st.lists(
        st.one_of(
            SENTENCE,
            st.sampled_from(["=" * 40, "_" * 60, "(" * 50, "?!" * 30, "." * 45, "…" * 35]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_sentences_with_separator_runs_keep_offsets(parts: list[str]) -> None:
    """Long punctuation runs are masked for the tokenizer; offsets must not notice."""
    text = " ".join(parts)
    spans = sentence_spans(text)
    check_sentences(text, spans)
    covered = "".join(text[a:b] for a, b in spans)
    assert covered.replace(" ", "") == text.replace(" ", "")
