"""Does a theme match a text? One entry point, one small matcher per algorithm.

In the spirit of paperless-ngx's documents/matching.py (any / all / literal / regex / fuzzy /
auto), but with a single `matches()` that dispatches through a table instead of one copy of the
logic per kind of object. "rules" delegates to the spaCy rule engine (nlp/rules.py) and "auto"
leaves the decision to the learned model. Reasons are logged at debug level only and never
include the document text, because reviews may be unpublished or embargoed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import regex
from rapidfuzz import fuzz

from nlp.regexes import MatchResult, regex_spans
from nlp.taxonomy import Theme

log = logging.getLogger(__name__)

FUZZY_THRESHOLD = 90.0
__all__ = ["MATCHERS", "MatchResult", "matches", "regex_spans"]


def _word_regex(phrase: str) -> str:
    """A phrase as a whole-word pattern, tolerant of any run of whitespace between words."""
    words = [regex.escape(w) for w in phrase.split()]
    return r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)"


def _phrase_spans(theme: Theme, text: str, case: bool) -> dict[str, list[tuple[int, int]]]:
    return {p: regex_spans(_word_regex(p), text, case=case) for p in theme.phrases}


def _match_any(theme: Theme, text: str) -> MatchResult:
    found = {p: s for p, s in _phrase_spans(theme, text, case=False).items() if s}
    spans = sorted(s for hits in found.values() for s in hits)
    return MatchResult(
        bool(found), f"any: matched {sorted(found)}" if found else "any: none", spans
    )


def _match_all(theme: Theme, text: str) -> MatchResult:
    found = _phrase_spans(theme, text, case=False)
    missing = sorted(p for p, s in found.items() if not s)
    ok = bool(found) and not missing
    spans = sorted(s for hits in found.values() for s in hits) if ok else []
    return MatchResult(ok, "all: every phrase present" if ok else f"all: missing {missing}", spans)


def _match_literal(theme: Theme, text: str) -> MatchResult:
    found = {p: s for p, s in _phrase_spans(theme, text, case=True).items() if s}
    spans = sorted(s for hits in found.values() for s in hits)
    reason = f"literal: matched {sorted(found)}" if found else "literal: none"
    return MatchResult(bool(found), reason, spans)


def _theme_regexes(theme: Theme) -> list[tuple[str, bool]]:
    """For match: regex, plain patterns are regexes too (as in paperless)."""
    out = [(p.value, p.case) for p in theme.patterns if p.kind in {"regex", "phrase"}]
    return out + [(s, False) for s in theme.synonyms]


def _match_regex(theme: Theme, text: str) -> MatchResult:
    spans: list[tuple[int, int]] = []
    for pattern, case in _theme_regexes(theme):
        try:
            spans.extend(regex_spans(pattern, text, case=case))
        except TimeoutError:
            log.warning("theme %s: regex timed out and was skipped", theme.id)
            return MatchResult(False, f"regex: timed out on {pattern!r}", [])
    return MatchResult(bool(spans), "regex: matched" if spans else "regex: none", sorted(spans))


def _match_fuzzy(theme: Theme, text: str) -> MatchResult:
    """Best approximate occurrence of each phrase (typos in scanned or hand-typed reports)."""
    spans, found = [], []
    lowered = text.lower()
    for phrase in theme.phrases:
        hit = fuzz.partial_ratio_alignment(phrase.lower(), lowered, score_cutoff=FUZZY_THRESHOLD)
        if hit is not None:
            spans.append((hit.dest_start, hit.dest_end))
            found.append(f"{phrase}~{hit.score:.0f}")
    return MatchResult(bool(spans), f"fuzzy: {found}" if found else "fuzzy: none", sorted(spans))


def _match_auto(theme: Theme, text: str) -> MatchResult:
    return MatchResult(False, "auto: decided by the learned model", [])


def _match_rules(theme: Theme, text: str) -> MatchResult:
    from nlp.rules import match_theme  # imported when used: rules loads spaCy

    return match_theme(theme, text)


MATCHERS: dict[str, Callable[[Theme, str], MatchResult]] = {
    "any": _match_any,
    "all": _match_all,
    "literal": _match_literal,
    "regex": _match_regex,
    "fuzzy": _match_fuzzy,
    "auto": _match_auto,
    "rules": _match_rules,
}


def matches(theme: Theme, text: str) -> MatchResult:
    """Match one theme against one text using the theme's algorithm."""
    try:
        matcher = MATCHERS[theme.algorithm]
    except KeyError:
        raise ValueError(f"theme {theme.id}: unknown algorithm {theme.algorithm!r}") from None
    result = matcher(theme, text)
    log.debug("theme %s (%s): %s", theme.id, theme.algorithm, result.reason)
    return result
