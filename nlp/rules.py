"""spaCy rules for theme tagging, built from the taxonomy plus a few linguistic rules.

Taxonomy phrases go into a PhraseMatcher on token norms (lower-cased lemmas, so "neglected",
"Neglect" and "neglect" are one thing); "near" patterns become Matcher patterns with bounded
gaps; regexes run over the text with a timeout. The hard cases of the field are named rules
that a taxonomy entry can switch on with `{rule: name}`:

* baby_age -- "3-day-old", "8 weeks old", "aged 11 months" are babies; "18 months" is not.
* mental_health -- whose mental health: a parent's or the child's (nearest owner word).
* violence_to_partner / assault_on_child -- who was hurt, from the words around the verb.
* engaging_fathers / men_unknown_to_services -- men absent from professional view, including
  men described without the word "father" ("mother's new partner", "the man living in the home").

Every hit is checked for exclusions (service names, review thresholds), negation and
hypotheticals, and a theme is only reported with the sentences that carry its surviving hits.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span

from nlp import negation
from nlp.pipeline import NUMBER_WORDS, get_nlp, tokenizer_safe
from nlp.regexes import MatchResult, regex_spans
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
    INVOLVEMENT,
    INVOLVEMENT_NOUNS,
    MALE_CANDIDATES,
    MALE_WORDS,
    MEN_WORDS,
    NOT_A_CARER,
    ORG_NOUNS,
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
from nlp.taxonomy import Pattern, Taxonomy, Theme

log = logging.getLogger(__name__)


GAP_BLOCKERS = [".", ";", "!", "?", ":", "\n", "\t", "but", "however", "although", "whereas"]
MAX_CONFIDENCE = 0.99
UNNEGATABLE_GROUPS = frozenset({"practice"})

# ----------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class Hit:
    """A token span that supports a theme, with its prior weight and why it fired."""

    theme_id: str
    start: int
    end: int
    weight: float
    reason: str


@dataclass
class ThemeMatch:
    """Rule outcome for one theme in one text: confidence, evidence sentences, suppressed ones."""

    theme_id: str
    confidence: float
    evidence: list[tuple[int, int]]
    reasons: list[str]
    suppressed: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class DocRules:
    """All rule outcomes for one document, including sentences negated for each theme."""

    matches: dict[str, ThemeMatch]
    suppressed: dict[str, list[tuple[int, int]]]


RuleFn = Callable[[Doc, dict[str, str]], list[tuple[int, int, str]]]
RULES: dict[str, RuleFn] = {}


def rule(name: str) -> Callable[[RuleFn], RuleFn]:
    """Register a named linguistic rule usable from taxonomy files as {rule: name}."""

    def register(fn: RuleFn) -> RuleFn:
        RULES[name] = fn
        return fn

    return register


# ----------------------------------------------------------------------------- helpers


def sentence_span(sent: Span) -> tuple[int, int]:
    """Character span of a sentence without trailing whitespace (so evidence reads cleanly)."""
    end_tok = sent.end - 1
    while end_tok > sent.start and sent.doc[end_tok].is_space:
        end_tok -= 1
    last = sent.doc[end_tok]
    return sent.start_char, last.idx + len(last.text)


def _positions(doc: Doc) -> dict[int, list[int]]:
    """Token indices by norm hash, built once per Doc so each rule looks up only its words."""
    cached = doc.user_data.get("kb_positions")
    if cached is None:
        cached = {}
        for i, h in enumerate(doc.to_array("NORM").tolist()):
            cached.setdefault(h, []).append(i)
        doc.user_data["kb_positions"] = cached
    return cached


def indices_with_norm(doc: Doc, words: frozenset[str]) -> list[int]:
    """Sorted indices of tokens whose norm is in `words` (most docs have none of them)."""
    positions = _positions(doc)
    found: list[int] = []
    for h in _hashes(words, doc.vocab.strings):
        found.extend(positions.get(h, ()))
    return sorted(found)


_HASH_CACHE: dict[frozenset[str], tuple[int, ...]] = {}


def _hashes(words: frozenset[str], strings) -> tuple[int, ...]:
    found = _HASH_CACHE.get(words)
    if found is None:
        found = _HASH_CACHE[words] = tuple(strings.add(w) for w in words)
    return found


def window(doc: Doc, i: int, before: int, after: int) -> range:
    """Token indices around i, clipped to i's clause."""
    lo = max(negation.clause_start(doc, i), i - before)
    hi = min(negation.clause_end(doc, i), i + after + 1)
    return range(lo, hi)


def _norm(nlp: Language, word: str) -> str:
    doc = nlp(word)
    return doc[0].norm_ if len(doc) == 1 else word.lower()


@lru_cache(maxsize=8)
def _phrase_matcher(words: tuple[str, ...]) -> PhraseMatcher:
    nlp = get_nlp()
    matcher = PhraseMatcher(nlp.vocab, attr="NORM")
    matcher.add("P", list(nlp.pipe(words)))
    return matcher


# ----------------------------------------------------------------------------- named rules


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


def _nearest_owner(doc: Doc, start: int, end: int) -> str | None:
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
        (True, _phrase_matcher(tuple(STRONG_MH))),
        (False, _phrase_matcher(tuple(WEAK_MH))),
    ):
        for _, start, end in matcher(doc):
            owner = _nearest_owner(doc, start, end)
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


# ----------------------------------------------------------------------------- the engine


def _is_blocker(tok) -> bool:
    return tok.lower_ in GAP_BLOCKERS or "\n" in tok.text or "\t" in tok.text


def _follow(doc: Doc, i: int, rest: tuple[frozenset[str], ...], gap: int) -> int | None:
    """End index if the word lists in `rest` follow token i in order, each within `gap`
    tokens of the previous one and without crossing a clause boundary; else None."""
    if not rest:
        return i + 1
    for j in range(i + 1, min(len(doc), i + gap + 2)):
        tok = doc[j]
        if tok.norm_ in rest[0]:
            end = _follow(doc, j, rest[1:], gap)
            if end is not None:
                return end
        if _is_blocker(tok):
            return None
    return None


def _involved_with(doc: Doc, start: int) -> bool:
    """Is the person said to be known to / referred to / supported by the named service?

    "Mother was known to Adult Mental Health Services" is about her mental health, while
    "Adult Mental Health Services attended the meeting" is only about an organisation.
    """
    return any(doc[k].norm_ in INVOLVEMENT for k in range(max(0, start - 4), start))


def _is_organisation(doc: Doc, start: int, end: int) -> bool:
    """A theme phrase used as part of a service or team name ("Domestic Abuse Team")."""
    words = [t for t in doc[start:end] if t.is_alpha]
    if not words or not all(t.is_title or t.is_upper for t in words):
        return False
    follow = [t for t in doc[end : end + 2] if t.is_title or t.is_upper]
    return any(t.text in ORG_NOUNS for t in follow)


def is_negatable(theme: Theme) -> bool:
    """Practice themes are about what professionals did, so "the child was not seen alone",
    "information was not shared" or "if the records had been shared" describe the practice
    gap itself: negation and hypotheticals only suppress concern themes."""
    return theme.group not in UNNEGATABLE_GROUPS


class RuleEngine:
    """Matchers compiled once from a taxonomy (only themes whose algorithm is "rules")."""

    def __init__(self, taxonomy: Taxonomy, nlp: Language | None = None) -> None:
        self.nlp = nlp or get_nlp()
        self.themes = [t for t in taxonomy if t.algorithm == "rules"]
        self.unnegatable = {t.id for t in self.themes if not is_negatable(t)}
        self.phrases = PhraseMatcher(self.nlp.vocab, attr="NORM")
        self.near: list[tuple[str, tuple[frozenset[str], ...], int, bool]] = []
        self.meta: dict[str, tuple[str, float, str, bool]] = {}
        self.regexes: list[tuple[str, Pattern, bool]] = []
        self.named: list[tuple[str, Pattern]] = []
        for theme in self.themes:
            self._add_theme(theme)

    # -- building

    def _key(self, theme: Theme, pattern: Pattern, excluded: bool, label: str) -> str:
        key = f"{'!' if excluded else ''}{theme.id}#{len(self.meta)}"
        self.meta[key] = (theme.id, pattern.weight, label, excluded)
        return key

    def _add_theme(self, theme: Theme) -> None:
        synonyms = [Pattern(kind="phrase", value=s) for s in theme.synonyms]
        for pattern in [*theme.patterns, *synonyms]:
            self._add_pattern(theme, pattern, excluded=False)
        for pattern in theme.exclude:
            self._add_pattern(theme, pattern, excluded=True)

    def _add_pattern(self, theme: Theme, pattern: Pattern, excluded: bool) -> None:
        if pattern.kind == "phrase":
            key = self._key(theme, pattern, excluded, f"phrase '{pattern.value}'")
            self.phrases.add(key, [self.nlp(pattern.value)])
        elif pattern.kind == "near":
            key = self._key(
                theme, pattern, excluded, "near " + "/".join(x[0] for x in pattern.lists)
            )
            self.near.append((key, self._near_lists(pattern), pattern.window, pattern.ordered))
        elif pattern.kind == "regex":
            self.regexes.append((theme.id, pattern, excluded))
        elif pattern.kind == "rule":
            if pattern.value not in RULES:
                raise ValueError(f"theme {theme.id}: unknown rule {pattern.value!r}")
            self.named.append((theme.id, pattern))

    def _near_lists(self, pattern: Pattern) -> tuple[frozenset[str], ...]:
        return tuple(frozenset(_norm(self.nlp, w) for w in words) for words in pattern.lists)

    def _near_hits(self, doc: Doc) -> list[tuple[str, int, int]]:
        """Matches of every "near" pattern as (key, start, end)."""
        out = []
        for key, lists, gap, ordered in self.near:
            orders = [lists] if ordered else [lists, lists[::-1]]
            for seq in orders:
                for anchor in indices_with_norm(doc, seq[0]):
                    end = _follow(doc, anchor, seq[1:], gap)
                    if end is not None:
                        out.append((key, min(anchor, end - 1), max(anchor + 1, end)))
        return out

    # -- matching

    def _raw_hits(self, doc: Doc) -> tuple[list[Hit], dict[str, list[tuple[int, int]]]]:
        """Positive hits, and excluded character spans per theme."""
        hits: list[Hit] = []
        excluded: dict[str, list[tuple[int, int]]] = defaultdict(list)
        strings = self.nlp.vocab.strings
        found = [(strings[m], a, b) for m, a, b in self.phrases(doc)] + self._near_hits(doc)
        for key, start, end in found:
            theme_id, weight, label, is_excl = self.meta[key]
            if is_excl:
                excluded[theme_id].append((doc[start].idx, doc[end - 1].idx + len(doc[end - 1])))
            else:
                hits.append(Hit(theme_id, start, end, weight, label))
        self._regex_hits(doc, hits, excluded)
        for theme_id, pattern in self.named:
            args = dict(pattern.args)
            for start, end, reason in RULES[pattern.value](doc, args):
                hits.append(
                    Hit(theme_id, start, end, pattern.weight, f"rule {pattern.value}: {reason}")
                )
        return hits, excluded

    def _regex_hits(self, doc: Doc, hits: list[Hit], excluded: dict) -> None:
        text = doc.text  # Doc.text is rebuilt from tokens on every access
        for theme_id, pattern, is_excl in self.regexes:
            try:
                spans = regex_spans(pattern.value, text, case=pattern.case)
            except TimeoutError:
                log.warning("theme %s: regex timed out and was skipped", theme_id)
                continue
            for lo, hi in spans:
                if is_excl:
                    excluded[theme_id].append((lo, hi))
                    continue
                span = doc.char_span(lo, hi, alignment_mode="expand")
                if span is not None and len(span):
                    hits.append(
                        Hit(
                            theme_id,
                            span.start,
                            span.end,
                            pattern.weight,
                            f"regex {pattern.value!r}",
                        )
                    )

    def _drop_reason(self, doc: Doc, hit: Hit, excluded: dict, mentions: set[int]) -> str | None:
        lo, hi = doc[hit.start].idx, doc[hit.end - 1].idx + len(doc[hit.end - 1])
        in_excluded = any(a < hi and lo < b for a, b in excluded.get(hit.theme_id, ()))
        # "Known to mental health services" is about the person; a practice theme has no
        # person to be involved, so its exclusions always hold.
        involved = hit.theme_id not in self.unnegatable and _involved_with(doc, hit.start)
        if in_excluded and not involved:
            return "excluded context"
        if _is_organisation(doc, hit.start, hit.end) and not _involved_with(doc, hit.start):
            return "service or team name"
        if hit.theme_id in self.unnegatable:
            return None
        return negation.suppression_reason(doc, hit.start, hit.end, mentions)

    def match_doc(self, doc: Doc) -> DocRules:
        """Apply every rule to a processed Doc."""
        hits, excluded = self._raw_hits(doc)
        # Vocabulary mentions bridge coordinated negation ("no neglect, abuse or drug use");
        # named-rule spans may contain their own cue words, so they never count as bridges.
        terms = [h for h in hits if h.reason.startswith(("phrase", "near"))]
        mentions = {k for h in terms for k in range(h.start, h.end)}
        kept: dict[str, list[Hit]] = defaultdict(list)
        suppressed: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for hit in hits:
            reason = self._drop_reason(doc, hit, excluded, mentions)
            if reason is None:
                kept[hit.theme_id].append(hit)
            else:
                log.debug("theme %s: dropped %s (%s)", hit.theme_id, hit.reason, reason)
                if reason.startswith(("negated", "absence", "hypothetical")):
                    suppressed[hit.theme_id].append(sentence_span(doc[hit.start].sent))
        matches = {
            tid: self._theme_match(doc, tid, hs, suppressed[tid]) for tid, hs in kept.items()
        }
        return DocRules(matches=matches, suppressed=dict(suppressed))

    @staticmethod
    def _theme_match(doc: Doc, theme_id: str, hits: list[Hit], suppressed) -> ThemeMatch:
        """Noisy-OR of the strongest hit per distinct pattern; evidence = hit sentences."""
        best: dict[str, float] = {}
        for h in hits:
            best[h.reason] = max(best.get(h.reason, 0.0), h.weight)
        miss = 1.0
        for weight in best.values():
            miss *= 1.0 - weight
        evidence = sorted({sentence_span(doc[h.start].sent) for h in hits})
        confidence = round(min(MAX_CONFIDENCE, 1.0 - miss), 4)
        return ThemeMatch(theme_id, confidence, evidence, sorted(best), sorted(set(suppressed)))

    def match_text(self, text: str) -> DocRules:
        return self.match_doc(self.nlp(text))

    def match_many(self, texts: Iterable[str], batch_size: int = 256) -> list[DocRules]:
        safe = map(tokenizer_safe, texts)
        return [self.match_doc(doc) for doc in self.nlp.pipe(safe, batch_size=batch_size)]


@lru_cache(maxsize=256)
def _engine_for_theme(theme: Theme) -> RuleEngine:
    return RuleEngine(Taxonomy(themes={theme.id: theme}, groups={theme.group: theme.group}))


def match_theme(theme: Theme, text: str) -> MatchResult:
    """The "rules" algorithm for matching.matches(): one theme, one text."""
    result = _engine_for_theme(theme).match_text(text).matches.get(theme.id)
    if result is None:
        return MatchResult(False, "rules: no surviving hit", [])
    return MatchResult(True, "rules: " + "; ".join(result.reasons), result.evidence)
