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
* unsafe_sleep / self_harm_act / peer_assault -- how notifications tell an incident: a baby
  asleep on a sofa with a parent, "took an overdose", "cut her arms", "attacked by a group of
  pupils" (nlp/rules_incidents.py).

The people rules are in nlp/rules_people.py, the registry and shared helpers in nlp/rule_base.py.

Every hit is checked for exclusions (service names, review thresholds), negation and
hypotheticals, and a theme is only reported with the sentences that carry its surviving hits.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc

from nlp import negation, rules_incidents, rules_people
from nlp.pipeline import get_nlp, tokenizer_safe
from nlp.regexes import MatchResult, regex_spans
from nlp.rule_base import RULES, indices_with_norm, norm_of, sentence_span
from nlp.rule_words import INVOLVEMENT, ORG_NOUNS
from nlp.taxonomy import Pattern, Taxonomy, Theme

# The named-rule modules register themselves in RULES when imported; sentence_span is part of
# this module's interface (nlp/tagger.py, nlp/evaluate.py).
NAMED_RULE_MODULES = (rules_people, rules_incidents)
__all__ = ["DocRules", "RuleEngine", "ThemeMatch", "is_negatable", "match_theme", "sentence_span"]

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
        return tuple(frozenset(norm_of(self.nlp, w) for w in words) for words in pattern.lists)

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
