"""The registry of named rules and the token helpers they share.

A named rule is a function (Doc, args) -> [(start token, end token, reason)] registered under a
name that taxonomy files switch on with `{rule: name}`. The rules themselves live in
nlp/rules_people.py (who: babies, parents, children, men) and nlp/rules_incidents.py (what
happened: unsafe sleep, self-harm, assaults by peers); nlp/rules.py imports both, so the registry
is full whenever the engine is built.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from nlp import negation
from nlp.pipeline import get_nlp

RuleFn = Callable[[Doc, dict[str, str]], list[tuple[int, int, str]]]
RULES: dict[str, RuleFn] = {}


def rule(name: str) -> Callable[[RuleFn], RuleFn]:
    """Register a named linguistic rule usable from taxonomy files as {rule: name}."""

    def register(fn: RuleFn) -> RuleFn:
        RULES[name] = fn
        return fn

    return register


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


def norm_of(nlp: Language, word: str) -> str:
    doc = nlp(word)
    return doc[0].norm_ if len(doc) == 1 else word.lower()


@lru_cache(maxsize=8)
def phrase_matcher(words: tuple[str, ...]) -> PhraseMatcher:
    nlp = get_nlp()
    matcher = PhraseMatcher(nlp.vocab, attr="NORM")
    matcher.add("P", list(nlp.pipe(words)))
    return matcher
