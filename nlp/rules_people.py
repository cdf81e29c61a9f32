"""Named rules about people: how old a baby is, whose mental health, who was hurt, and men
absent from professional view (registered in nlp/rule_base.py, documented in nlp/rules.py).
"""

from __future__ import annotations

from functools import lru_cache

from spacy.matcher import Matcher
from spacy.tokens import Doc, Span

from nlp import negation
from nlp.pipeline import NUMBER_WORDS, get_nlp
from nlp.rule_base import indices_with_norm, phrase_matcher, rule, window
from nlp.rule_words import (
    ABSENT_WORDS,
    ACCIDENT_WORDS,
    ADULT_FEMALE,
    AGE_LIMITS,
    AGE_UNITS,
    ASSESSED,
    CARER_MEN,
    CHILD_OWNERS,
    CHILD_VICTIMS,
    CHILD_VIOLENCE,
    ENGAGE_CUES,
    FATHER_WORDS,
    HARM_WORDS,
    HOUSEHOLD_WORDS,
    INVOLVEMENT_NOUNS,
    MALE_CANDIDATES,
    MALE_WORDS,
    MEN_WORDS,
    NOT_A_CARER,
    PARENT_OWNERS,
    PARTNER_OWNERS,
    PASSIVE_AUX,
    RISK_WORDS,
    SERIOUS_HARM,
    SERVICE_WORDS,
    STRONG_MH,
    UNKNOWN_NEG,
    UNKNOWN_SINGLE,
    UNKNOWN_VERBS,
    VIOLENCE,
    WEAK_MH,
    YOUTH_WORDS,
)


def _age_value(token_text: str) -> int | None:
    text = token_text.lower()
    if text.isdigit():
        return int(text)
    return NUMBER_WORDS.get(text)


@lru_cache(maxsize=1)
def _age_matcher() -> Matcher:
    nlp = get_nlp()
    matcher = Matcher(nlp.vocab)
    unit = {"NORM": {"IN": list(AGE_LIMITS)}}
    dash = {"ORTH": "-", "OP": "?"}
    num = {"LIKE_NUM": True}
    matcher.add("OLD", [[num, dash, unit, dash, {"LOWER": "old"}]])
    matcher.add("AGED", [[{"LOWER": {"IN": ["aged", "age"]}}, num, unit]])
    matcher.add("OF_AGE", [[num, unit, {"LOWER": "of"}, {"LOWER": "age"}]])
    return matcher


@rule("baby_age")
def baby_age(doc: Doc, args: dict[str, str]) -> list[tuple[int, int, str]]:
    """Ages under one year: days, weeks (< 52) or months (< 12); never years."""
    hits = []
    if not indices_with_norm(doc, AGE_UNITS):
        return hits
    for _, start, end in _age_matcher()(doc):
        num = next(t for t in doc[start:end] if t.like_num)
        value = _age_value(num.text)
        unit = next(t.norm_ for t in doc[start:end] if t.norm_ in AGE_LIMITS)
        if value is not None and value < AGE_LIMITS[unit]:
            hits.append((start, end, f"age under one: {value} {unit}(s)"))
    return hits


def nearest_owner(doc: Doc, start: int, end: int) -> str | None:
    best: tuple[int, str] | None = None
    for k in window(doc, start, 8, 8 + end - start):
        norm = doc[k].norm_
        owner = "parent" if norm in PARENT_OWNERS else "child" if norm in CHILD_OWNERS else None
        if owner is None or start <= k < end:
            continue
        dist = start - k if k < start else k - end + 1
        if best is None or dist < best[0] or (dist == best[0] and owner == "parent"):
            best = (dist, owner)
    return best[1] if best else None


@rule("mental_health")
def mental_health(doc: Doc, args: dict[str, str]) -> list[tuple[int, int, str]]:
    """Mental health mentions attributed to a parent or the child (args owner=parent|child).

    The nearest owner word in the clause decides ("poor parental mental health", "mental health
    concerns for children and young people"). With no owner in the clause the passage decides:
    youth words (CAMHS, teenager, suicide) point to the child, otherwise to the parents, as in
    the "toxic trio" lists of family risks. Depression and anxiety need an explicit owner,
    because they are also used loosely ("anxiety among staff").
    """
    wanted = args.get("owner", "parent")
    youth = bool(indices_with_norm(doc, YOUTH_WORDS))
    hits = []
    for strong, matcher in (
        (True, phrase_matcher(tuple(STRONG_MH))),
        (False, phrase_matcher(tuple(WEAK_MH))),
    ):
        for _, start, end in matcher(doc):
            owner = nearest_owner(doc, start, end)
            if owner is None and strong:
                owner = "child" if youth else "parent"
            if owner == wanted:
                hits.append((start, end, f"mental health of the {owner}"))
    return hits


def _passive_subject(doc: Doc, verb: int) -> range | None:
    """Tokens before a passive verb ("X and mother were assaulted"), else None."""
    if verb == 0 or doc[verb - 1].norm_ not in PASSIVE_AUX:
        return None
    aux = verb - 1
    lo = max(negation.clause_start(doc, aux), aux - 5)
    return range(lo, aux)


def _object_after(doc: Doc, verb: int) -> range:
    """Up to three tokens after an active verb, stopping at "by" (an agent, not a victim)."""
    hi = min(negation.clause_end(doc, verb), verb + 4)
    for k in range(verb + 1, hi):
        if doc[k].lower_ == "by":
            return range(verb + 1, k)
    return range(verb + 1, hi)


def _victims(doc: Doc, verb: int) -> list[int]:
    """Token indices of the likely victim(s) of a violence word."""
    subject = _passive_subject(doc, verb)
    return list(subject) if subject is not None else list(_object_after(doc, verb))


def _is_child_victim(tok) -> bool:
    pseudonym = tok.is_upper and tok.is_alpha and len(tok.text) <= 3
    after_child = tok.i > 0 and tok.doc[tok.i - 1].lower_ == "child" and tok.is_title
    return tok.norm_ in CHILD_VICTIMS or pseudonym or after_child


@rule("violence_to_partner")
def violence_to_partner(doc: Doc, args: dict[str, str]) -> list[tuple[int, int, str]]:
    """Violence against the mother or a female partner, with a man or partner in the sentence."""
    hits = []
    for i in indices_with_norm(doc, VIOLENCE):
        tok = doc[i]
        victims = [k for k in _victims(doc, tok.i) if doc[k].norm_ in ADULT_FEMALE]
        sent = tok.sent
        agent = any(
            t.norm_ in MALE_WORDS or t.norm_ == "partner" for t in sent if t.i not in victims
        )
        if victims and agent:
            lo, hi = min(victims + [tok.i]), max(victims + [tok.i]) + 1
            hits.append((lo, hi, "violence towards the mother or a partner"))
    return hits


@rule("assault_on_child")
def assault_on_child(doc: Doc, args: dict[str, str]) -> list[tuple[int, int, str]]:
    """Assault words whose victim is a child ("the baby was shaken", "hit the child", "YS ...")."""
    hits = []
    for i in indices_with_norm(doc, CHILD_VIOLENCE):
        tok = doc[i]
        victims = [k for k in _victims(doc, tok.i) if _is_child_victim(doc[k])]
        accident = any(t.norm_ in ACCIDENT_WORDS or t.lower_ in ACCIDENT_WORDS for t in tok.sent)
        if victims and not accident:
            lo, hi = min(victims + [tok.i]), max(victims + [tok.i]) + 1
            hits.append((lo, hi, "assault on a child"))
    return hits


def is_male_ref(doc: Doc, i: int) -> bool:
    """A man, named or not: father, stepfather, boyfriend, "mother's partner", "male partner"."""
    tok = doc[i]
    if tok.norm_ in MALE_WORDS:
        return True
    if tok.norm_ != "partner":
        return False
    before = [doc[k].norm_ for k in range(max(0, i - 3), i)]
    return any(w in PARTNER_OWNERS for w in before)


def _male_refs(doc: Doc) -> list:
    return [doc[i] for i in indices_with_norm(doc, MALE_CANDIDATES) if is_male_ref(doc, i)]


@rule("engaging_fathers")
def engaging_fathers(doc: Doc, args: dict[str, str]) -> list[tuple[int, int, str]]:
    """Practice about including men: "engaging with fathers", "father's involvement",
    "curiosity about 'absent' fathers", "consideration about a child's father"."""
    hits = []
    for tok in _male_refs(doc):
        before = window(doc, tok.i, 5, 0)
        cue = next((k for k in before if doc[k].norm_ in ENGAGE_CUES), None)
        absent = next((k for k in window(doc, tok.i, 2, 0) if doc[k].norm_ in ABSENT_WORDS), None)
        after = [k for k in window(doc, tok.i, 0, 2) if doc[k].norm_ in INVOLVEMENT_NOUNS]
        start = min(x for x in (cue, absent, tok.i) if x is not None)
        if cue is not None or absent is not None or after:
            end = (after[-1] if after else tok.i) + 1
            hits.append((start, end, "engaging with or absence of fathers / men"))
    return hits


def _unknown_cue(doc: Doc, k: int) -> bool:
    norm = doc[k].norm_
    if norm in UNKNOWN_SINGLE:
        return True
    if norm not in UNKNOWN_NEG:
        return False
    return any(doc[j].norm_ in UNKNOWN_VERBS for j in range(k + 1, min(len(doc), k + 4)))


def _men_not_known_in_clause(doc: Doc) -> list[tuple[int, int, str]]:
    hits = []
    for tok in _male_refs(doc):
        cues = [k for k in window(doc, tok.i, 6, 8) if k != tok.i and _unknown_cue(doc, k)]
        if cues:
            lo, hi = min(cues + [tok.i]), max(cues + [tok.i]) + 1
            hits.append((lo, hi, "man not known to or not assessed by services"))
    return hits


def _male_perpetrator(sent: Span) -> int | None:
    """Index of a man named as the one who harmed ("injuries perpetrated by father")."""
    doc = sent.doc
    for tok in sent:
        if tok.lower_ != "by" or not any(t.norm_ in HARM_WORDS for t in doc[sent.start : tok.i]):
            continue
        for k in range(tok.i + 1, min(sent.end, tok.i + 6)):
            if is_male_ref(doc, k):
                return k
    return None


def _family_unknown(sent: Span) -> int | None:
    """Index of "unknown to ... services" / "not known to ... agencies"."""
    doc = sent.doc
    for tok in sent:
        if tok.norm_ == "unknown" or (
            tok.norm_ == "not"
            and tok.i + 1 < len(doc)
            and doc[tok.i + 1].norm_ in {"know", "known"}
        ):
            nxt = range(tok.i + 1, min(sent.end, tok.i + 6))
            if any(doc[k].norm_ in SERVICE_WORDS for k in nxt):
                return tok.i
    return None


@rule("men_unknown_to_services")
def men_unknown_to_services(doc: Doc, args: dict[str, str]) -> list[tuple[int, int, str]]:
    """Men unknown to or unassessed by services, in the same clause or, for a man who
    harmed the child, anywhere in the same passage ("perpetrators unknown to services")."""
    hits = _men_not_known_in_clause(doc)
    if not indices_with_norm(doc, MALE_CANDIDATES):
        return hits
    perpetrators = [k for s in doc.sents if (k := _male_perpetrator(s)) is not None]
    unknowns = [k for s in doc.sents if (k := _family_unknown(s)) is not None]
    if perpetrators and unknowns:
        reason = "man who harmed the child, unknown to services"
        hits += [(k, k + 1, reason) for k in perpetrators + unknowns]
    return hits


def _household_man(doc: Doc, i: int) -> str | None:
    """ "carer" for a man in a caring role, "father" for a father, else None.

    A mother's partner or boyfriend, a step-father, "the man she lived with"; never a male
    professional ("male social worker", "male foster carer"), who is known to services.
    """
    tok = doc[i]
    after = {doc[k].norm_ for k in range(i + 1, min(len(doc), i + 3))}
    if after & NOT_A_CARER:
        return None
    if tok.norm_ in FATHER_WORDS:
        return "father"
    if tok.norm_ in CARER_MEN or (tok.norm_ == "partner" and is_male_ref(doc, i)):
        return "carer"
    if tok.norm_ == "step" and i + 1 < len(doc) and doc[i + 1].norm_ in FATHER_WORDS:
        return "carer"
    if tok.norm_ in MEN_WORDS:
        near = {doc[k].norm_ for k in range(i + 1, min(len(doc), i + 6))}
        if near & HOUSEHOLD_WORDS:
            return "carer"
    return None


def _says_assessed(sent: Span) -> bool:
    """The sentence says a man was assessed or checked (and not that he was not)."""
    doc = sent.doc
    for tok in sent:
        if tok.norm_ in ASSESSED:
            before = {doc[k].norm_ for k in range(max(sent.start, tok.i - 3), tok.i)}
            if not before & UNKNOWN_NEG:
                return True
    return False


@rule("man_in_household")
def man_in_household(doc: Doc, args: dict[str, str]) -> list[tuple[int, int, str]]:
    """A man in the household or a caring role who harmed the child, posed a risk, or was not
    known to services: a partner / boyfriend / step-father with harm, risk or unknown words in
    the same sentence; a father only with serious harm (convicted, offending, violence).
    Not when the sentence says he was assessed."""
    wanted = CARER_MEN | FATHER_WORDS | MEN_WORDS | frozenset({"partner", "step"})
    hits = []
    for i in indices_with_norm(doc, wanted):
        kind = _household_man(doc, i)
        if kind is None:
            continue
        sent = doc[i].sent
        if _says_assessed(sent):
            continue
        cues = [t.i for t in sent if t.i != i and t.norm_ in SERIOUS_HARM]
        if kind == "carer":
            cues += [t.i for t in sent if t.norm_ in RISK_WORDS or _unknown_cue(doc, t.i)]
        if cues:
            lo, hi = min(cues + [i]), max(cues + [i]) + 1
            hits.append((lo, hi, f"{kind} in the household who harmed or was not known"))
    return hits
