"""What the passage-role model reads besides the words: layout, wording cues and the lead-in.

Why a separate module: nlp/roles.py holds the model; these are the signals a human reader uses
without reading a passage closely, and they are shared by ingest (kb/services/roles.py), the
benchmark and the tests:

* **layout**: the heading above, list / numbering / table shape, position in the document,
  the document's kind;
* **wording cues**: tense and mood ("should", "has been developed", "we will"), a quotation,
  a fraction such as "7/13" (a count across cases), a footnote source, a hashtag;
* **the lead-in**: real reports introduce a list with a sentence ("The review findings
  included:", "Areas for further development include:", "What we did:"). PDF extraction keeps
  that sentence but loses the heading styles, so for a list item the lead-in is the strongest
  clue to its role. ``lead_of`` finds it from the passages before a span.

Everything is turned into pseudo-words (``__should``, ``__lead_rec``, ``__l_findings``) that
the model weighs like any other feature, so no cue is a hard-coded decision.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: List item, numbered item and table-row shapes (any bullet PDF extraction leaves behind).
NUMBERED = re.compile(r"^\s*(?:[-–•*▪●]\s*)*(?:\(?\d{1,2}(?:\.\d{1,2})*[.)]?|[a-z][.)])\s+\S")
LIST = re.compile(r"^\s*[-–•*▪●◦○■□➢►✓]")
#: Longest lead-in kept, in words (its end is what introduces the list).
LEAD_WORDS = 30


@dataclass(frozen=True, slots=True)
class RoleInput:
    """One passage and the layout around it.

    ``position`` is the passage's start as a fraction of the document (0 = first line);
    ``section_kind`` is corpus.segment's guess from the heading; ``doc_kind`` the document's
    kind (a ReviewType value) when known. ``lead`` is the sentence that introduces the list or
    paragraph (see ``lead_of``) and ``run`` identifies the list it introduces (the lead-in's
    offset, -1 when none): items of one list are read together by ``classify_roles``.
    """

    text: str
    section_title: str = ""
    section_kind: str = "other"
    kind: str = "paragraph"
    position: float = 0.5
    doc_kind: str = "other"
    lead: str = ""
    run: int = -1


@dataclass(frozen=True, slots=True)
class Unit:
    """A heading or a passage of a document, in reading order (input to ``lead_of``)."""

    start: int
    text: str
    kind: str  # "heading", "paragraph", "list_item" or "table_row"


def lead_of(kind: str, before: Iterable[Unit]) -> tuple[str, int]:
    """(lead-in sentence, its offset) for a passage of ``kind``; ``before`` runs backwards.

    A list item or table row looks past the items of its own list to the paragraph that
    introduces it (its last sentence, whatever its punctuation: "There were areas identified
    for improvement."); a paragraph has a lead-in only when the paragraph before it ends with a
    colon. A heading in between ends the search: the heading is the section title already.
    """
    skipped = 0
    for unit in before:
        if kind in ("list_item", "table_row") and unit.kind == kind and skipped < 60:
            skipped += 1
            continue
        if unit.kind != "paragraph":
            return "", unit.start if unit.kind == "heading" else -1
        text = unit.text.strip()
        if kind == "paragraph" and not text.endswith(":"):
            return "", -1
        return last_sentence(text), unit.start
    return "", -1


def last_sentence(text: str) -> str:
    """The final sentence of a paragraph, at most ``LEAD_WORDS`` words."""
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(text.split()))
    words = parts[-1].split()
    return " ".join(words[-LEAD_WORDS:])


#: Wording cues as pseudo-words: a tense or a mood says more about a passage's role than its
#: topic (the same theme is a finding in one sentence and an action in the next).
CUES: list[tuple[str, re.Pattern[str]]] = [
    ("__should", re.compile(r"\bshould\b|\bmust\b|\bneeds? to\b|\bought to\b|\bneed for\b", re.I)),
    (
        "__done",
        re.compile(
            r"\b(?:has|have|had) (?:now |also |been |recently )*(?:\w+ed|developed|set up|begun|"
            r"made|written|run|undertaken)\b|"
            r"\b(?:is|are) being \w+ed\b|\bwas (?:launched|introduced|revised|developed|"
            r"agreed|commissioned|delivered|updated|relaunched)\b|\((?:complete|completed|"
            r"planned|ongoing|in progress|done|achieved)\b|\bin response\b|\bled to\b|"
            r"\bas a result\b",
            re.I,
        ),
    ),
    (
        "__we_did",
        re.compile(
            r"\b(?:we|partners|colleagues|the (?:partnership|subgroup|sub-group|board|panel)) "
            r"(?:have |has )?(?:now |also )?(?:developed|introduced|implemented|launched|"
            r"revised|commissioned|secured|created|rolled out|set up|established|delivered)\b",
            re.I,
        ),
    ),
    (
        "__start_past",
        re.compile(
            r"^\W*(?:\d+[.)]\s*)?[A-Z][a-z]+ed\b(?! by)|^\W*(?:\d+[.)]\s*)?(?:Rolled|"
            r"Set|Ran|Held|Wrote|Built|Began|Made) ",
            re.M,
        ),
    ),
    (
        "__start_nominal",
        re.compile(
            r"^\W*(?:\d+[.)]\s*)?(?:the |a |an )?(?:development|introduction|launch|creation|"
            r"establishment|implementation|strengthening|roll-?out|appointment|review|"
            r"revision|expansion|recruitment|delivery) of\b",
            re.I,
        ),
    ),
    ("__start_ing", re.compile(r"^\W*(?:\d+[.)]\s*)?[A-Za-z]+ing\b")),
    (
        "__will",
        re.compile(
            r"\bwe will\b|\bwill (?:be|continue|ensure|develop)\b|\bplan(?:s|ned)? to\b|"
            r"\bto be (?:rolled|delivered|launched|introduced|completed)\b",
            re.I,
        ),
    ),
    (
        "__imperative",
        re.compile(
            r"^\W*(?:\d+[.)]\s*)?(?:ensur|improv|develop|strengthen|continu|increas|review|"
            r"embed|promot|consider|clarif|further|shared and)\w*\b",
            re.I,
        ),
    ),
    (
        "__found",
        re.compile(
            r"\b(?:found|identified|highlighted|showed|shows|evidenced|revealed|recurr\w*|"
            r"themes?|lack of|not (?:always |consistently )?(?:\w+ed|shared|seen|heard|"
            r"recognised|considered))\b",
            re.I,
        ),
    ),
    (
        "__praise",
        re.compile(
            r"\b(?:good|excellent|positive|strength\w*|well|praised|commended|effective|"
            r"thank\w*|persistent|trusting|timely)\b",
            re.I,
        ),
    ),
    ("__child", re.compile(r"\b(?:child|baby|infant|young person|girl|boy)\b", re.I)),
    ("__we", re.compile(r"\b(?:we|our|us)\b", re.I)),
    ("__i", re.compile(r"\b(?:I|me|my)\b")),
    (
        "__governance",
        re.compile(
            r"\b(?:subgroup|sub-group|board|executive|budget|meeting|met|chair\w*|terms of "
            r"reference|membership|statutory|attendance|governance|business plan)\b",
            re.I,
        ),
    ),
    (
        "__training",
        re.compile(
            r"\b(?:training|course|courses|workshops?|delegates|attendees|places|"
            r"e-learning|evaluations?|learning gain)\b",
            re.I,
        ),
    ),
    ("__fraction", re.compile(r"\b\d{1,3}\s*(?:/|out of)\s*\d{1,3}\b|\bin \d+ of (?:the )?\d+\b")),
    (
        "__quote",
        re.compile(r"^\W{0,3}[\"“‘'].{20,}[\"”’']\W{0,3}(?:\(?[\w ,.]{0,40}\)?)?\s*\.?$", re.S),
    ),
    ("__source", re.compile(r"^\W*(?:\^\{?\d|source\b|\d+\.?\s+source\b)|https?://|www\.", re.I)),
    ("__social", re.compile(r"(?:^|\s)[#@][A-Za-z]\w+")),
]

#: Lead-in cues: what the sentence introducing a list says the list is.
LEAD_CUES: list[tuple[str, re.Pattern[str]]] = [
    (
        "__lead_finding",
        re.compile(
            r"\bfindings?\b|\blearning\b|\blessons?\b|\bthemes?\b|\bidentified as\b|"
            r"\bkey issues\b|\bfound\b|\bshowed\b|\bhighlighted\b|\bmessages\b",
            re.I,
        ),
    ),
    (
        "__lead_rec",
        re.compile(
            r"recommend|\bareas? (?:for|of|requiring|needing) (?:further )?"
            r"(?:development|improvement)|\bimprovements?\b|\bnext steps\b|\bpriorit|"
            r"\bshould\b|\bneeds? to\b",
            re.I,
        ),
    ),
    (
        "__lead_action",
        re.compile(
            r"\bactions?\b|\bwhat we (?:did|have done)\b|\bin response\b|\bprogress\b|"
            r"\bexamples? of\b|\bwe have\b|\bas a result\b|\bimpact\b",
            re.I,
        ),
    ),
    (
        "__lead_gp",
        re.compile(r"good practice|\bstrengths?\b|went well|\bpositive\b|\bpraised\b", re.I),
    ),
    (
        "__lead_business",
        re.compile(
            r"\bfollowing (?:topics|themes|areas|subjects)\b|\baudits? (?:on|of)\b|"
            r"\btraining\b|\bcourses?\b|\bmembers?\b|\bbudget\b|\bsub-?groups?\b|"
            r"\bmeetings?\b|\bcriteria\b|\bdates?\b",
            re.I,
        ),
    ),
]


def layout_tokens(item: RoleInput) -> str:
    """Layout, wording cues and lead-in as pseudo-words the model weighs like any word."""
    text = item.text.strip()
    words = len(text.split())
    tokens = [f"__sec_{item.section_kind}", f"__kind_{item.kind}", f"__doc_{item.doc_kind}"]
    tokens.append(
        "__pos_early"
        if item.position < 0.08
        else "__pos_late"
        if item.position > 0.85
        else "__pos_mid"
    )
    if LIST.match(text):
        tokens.append("__list")
    if NUMBERED.match(text):
        tokens.append("__numbered")
    tokens.append("__short" if words <= 8 else "__long" if words > 60 else "__medium")
    if "\t" in text:
        tokens.append("__tabs")
    if (
        words <= 7
        and "\n" not in text
        and not LIST.match(text)
        and "\t" not in text
        and text[-1:] not in ".;,"
    ):
        tokens.append("__title_line")  # a heading, slide title or running header on its own
    letters = [c for c in text if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) / len(letters) > 0.7:
        tokens.append("__caps")
    if re.search(r"\b\d{1,2}[- ](?:week|month|year|day)s?[- ]old\b|\baged? \d", text, re.I):
        tokens.append("__age")
    tokens.extend(name for name, pattern in CUES if pattern.search(text))
    if re.search(r"£|\d+%|\b\d{2,}\b", text):
        tokens.append("__figures")
    tokens.extend(f"__h_{w}" for w in re.findall(r"[a-z]{4,}", item.section_title.lower())[:6])
    return " ".join(tokens)


def lead_tokens(item: RoleInput) -> str:
    """The lead-in as pseudo-words: its cues and its last words ("" when there is none)."""
    if not item.lead:
        return "__nolead"
    tokens = ["__lead"]
    tokens.extend(name for name, pattern in LEAD_CUES if pattern.search(item.lead))
    tokens.extend(f"__l_{w}" for w in re.findall(r"[a-z]{4,}", item.lead.lower())[-10:])
    return " ".join(tokens)
