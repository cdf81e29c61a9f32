"""Snippets: densest window, word-boundary cuts, correct highlight offsets, safe HTML."""

from __future__ import annotations

from markupsafe import Markup

from nlp.snippets import ELLIPSIS, Snippet, highlight_html, make_snippet

FILLER = "The chronology records routine contacts with universal services. " * 8


def _marked(snippet: Snippet) -> list[str]:
    return [snippet.text[s:e] for s, e in snippet.highlights]


def test_short_text_is_whole_and_highlighted() -> None:
    snip = make_snippet("Information sharing between agencies was poor.", "information sharing")
    assert snip.text == "Information sharing between agencies was poor."
    assert _marked(snip) == ["Information", "sharing"]


def test_highlights_are_stem_aware() -> None:
    snip = make_snippet(
        "Assessments were shared late; the assessing social worker left.", "assessment share"
    )
    assert _marked(snip) == ["Assessments", "shared", "assessing"]


def test_window_prefers_densest_region_and_marks_cuts() -> None:
    text = (
        FILLER
        + "Father mentioned once. "
        + FILLER
        + "The father was never assessed; professionals did not engage the father or ask about "
        "men in the household. " + FILLER
    )
    snip = make_snippet(text, "father assessed men", width=160)
    assert snip.text.startswith(ELLIPSIS) and snip.text.endswith(ELLIPSIS)
    assert len(snip.text) <= 160 + 2
    assert set(t.lower() for t in _marked(snip)) == {"father", "assessed", "men"}
    inner = snip.text.strip(ELLIPSIS)
    assert text[snip.start : snip.end] == inner
    # cut at word boundaries: the window's neighbours are spaces (or text edges)
    assert text[snip.start - 1] == " " and text[snip.end] == " "


def test_no_match_returns_opening() -> None:
    snip = make_snippet(FILLER, "toxic trio", width=80)
    assert snip.highlights == []
    assert snip.text.endswith(ELLIPSIS) and not snip.text.startswith(ELLIPSIS)
    assert FILLER.startswith(snip.text[:-1])


def test_line_breaks_are_flattened_keeping_offsets() -> None:
    snip = make_snippet("Neglect\nwas\r\nchronic.", "neglect chronic")
    assert "\n" not in snip.text
    assert _marked(snip) == ["Neglect", "chronic"]


def test_html_escapes_text_and_wraps_marks() -> None:
    text = 'Mother said <script>alert("x")</script> & the neglect continued.'
    html = highlight_html(make_snippet(text, "neglect script"))
    assert isinstance(html, Markup)
    assert "<script>" not in html
    assert "&lt;<mark>script</mark>&gt;" in html
    assert "&amp;" in html
    assert "<mark>neglect</mark>" in html


def test_html_escapes_inside_highlight_and_ignores_bad_offsets() -> None:
    snip = Snippet("a <b> c", [(2, 5), (3, 4), (6, 99)])
    assert highlight_html(snip) == Markup("a <mark>&lt;b&gt;</mark> c")


def test_stop_words_are_never_highlighted() -> None:
    text = "The mother said the baby was not brought to clinic; the scan showed a fracture."
    snippet = make_snippet(text, "mother said baby not brought scan showed")
    marked = {snippet.text[s:e].lower() for s, e in snippet.highlights}
    assert {"mother", "baby", "brought", "scan"} <= marked
    assert not marked & {"said", "not", "showed"}
