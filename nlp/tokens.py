"""Index and query terms: English stopwords dropped, a light domain-aware stemmer.

BM25 (nlp.ranking), snippet highlighting (nlp.snippets) and the "no close match" floor all
compare words through :func:`tokenize` / :func:`iter_terms`, so what is matched is what is shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

__all__ = ["STOPWORDS", "iter_terms", "normalise", "stem", "tokenize"]

# Negations ("not", "no", "never") are deliberately *not* stopwords: "was not brought" is a
# safeguarding term of art, and BM25's IDF already discounts frequent words.
_STOPWORD_TEXT = """
    a about above after again against all am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each few for from further had hadn't has hasn't have haven't
    having he he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll
    i'm i've if in into is isn't it it's its itself let's me more most mustn't my myself of off
    on once only or other ought our ours ourselves out over own same shan't she she'd she'll
    she's should shouldn't so some such than that that's the their theirs them themselves then
    there there's these they they'd they'll they're they've this those through to too under
    until up very was wasn't we we'd we'll we're we've were weren't what what's when when's
    where where's which while who who's whom why why's with won't would wouldn't you you'd
    you'll you're you've your yours yourself yourselves also would may might must shall will
    within without upon via"""
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())

_WORD = re.compile(r"\w+(?:['’]\w+)*")

# Irregular forms a suffix stripper cannot reach but that matter in this domain.
_IRREGULAR: dict[str, str] = {
    "children": "child",
    "men": "man",
    "women": "woman",
    "people": "person",
    "feet": "foot",
    "teeth": "tooth",
    "lives": "life",
    "wives": "wife",
}
_VOWELS = frozenset("aeiouy")
_NO_UNDOUBLE = frozenset("lsz")


def _has_vowel(word: str) -> bool:
    return any(ch in _VOWELS for ch in word)


def _strip_plural(word: str) -> str:
    """Porter step 1a, so "babies"/"baby" and "assessments"/"assessment" meet."""
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ss", "us", "is")) or not word.endswith("s") or len(word) <= 3:
        return word
    return word[:-1]


def _strip_verbal(word: str) -> str:
    """Porter step 1b (-ing / -ed), undoubling "referred" → "refer" so forms of a verb meet."""
    if word.endswith("ied") and len(word) > 4:
        return word[:-3] + "y"
    for suffix in ("ing", "ed"):
        if word.endswith(suffix):
            stem_ = word[: -len(suffix)]
            if len(stem_) >= 3 and _has_vowel(stem_):
                if stem_[-1] == stem_[-2] and stem_[-1] not in _VOWELS | _NO_UNDOUBLE:
                    stem_ = stem_[:-1]
                return stem_
            return word
    return word


def _strip_derivational(word: str) -> str:
    """A few derivational suffixes (neglectful → neglect, assessment → assess)."""
    for suffix, min_stem in (("fulness", 4), ("ness", 4), ("ment", 5), ("ful", 4), ("ly", 4)):
        if word.endswith(suffix) and len(word) - len(suffix) >= min_stem:
            return word[: -len(suffix)]
    if word.endswith(("tion", "sion")) and len(word) >= 8:
        return word[:-3]
    return word


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Light English stemmer (plurals, -ing/-ed, a few derivations, final -e).

    PyStemmer is not a project dependency, and a full Porter stemmer over-conflates short
    domain words; this keeps conflations predictable. Cached because vocabularies are small.
    """
    word = word.replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    word = word.rstrip("'")
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or not word.isalpha():
        return word
    word = _strip_derivational(_strip_verbal(_strip_plural(word)))
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def normalise(word: str) -> str:
    """Lower-case and stem one word: the form BM25 and snippet highlighting compare."""
    return stem(word.lower())


def _is_stopword(lowered: str) -> bool:
    return lowered.replace("’", "'") in STOPWORDS


def tokenize(text: str) -> list[str]:
    """Index/query terms: lower-cased words, English stopwords dropped, stemmed."""
    return [stem(word) for word in _WORD.findall(text.lower()) if not _is_stopword(word)]


def iter_terms(text: str) -> Iterator[tuple[int, int, str]]:
    """Yield ``(start, end, term)`` for every non-stopword in ``text`` (offsets into ``text``).

    Same normalisation as :func:`tokenize`, so snippets highlight exactly what BM25 matched.
    """
    for match in _WORD.finditer(text):
        lowered = match.group().lower()
        if not _is_stopword(lowered):
            yield match.start(), match.end(), stem(lowered)
