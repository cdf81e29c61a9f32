"""Negation, absence and hypotheticals, scoped to the clause.

A theme is present when the text says the concern was part of the case, not when it is ruled
out ("there were no concerns about domestic abuse") or imagined ("if domestic abuse had been
identified"). The scope is deliberately narrow: a cue only negates a mention when every word
between them is a "bridge" word (evidence, concerns, about, any ...), so "no single agency had
the full picture of the neglect" is not negated. Reviews also write about missed concerns
("neglect was not identified", "was not brought"); those are findings, not absences, so
post-posed "not identified / not recognised" is deliberately not a cue.

Everything works on token norms (lower-cased lemmas) from nlp/pipeline.py.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache

from spacy.tokens import Doc


def words(text: str) -> frozenset[str]:
    """A word set from a space-separated string (keeps long vocabularies readable)."""
    return frozenset(text.split())


# Cues that negate what follows, with the words allowed between cue and mention.
PRE_CUES = frozenset({"no", "nil", "never", "deny", "denies", "without", "absence", "none"})
NOT_CUE = "not"
BRIDGE = words(
    "evidence concern concerns history indication indications sign signs suggestion "
    "report reports known previous prior current currently any of about regarding re "
    "around in relation to that the a an safeguarding significant ongoing further "
    "raise raised record recorded disclose disclosed mention mentioned issue issues "
    "problem problems there be been was were for with identify identified his her "
    "their this these other obvious apparent clear specific indicator indicators "
    "disclosure suspicion suspicions worry worries allegation allegations incident "
    "incidents cause particular direct reference information having have ever such "
    "physical or and , / previously experience experienced"
)
# After "not", only a few words may intervene: "not known to mental health services".
NOT_BRIDGE = words("known to open referred previously currently any a an the subject of aware")
# Post-posed absence: "<mention> was ruled out", "<mention> did not feature".
POST_ABSENCE = (
    ("rule", "out"),
    ("not", "a", "feature"),
    ("not", "a", "factor"),
    ("not", "a", "concern"),
    ("not", "an", "issue"),
    ("not", "feature"),
    ("not", "present"),
    ("not", "substantiate"),
    ("not", "substantiated"),
    ("deny",),
    ("denied",),
    ("unfounded",),
)
POST_SKIP = words("be been have do did subsequently later also was were has had")

CLAUSE_BREAKS = frozenset(
    {";", ":", "but", "however", "although", "though", "whereas", "yet", "\t", "•", "|"}
)
HYPOTHETICAL_CUES = frozenset({"if", "unless"})
INVERTED_CONDITIONALS = frozenset({"should", "were", "had"})
INQUIRY_VERBS = words(
    "consider ask check establish see know determine explore assess question wonder "
    "clear clarify understand find unclear sure"
)
MAX_LOOKBACK = 10


@lru_cache(maxsize=1)
def _normalised() -> dict[str, frozenset[str]]:
    """Cue and bridge words as token norms (lemmas): "known" is stored as "know"."""
    from nlp.pipeline import get_nlp

    nlp = get_nlp()
    sets = {"pre": PRE_CUES, "bridge": BRIDGE, "not_bridge": NOT_BRIDGE, "skip": POST_SKIP}
    out = {}
    for name, words in sets.items():
        docs = nlp.pipe(sorted(words))
        out[name] = frozenset(words) | frozenset(t.norm_ for d in docs for t in d)
    return out


def clause_start(doc: Doc, i: int) -> int:
    """Index of the first token of the clause holding token i (bounded by its sentence)."""
    sent_start = doc[i].sent.start
    j = i - 1
    while j >= sent_start:
        tok = doc[j]
        if tok.norm_ in CLAUSE_BREAKS or "\n" in tok.text or "\t" in tok.text:
            return j + 1
        j -= 1
    return sent_start


def clause_end(doc: Doc, i: int) -> int:
    """Index one past the last token of the clause holding token i."""
    sent_end = doc[i].sent.end
    j = i + 1
    while j < sent_end:
        tok = doc[j]
        if tok.norm_ in CLAUSE_BREAKS or "\n" in tok.text or "\t" in tok.text:
            return j
        j += 1
    return sent_end


def negated_by_cue(doc: Doc, start: int, mentions: Collection[int] = ()) -> str | None:
    """The cue that negates the mention starting at `start`, or None.

    `mentions` are token indices of other theme mentions: "no concerns about neglect, domestic
    abuse or drug use" negates all three, because the other mentions act as bridge words.
    """
    vocab = _normalised()
    lo = max(clause_start(doc, start), start - MAX_LOOKBACK)
    for j in range(start - 1, lo - 1, -1):
        norm = doc[j].norm_
        if norm in vocab["pre"] and not (norm == "never" and j == start - 1):
            # "never shake a baby" is advice about shaking, not its absence
            return f"negated by '{doc[j].text}'"
        if norm == NOT_CUE and _only_words(doc, j + 1, start, vocab["not_bridge"], mentions):
            return "negated by 'not'"
        if norm not in vocab["bridge"] and j not in mentions and not doc[j].is_punct:
            return None
    return None


def _only_words(
    doc: Doc, lo: int, hi: int, allowed: frozenset[str], mentions: Collection[int]
) -> bool:
    return all(doc[k].norm_ in allowed or k in mentions for k in range(lo, hi))


def absent_after(doc: Doc, end: int) -> str | None:
    """A post-posed absence cue right after the mention ("... was ruled out")."""
    stop = clause_end(doc, max(end - 1, 0))
    norms = [t.norm_ for t in doc[end:stop]]
    k = 0
    while k < len(norms) and k < 4 and norms[k] in _normalised()["skip"]:
        k += 1
    rest = tuple(norms[k : k + 3])
    for cue in POST_ABSENCE:
        if rest[: len(cue)] == cue:
            return f"absence: '{' '.join(cue)}'"
    return None


def hypothetical(doc: Doc, start: int) -> str | None:
    """Is the mention inside a conditional clause ("if ... had been identified", "should there be")?

    The conditional clause runs from the cue to the next comma; "consider if" and "ask whether"
    introduce questions to explore, not hypotheticals, so they do not count.
    """
    lo = clause_start(doc, start)
    for j in range(start - 1, lo - 1, -1):
        tok = doc[j]
        if tok.text == ",":
            return None
        if tok.norm_ in HYPOTHETICAL_CUES:
            prev = doc[j - 1].norm_ if j > lo else ""
            return None if prev in INQUIRY_VERBS else f"hypothetical: '{tok.text}'"
        if _inverted_conditional(doc, j, lo):
            return f"hypothetical: '{tok.text} ...'"
    return None


def _inverted_conditional(doc: Doc, j: int, lo: int) -> bool:
    """ "Should there be", "Were there", "Had ... been" opening a clause."""
    tok = doc[j]
    at_clause_start = j == lo or doc[j - 1].text == ","
    if not at_clause_start or tok.lower_ not in INVERTED_CONDITIONALS:
        return False
    nxt = doc[j + 1].lower_ if j + 1 < len(doc) else ""
    if nxt == "there":
        return True
    return tok.lower_ == "had" and any(t.lower_ == "been" for t in doc[j + 1 : j + 8])


def suppression_reason(
    doc: Doc, start: int, end: int, mentions: Collection[int] = ()
) -> str | None:
    """Why a mention at doc[start:end] must not count (negation, absence, hypothetical), if so."""
    return (
        negated_by_cue(doc, start, mentions) or absent_after(doc, end) or hypothetical(doc, start)
    )
