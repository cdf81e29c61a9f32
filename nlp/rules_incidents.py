"""Named rules for incidents as notifications and rapid-review drafts tell them.

Reviews name a theme ("co-sleeping", "self-harm", "peer-on-peer abuse"); a notification written
the day after describes what happened instead: "found unresponsive after sleeping on the sofa
with his father", "took an overdose of paracetamol", "was assaulted by a group of other young
people and the assault was filmed". These rules read such descriptions:

* unsafe_sleep -- a baby asleep on a sofa, settee, armchair or an adult's bed *with* someone, or
  found unresponsive where they slept; only in a passage about a baby (infant words or an age
  under one), so "the teenager slept on the sofa with his brother" is not SUDI.
* self_harm_act -- cutting or hurting oneself ("cut her arms", "tried to hang himself"), an
  overdose, swallowing a quantity of tablets, trying to end one's life; never when a parent is
  the one who did it ("his mother took an overdose"), nor a toddler's accidental ingestion.
* peer_assault -- violence whose agent is other young people ("attacked by a group of pupils",
  "a gang of boys stabbed him") and not an adult; a fight or assault filmed and shared.

Every rule drops a verb that is itself negated ("had not been assaulted", "there was no
evidence she had cut herself"); the engine then applies the usual negation and hypothetical
checks to the span (nlp/negation.py).
"""

from __future__ import annotations

from spacy.tokens import Doc

from nlp.negation import clause_end, clause_start
from nlp.rule_base import indices_with_norm, phrase_matcher, rule, window
from nlp.rule_words import (
    ACCIDENT_WORDS,
    ADULT_AGENTS,
    ADULT_SURFACE_OWNERS,
    BED_COMPANIONS,
    BODY_PARTS,
    CHILD_OWNERS,
    CLAUSE_OPENERS,
    CUT_ACTS,
    EVIDENCE_FILMING,
    FILMED,
    FOUND_UNRESPONSIVE,
    INFANT_CONTEXT,
    INFANT_WORDS,
    INGEST_VERBS,
    MEDICINES,
    NEGATORS,
    OVERDOSE_WORDS,
    OWNER_STOPS,
    PARENT_OWNERS,
    PEER_AGENTS,
    PEER_GROUPS,
    PEER_VIOLENCE,
    POSSESSIVES,
    QUANTITY_WORDS,
    REFLEXIVES,
    RELATIVES,
    SAFE_SURFACES,
    SELF_ACTS,
    SHARED_ONLINE,
    SIBLINGS,
    SLEEP_SURFACES,
    SLEEP_WORDS,
    SUICIDE_ACTS,
)
from nlp.rules_people import baby_age

Hits = list[tuple[int, int, str]]
NEGATION_REACH = 6
OWNER_REACH = 10
#: "took 30 tablets" is an overdose; "took two tablets" is a dose.
LARGE_NUMBER = 10
PRONOUNS = frozenset({"he", "she", "they", "him", "her", "them"})
PLACE_LINKS = frozenset(
    {"and", "after", "on", "in", "at", "when", "while", "until", "overnight", "for", "before"}
)


def negated_before(doc: Doc, i: int, reach: int = NEGATION_REACH) -> bool:
    """A negator shortly before token i in its clause ("had not been", "no evidence that he
    had been"), not separated from it by "and", "or" or a comma."""
    lo = max(clause_start(doc, i), i - reach)
    for j in range(i - 1, lo - 1, -1):
        tok = doc[j]
        if tok.norm_ in NEGATORS:
            return True
        if tok.text in {",", "and", "or"}:
            return False
    return False


def owner_before(doc: Doc, i: int) -> str | None:
    """ "parent" or "child": the nearest person word before token i in its clause, stopping at a
    subordinate clause or a pronoun ("Her mother said that she had cut herself": the child);
    a relative clause belongs to the word before it ("a parent who ended their own life")."""
    lo = max(clause_start(doc, i), i - OWNER_REACH)
    for j in range(i - 1, lo - 1, -1):
        norm = doc[j].norm_
        if norm in RELATIVES:
            antecedent = doc[j - 1].norm_ if j > 0 else ""
            return "parent" if antecedent in PARENT_OWNERS else None
        if norm in OWNER_STOPS:
            return None
        if norm in CLAUSE_OPENERS and any(t.is_title for t in doc[j + 1 : i]):
            return None
        if norm in PARENT_OWNERS:
            return "parent"
        if norm in CHILD_OWNERS:
            return "child"
    return None


def _sentence_norms(doc: Doc, i: int) -> set[str]:
    return {t.norm_ for t in doc[i].sent}


# ----------------------------------------------------------------------------- unsafe sleep


def _about_a_baby(doc: Doc) -> bool:
    return bool(indices_with_norm(doc, INFANT_WORDS)) or bool(baby_age(doc, {}))


def _companion(doc: Doc, span: range) -> bool:
    """ "with his mum", "with the baby" (or "with him" in a sentence about a baby)."""
    baby_in_sentence = bool(_sentence_norms(doc, span[0]) & INFANT_WORDS)
    for k in span:
        if doc[k].lower_ != "with":
            continue
        for j in range(k + 1, min(span.stop, k + 4)):
            norm = doc[j].norm_
            if norm in BED_COMPANIONS and norm not in PRONOUNS:
                return True
            if norm in PRONOUNS and baby_in_sentence and _object_pronoun(doc, j):
                return True
    return False


def _object_pronoun(doc: Doc, j: int) -> bool:
    """ "with her." or "with him after the feed", not "with her new partner"."""
    nxt = doc[j + 1] if j + 1 < len(doc) else None
    return nxt is None or not nxt.is_alpha or nxt.norm_ in PLACE_LINKS


def _adult_surface(doc: Doc, surfaces: list[int]) -> bool:
    """ "the parents' bed", "an adult bed", "her mother's bed"."""
    return any(
        doc[j].norm_ in ADULT_SURFACE_OWNERS
        for k in surfaces
        if doc[k].norm_ == "bed"
        for j in range(max(0, k - 2), k)
    )


def _found_unresponsive(doc: Doc) -> Hits:
    """ "found unresponsive in his cot", "was not breathing when she woke on the sofa"."""
    hits = []
    places = SLEEP_WORDS | SLEEP_SURFACES | SAFE_SURFACES
    for _, start, end in phrase_matcher(tuple(FOUND_UNRESPONSIVE))(doc):
        if _sentence_norms(doc, start) & places and not negated_before(doc, start, 3):
            hits.append((start, end, "baby found unresponsive where they slept"))
    return hits


@rule("unsafe_sleep")
def unsafe_sleep(doc: Doc, args: dict[str, str]) -> Hits:
    """A baby asleep on a sofa or in an adult's bed with someone, or found unresponsive where
    they slept; only in a passage about a baby."""
    if not _about_a_baby(doc):
        return []
    hits = _found_unresponsive(doc)
    for i in indices_with_norm(doc, SLEEP_WORDS):
        span = window(doc, i, 8, 10)
        surfaces = [k for k in span if doc[k].norm_ in SLEEP_SURFACES]
        if not surfaces or negated_before(doc, i):
            continue
        if _companion(doc, span) or _adult_surface(doc, surfaces):
            lo, hi = min([i, *surfaces]), max([i, *surfaces]) + 1
            hits.append((lo, hi, "baby asleep on a sofa or an adult's bed with someone"))
    return hits


# ----------------------------------------------------------------------------- self-harm


def _not_the_child(doc: Doc, i: int) -> bool:
    """A parent did it, a baby or toddler swallowed something, or the sentence calls it an
    accident: not the child's self-harm."""
    norms = _sentence_norms(doc, i)
    return (
        owner_before(doc, i) == "parent"
        or bool(norms & INFANT_CONTEXT)
        or bool(norms & ACCIDENT_WORDS)
        or negated_before(doc, i)
    )


def _harm_to_self(doc: Doc) -> Hits:
    """ "cut herself", "tried to hang himself", "cutting her arms"."""
    hits = []
    for i in indices_with_norm(doc, SELF_ACTS):
        stop = min(clause_end(doc, i), i + 4)
        end = next((k for k in range(i + 1, stop) if doc[k].norm_ in REFLEXIVES), None)
        if end is None and doc[i].norm_ in CUT_ACTS:
            end = next(
                (
                    k
                    for k in range(i + 2, stop)
                    if doc[k].norm_ in BODY_PARTS and doc[k - 1].norm_ in POSSESSIVES
                ),
                None,
            )
        if end is not None and not _not_the_child(doc, i):
            hits.append((i, end + 1, "harm done to oneself"))
    return hits


def _large_number(tok) -> bool:
    return tok.like_num and tok.text.isdigit() and int(tok.text) >= LARGE_NUMBER


def _ingestion(doc: Doc) -> Hits:
    """ "swallowed a large quantity of tablets", "took 30 paracetamol"."""
    hits = []
    for i in indices_with_norm(doc, INGEST_VERBS):
        stop = min(clause_end(doc, i), i + 9)
        med = next((k for k in range(i + 1, stop) if doc[k].norm_ in MEDICINES), None)
        if med is None:
            continue
        between = doc[i + 1 : med]
        quantity = any(t.norm_ in QUANTITY_WORDS or _large_number(t) for t in between)
        if quantity and not _not_the_child(doc, i):
            hits.append((i, med + 1, "took a quantity of tablets"))
    return hits


@rule("self_harm_act")
def self_harm_act(doc: Doc, args: dict[str, str]) -> Hits:
    """Self-harm and suicide attempts as acts (args act=harm|overdose|ingestion|end_life;
    without it, all of them), never a parent's or an accident."""
    act = args.get("act")
    hits: Hits = []
    if act in (None, "harm"):
        hits += _harm_to_self(doc)
    if act in (None, "ingestion"):
        hits += _ingestion(doc)
    if act in (None, "overdose"):
        for i in indices_with_norm(doc, OVERDOSE_WORDS):
            if not _not_the_child(doc, i):
                hits.append((i, i + 1, "overdose"))
    if act in (None, "end_life"):
        for _, start, end in phrase_matcher(tuple(SUICIDE_ACTS))(doc):
            if not _not_the_child(doc, start):
                hits.append((start, end, "tried to end their life"))
    return hits


# ----------------------------------------------------------------------------- peer violence


def _agent_after_by(doc: Doc, verb: int) -> range | None:
    """The words after "by" that follow a passive verb ("assaulted by a group of pupils")."""
    stop = clause_end(doc, verb)
    for k in range(verb + 1, min(stop, verb + 3)):
        if doc[k].lower_ == "by":
            return range(k + 1, min(stop, k + 7))
    return None


def _peer_passive(doc: Doc, verb: int, agent: range) -> bool:
    norms = {doc[k].norm_ for k in agent}
    return bool(norms & PEER_AGENTS) and not norms & ADULT_AGENTS


def _peer_active(doc: Doc, verb: int) -> bool:
    """ "a group of pupils attacked him", "he punched another pupil"; never an adult's act or
    violence to an adult or a sibling (those are other themes)."""
    if verb > 0 and doc[verb - 1].norm_ in {"be", "get", "been"}:
        return False
    lo = max(clause_start(doc, verb), verb - 6)
    subject = {doc[k].norm_ for k in range(lo, verb)}
    group = {doc[k].lower_ for k in range(lo, verb)} & PEER_GROUPS
    stop = min(clause_end(doc, verb), verb + 5)
    victim = {doc[k].norm_ for k in range(verb + 1, stop)}
    if subject & ADULT_AGENTS or victim & (ADULT_AGENTS | SIBLINGS):
        return False
    by_group = bool(group and subject & PEER_AGENTS) and bool(victim & (PRONOUNS | PEER_AGENTS))
    to_peer = bool(victim & PEER_AGENTS) and ("another" in victim or "other" in victim)
    return by_group or to_peer


def _filmed_assault(doc: Doc) -> Hits:
    """A fight or assault filmed and shared, in a passage about young people."""
    if not indices_with_norm(doc, PEER_AGENTS | CHILD_OWNERS):
        return []
    hits = []
    for i in indices_with_norm(doc, FILMED):
        norms = _sentence_norms(doc, i)
        violent = norms & (PEER_VIOLENCE | {"fight", "beating"})
        evidence = norms & EVIDENCE_FILMING
        if violent and norms & SHARED_ONLINE and not evidence and not negated_before(doc, i):
            hits.append((i, i + 1, "assault filmed and shared"))
    return hits


@rule("peer_assault")
def peer_assault(doc: Doc, args: dict[str, str]) -> Hits:
    """Violence by other young people (args kind=agent|filmed; without it, both)."""
    kind = args.get("kind")
    hits: Hits = []
    if kind in (None, "agent"):
        for i in indices_with_norm(doc, PEER_VIOLENCE):
            if negated_before(doc, i):
                continue
            agent = _agent_after_by(doc, i)
            if agent is not None and _peer_passive(doc, i, agent):
                hits.append((i, agent.stop, "violence by other young people"))
            elif agent is None and _peer_active(doc, i):
                lo = max(clause_start(doc, i), i - 6)
                hits.append((lo, i + 1, "violence by other young people"))
    if kind in (None, "filmed"):
        hits += _filmed_assault(doc)
    return hits
