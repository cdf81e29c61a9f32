"""The shared blank-English spaCy pipeline used by theme tagging.

No statistical model is downloaded or loaded: tokenizer, lookup lemmatizer (spacy-lookups-data),
a component that stores the lower-cased lemma in `token.norm_` (so rules match "Neglected",
"neglected" and "neglect" alike), the rule-based sentencizer and a line-break splitter for the
bullet lists and tables that reviews are full of. Matchers live in nlp/rules.py rather than in
the pipeline, because they depend on the taxonomy and several taxonomies may be in use at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

import numpy
import spacy
from spacy.attrs import IS_SPACE, LOWER, NORM
from spacy.language import Language
from spacy.tokens import Doc

from nlp.numbers import NUMBER_WORDS as NUMBER_WORDS  # re-exported: nlp.rules reads it here

BULLET_STARTS = frozenset("-•*·–—▪●◦")


@Language.factory("kb_lemma_norm")
def _make_lemma_norm(nlp: Language, name: str) -> LemmaNorm:
    return LemmaNorm(nlp)


class LemmaNorm:
    """Set token.norm_ to the lower-cased lookup lemma.

    The lookup lemmatizer is case-sensitive ("Neglected" is not in its table), so rules would
    miss sentence-initial words; looking up the lower-cased form fixes that. Results are cached
    per word form because the same few thousand forms make up nearly all tokens.
    """

    def __init__(self, nlp: Language) -> None:
        self.nlp = nlp
        self._table: dict[str, str] | None = None
        self._cache: dict[int, int] = {}  # hash of lower-cased form -> hash of norm

    def _lookup(self, lower: str) -> str:
        if self._table is None:
            lemmatizer = self.nlp.get_pipe("lemmatizer")
            self._table = lemmatizer.lookups.get_table("lemma_lookup")
        # Follow the table to a fixed point: it maps "meetings" -> "meeting" but also
        # "meeting" -> "meet", and phrase matching needs both forms to agree.
        norm = lower
        for _ in range(3):
            nxt = self._table.get(norm, norm)
            if nxt == norm:
                break
            norm = nxt
        return norm

    def __call__(self, doc: Doc) -> Doc:
        if not len(doc):
            return doc
        strings = self.nlp.vocab.strings
        cache = self._cache
        lowers = doc.to_array(LOWER).tolist()
        norms = []
        for h in lowers:
            norm = cache.get(h)
            if norm is None:
                norm = cache[h] = strings.add(self._lookup(strings[h]))
            norms.append(norm)
        doc.from_array([NORM], numpy.array(norms, dtype="uint64").reshape(-1, 1))
        return doc


@Language.component("kb_line_breaks")
def line_breaks(doc: Doc) -> Doc:
    """Start a new sentence after a line break that opens a bullet, a number or a capital.

    Lists and tables have no full stops, so without this a whole list becomes one "sentence"
    and evidence would be far wider than the line that supports a tag. Lower-case continuations
    (hard-wrapped PDF lines) stay in the same sentence.
    """
    if not len(doc):
        return doc
    for i in numpy.flatnonzero(doc.to_array(IS_SPACE)[:-1]).tolist():
        if "\n" not in doc[i].text:
            continue
        nxt = doc[i + 1]
        if nxt.is_space:
            continue
        first = nxt.text[0]
        if first in BULLET_STARTS or first.isupper() or first.isdigit():
            nxt.is_sent_start = True
    return doc


def _split_slashes(nlp: Language) -> None:
    """Split "fathers/males/" and "parents/carers": lists written with slashes are common."""
    suffixes = [*nlp.Defaults.suffixes, r"/"]
    prefixes = [*nlp.Defaults.prefixes, r"/"]
    infixes = [*nlp.Defaults.infixes, r"(?<=[A-Za-z0-9])/(?=[A-Za-z0-9])"]
    nlp.tokenizer.suffix_search = spacy.util.compile_suffix_regex(suffixes).search
    nlp.tokenizer.prefix_search = spacy.util.compile_prefix_regex(prefixes).search
    nlp.tokenizer.infix_finditer = spacy.util.compile_infix_regex(infixes).finditer


#: spaCy's tokenizer strips prefix and suffix punctuation one character at a time and rescans
#: the rest, so a long run such as "=====" or "((((" costs quadratic time (4,000 "$" take 13 s).
_PUNCT_RUN = re.compile(r"(?:[^\w\s]|_){33,}")


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    if run.strip("."):  # runs of dots (leaders, ellipses) tokenize fast and mean something
        return "x" * (len(run) - 1) + run[-1]  # keep the last character: "?!" still ends
    return run


def tokenizer_safe(text: str) -> str:
    """``text`` with long punctuation runs masked, same length, same whitespace.

    Every text goes through this before spaCy, so a hostile separator line cannot stall
    ingest; offsets computed on the result are offsets into ``text``, and only matches inside
    a run of 33+ punctuation characters (a separator line, never a sentence) could change.
    """
    return _PUNCT_RUN.sub(_mask_run, text)


@lru_cache(maxsize=1)
def get_nlp() -> Language:
    """The cached pipeline; building it loads the lemma tables once per process."""
    nlp = spacy.blank("en")
    _split_slashes(nlp)
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.add_pipe("kb_lemma_norm")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("kb_line_breaks")
    nlp.initialize()
    return nlp


def parse(text: str) -> Doc:
    """Process one text with the shared pipeline."""
    return get_nlp()(tokenizer_safe(text))


def parse_many(texts: Iterable[str], batch_size: int = 256) -> Iterator[Doc]:
    """Process texts in batches through nlp.pipe (much faster than one call per text)."""
    return get_nlp().pipe((tokenizer_safe(t) for t in texts), batch_size=batch_size)


def tokenize_many(texts: Iterable[str], batch_size: int = 256) -> Iterator[Doc]:
    """Tokenisation only, through the same nlp.pipe: the throughput baseline for benchmarks."""
    nlp = get_nlp()
    with nlp.select_pipes(disable=nlp.pipe_names):
        yield from nlp.pipe(texts, batch_size=batch_size)
