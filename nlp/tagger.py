"""Theme tagging: rules for evidence and precision, an optional learned model for recall.

How confidence is combined (all numbers in [0, 1]):

* Rule hit: the rule confidence is a noisy-OR of the prior weights of the distinct patterns that
  fired (each weight is the share of such hits a careful analyst would accept). With a model,
  confidence = max(rule confidence, model p); method "rules+model" when p also clears the
  model's threshold for that theme, else "rules". The model never vetoes a rule hit: rules
  carry evidence, and an analyst can reject a tag in the UI.
* Model only: tagged when p >= the theme's threshold (model.thresholds[theme] if the model has
  them, else DEFAULT_THRESHOLD) and p >= MODEL_ONLY_FLOOR; confidence = p, which the
  classifier is responsible for calibrating. Evidence is the sentence the model scores highest
  for that theme, never one in which that theme was negated or hypothetical, and that sentence
  must itself score at least SENTENCE_SUPPORT x threshold, so there is no tag without evidence.
* Theme heads (nlp/heads.py: linear heads over MiniLM sentence embeddings, trained on real
  review language): every sentence of a passage is scored; the best sentence that is not
  negated or hypothetical for a theme gives the passage's head score p_h and is the evidence.
  A rule hit takes max(rule confidence, p_h) and method "rules+model" when p_h clears the
  theme's head threshold; without a rule hit the theme is tagged (method "model") when p_h
  clears that threshold, which cross-validation on real documents chose per theme (themes where
  model-only tags were not precise have the threshold NEVER).
* Themes with other algorithms (any / all / literal / regex / fuzzy) use nlp.matching with
  prior LITERAL_PRIOR; their hits pass the same negation check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from spacy.tokens import Doc

from nlp import negation
from nlp.heads import ThemeHeads
from nlp.matching import matches
from nlp.pipeline import get_nlp, tokenizer_safe
from nlp.rules import DocRules, RuleEngine, ThemeMatch, is_negatable, sentence_span
from nlp.taxonomy import Taxonomy, load_taxonomy

DEFAULT_THRESHOLD = 0.5
# A model-only tag also needs its best eligible sentence to score at least this share of the
# threshold; otherwise the passage score came from a negated sentence or from nowhere in
# particular, and there is no evidence to show.
SENTENCE_SUPPORT = 0.5
#: A tag with no rule behind it needs at least this probability, whatever the theme's tuned
#: threshold. Thresholds are tuned for F1 on the (synthetic) training passages and sit around
#: 0.2; on the gold passages every model-only tag below 0.85 was a false positive (see
#: `benchmarks/tagging.py --model-only-report`), so the model mostly confirms and calibrates rule
#: hits and adds a tag of its own only when it is very sure.
MODEL_ONLY_FLOOR = 0.9
LITERAL_PRIOR = 0.8
SIMPLE_ALGORITHMS = frozenset({"any", "all", "literal", "regex", "fuzzy"})
#: Sentences shorter than this (characters) are headings or debris: never scored by the heads.
MIN_SENTENCE_CHARS = 20

EmbedFn = Callable[[list[str]], np.ndarray]
#: (passage index) -> theme id -> (best head score, evidence sentence span)
HeadBest = dict[int, dict[str, tuple[float, tuple[int, int]]]]


class ThemeModel(Protocol):
    """What the tagger needs from a learned model (nlp/classifier.py implements it)."""

    theme_ids: list[str]

    def predict_proba(self, texts: list[str]) -> np.ndarray: ...


@dataclass
class Evidence:
    """A supporting span; start/end are offsets into the text that was tagged."""

    text: str
    start: int
    end: int

    def shifted(self, offset: int) -> Evidence:
        return Evidence(self.text, self.start + offset, self.end + offset)


@dataclass
class TagResult:
    """One theme on one text."""

    theme_id: str
    label: str
    confidence: float
    method: str  # "rules" | "model" | "rules+model"
    evidence: list[Evidence] = field(default_factory=list)


def _evidence(text: str, spans: Iterable[tuple[int, int]]) -> list[Evidence]:
    return [Evidence(text[a:b], a, b) for a, b in sorted(set(spans))]


class Tagger:
    """Tag passages with themes from a taxonomy, optionally helped by a learned model."""

    def __init__(
        self,
        taxonomy: Taxonomy | None = None,
        model: ThemeModel | None = None,
        *,
        model_only_floor: float = MODEL_ONLY_FLOOR,
        heads: ThemeHeads | None = None,
        embed: EmbedFn | None = None,
    ) -> None:
        self.taxonomy = taxonomy or load_taxonomy()
        self.model = model
        self.heads = heads if embed is not None else None
        self.embed = embed
        self.model_only_floor = model_only_floor
        self.nlp = get_nlp()
        self.engine = RuleEngine(self.taxonomy, self.nlp)
        self.simple = [t for t in self.taxonomy if t.algorithm in SIMPLE_ALGORITHMS]
        self.model_themes = [t for t in (model.theme_ids if model else []) if t in self.taxonomy]

    # -- public API

    def fingerprint(self) -> str:
        """Identify what produced a tag: taxonomy content plus the model's training labels.

        Stored on each passage so `retag --stale-only` can find passages tagged by an older
        taxonomy or model without re-tagging the whole corpus.
        """
        model_part = ""
        if self.model is not None:
            header = getattr(self.model, "header", {}) or {}
            model_part = str(header.get("labels_hash", "model"))
        if self.heads is not None:
            model_part += "|heads:" + self.heads.fingerprint()
        digest = hashlib.sha256(f"{self.taxonomy.fingerprint()}|{model_part}".encode())
        return digest.hexdigest()[:16]

    def tag(self, text: str) -> list[TagResult]:
        return self.tag_many([text])[0]

    def tag_many(self, texts: Sequence[str], batch_size: int = 256) -> list[list[TagResult]]:
        """Tag many texts: one nlp.pipe pass and (with a model) two batched model calls."""
        texts = list(texts)
        docs, rules = self.parse_and_match(texts, batch_size)
        probs = self._passage_probs(texts)
        model_only = self._model_only_candidates(rules, probs)
        best_sentences = self._best_sentences(docs, rules, model_only)
        head_best = self.head_scores(docs, rules)
        return [
            self._combine(
                i, texts[i], rules[i], probs, best_sentences.get(i, {}), head_best.get(i, {})
            )
            for i in range(len(texts))
        ]

    # -- heads

    def head_scores(self, docs: Sequence[Doc], rules: Sequence[DocRules] | None = None) -> HeadBest:
        """Best head score and its sentence, per passage and theme (empty without heads).

        Sentences negated or hypothetical for a theme (per the rules' suppressed spans) are
        never its evidence, so "no concerns about her mental health" cannot tag it.
        """
        if self.heads is None or self.embed is None or not docs:
            return {}
        spans: list[tuple[int, tuple[int, int]]] = []
        for i, doc in enumerate(docs):
            for sent in doc.sents:
                a, b = sentence_span(sent)
                if b - a >= MIN_SENTENCE_CHARS:
                    spans.append((i, (a, b)))
        if not spans:
            return {}
        vectors = self.embed([docs[i].text[a:b] for i, (a, b) in spans])
        matrix = self.heads.scores(vectors)
        themes = [(j, t) for j, t in enumerate(self.heads.theme_ids) if t in self.taxonomy]
        best: HeadBest = {}
        for row, (i, span) in enumerate(spans):
            blocked = rules[i].suppressed if rules is not None else {}
            per = best.setdefault(i, {})
            for j, theme_id in themes:
                score = float(matrix[row, j])
                if score <= 0.0 or span in blocked.get(theme_id, ()):
                    continue
                if theme_id not in per or score > per[theme_id][0]:
                    per[theme_id] = (score, span)
        return best

    def head_scores_for(self, texts: Sequence[str]) -> HeadBest:
        """:meth:`head_scores` for raw texts (evaluation reports use it for misses)."""
        docs = list(self.nlp.pipe(map(tokenizer_safe, texts)))
        return self.head_scores(docs, [self._rules_for(d) for d in docs])

    # -- rules

    def parse_and_match(
        self, texts: Sequence[str], batch_size: int = 256
    ) -> tuple[list[Doc], list[DocRules]]:
        """Parsed texts and every rule outcome (evaluation reuses them across folds)."""
        docs = list(self.nlp.pipe(map(tokenizer_safe, texts), batch_size=batch_size))
        return docs, [self._rules_for(doc) for doc in docs]

    def _rules_for(self, doc: Doc) -> DocRules:
        result = self.engine.match_doc(doc)
        for theme in self.simple:
            found = self._simple_match(doc, theme.id)
            if found is not None:
                result.matches[theme.id] = found
        return result

    def _simple_match(self, doc: Doc, theme_id: str) -> ThemeMatch | None:
        """Other algorithms, with the same negation check and sentence evidence as rules."""
        theme = self.taxonomy[theme_id]
        outcome = matches(theme, doc.text)
        check = is_negatable(theme)
        sentences = set()
        for lo, hi in outcome.spans:
            span = doc.char_span(lo, hi, alignment_mode="expand")
            if span is None or not len(span):
                continue
            if not check or negation.suppression_reason(doc, span.start, span.end) is None:
                sentences.add(sentence_span(doc[span.start].sent))
        if not outcome.matched or not sentences:
            return None
        return ThemeMatch(theme_id, LITERAL_PRIOR, sorted(sentences), [outcome.reason])

    # -- model

    def _threshold(self, theme_id: str) -> float:
        thresholds = getattr(self.model, "thresholds", None) or {}
        return float(thresholds.get(theme_id, DEFAULT_THRESHOLD))

    def _passage_probs(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Theme id -> probabilities for every text (empty without a model)."""
        if not self.model or not self.model_themes or not texts:
            return {}
        matrix = np.asarray(self.model.predict_proba(texts), dtype=float)
        columns = {t: i for i, t in enumerate(self.model.theme_ids)}
        return {t: matrix[:, columns[t]] for t in self.model_themes}

    def _model_only_candidates(self, rules: list[DocRules], probs) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for theme_id, column in probs.items():
            for i, p in enumerate(column):
                floor = max(self._threshold(theme_id), self.model_only_floor)
                if p >= floor and theme_id not in rules[i].matches:
                    out.setdefault(i, []).append(theme_id)
        return out

    def _best_sentences(
        self, docs: list[Doc], rules: list[DocRules], candidates: dict[int, list[str]]
    ) -> dict[int, dict[str, tuple[int, int]]]:
        """For model-only tags: the highest-scoring eligible sentence per (text, theme)."""
        requests: list[tuple[int, str, tuple[int, int]]] = []
        for i, theme_ids in candidates.items():
            spans = [sentence_span(s) for s in docs[i].sents if s.text.strip()]
            for theme_id in theme_ids:
                blocked = set(rules[i].suppressed.get(theme_id, ()))
                requests += [(i, theme_id, sp) for sp in spans if sp not in blocked]
        if not requests:
            return {}
        texts = [docs[i].text[a:b] for i, _, (a, b) in requests]
        matrix = np.asarray(self.model.predict_proba(texts), dtype=float)
        columns = {t: k for k, t in enumerate(self.model.theme_ids)}
        best: dict[int, dict[str, tuple[float, tuple[int, int]]]] = {}
        for row, (i, theme_id, span) in enumerate(requests):
            score = matrix[row, columns[theme_id]]
            current = best.setdefault(i, {}).get(theme_id)
            if current is None or score > current[0]:
                best[i][theme_id] = (score, span)
        return {
            i: {
                t: span
                for t, (sc, span) in d.items()
                if sc >= SENTENCE_SUPPORT * self._threshold(t)
            }
            for i, d in best.items()
        }

    # -- combination

    def _combine(
        self,
        i: int,
        text: str,
        rules: DocRules,
        probs: dict[str, np.ndarray],
        model_evidence: dict[str, tuple[int, int]],
        heads: dict[str, tuple[float, tuple[int, int]]],
    ) -> list[TagResult]:
        results = []
        for theme_id, match in rules.matches.items():
            p = float(probs[theme_id][i]) if theme_id in probs else None
            agrees = p is not None and p >= self._threshold(theme_id)
            h = heads.get(theme_id, (0.0, (0, 0)))[0]
            # Balanced heads are not calibrated: their score only counts once it clears the
            # threshold cross-validation chose for the theme.
            heads_agree = self.heads is not None and h >= self.heads.threshold(theme_id)
            agrees = agrees or heads_agree
            confidence = max(match.confidence, p or 0.0, h if heads_agree else 0.0)
            method = "rules+model" if agrees else "rules"
            results.append(
                self._result(theme_id, confidence, method, _evidence(text, match.evidence))
            )
        done = set(rules.matches)
        for theme_id, span in model_evidence.items():
            p = float(probs[theme_id][i])
            results.append(self._result(theme_id, p, "model", _evidence(text, [span])))
            done.add(theme_id)
        for theme_id, (h, span) in heads.items():
            if theme_id in done or self.heads is None or h < self.heads.threshold(theme_id):
                continue
            results.append(self._result(theme_id, h, "model", _evidence(text, [span])))
        return sorted(results, key=lambda r: (-r.confidence, r.theme_id))

    def _result(self, theme_id: str, confidence: float, method: str, evidence) -> TagResult:
        label = self.taxonomy[theme_id].label
        return TagResult(theme_id, label, round(min(1.0, confidence), 4), method, evidence)


def _merge_method(a: str, b: str) -> str:
    if a == b:
        return a
    return "rules+model"


def document_themes(
    passage_tags: Sequence[Sequence[TagResult]], offsets: Sequence[int] | None = None
) -> list[TagResult]:
    """Roll passage tags up to the document: max confidence, all evidence.

    With `offsets` (each passage's start in the document text) evidence offsets are shifted so
    they point into the document; without, they stay relative to their passages.
    """
    merged: dict[str, TagResult] = {}
    for n, tags in enumerate(passage_tags):
        shift = offsets[n] if offsets is not None else 0
        for tag in tags:
            evidence = [e.shifted(shift) for e in tag.evidence]
            current = merged.get(tag.theme_id)
            if current is None:
                merged[tag.theme_id] = TagResult(
                    tag.theme_id, tag.label, tag.confidence, tag.method, evidence
                )
                continue
            current.confidence = max(current.confidence, tag.confidence)
            current.method = _merge_method(current.method, tag.method)
            current.evidence.extend(evidence)
    return sorted(merged.values(), key=lambda r: (-r.confidence, r.theme_id))
