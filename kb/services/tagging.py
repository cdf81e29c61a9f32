"""Theme tags in the database: suggest, confirm, reject, re-tag, retrain.

The tagger in nlp/ is pure; this module decides what tagging means for stored data. Human
decisions win: a confirmed tag is never overwritten by a re-run, a rejected one is never
suggested again, and both feed the learned model as labels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from corpus.readers import read_document
from corpus.segment import segment
from kb.config import Settings, get_settings
from kb.db import session_scope
from kb.models import Passage, Review, Role, TagStatus, ThemeTag, ThemeTagPublic, utcnow
from kb.services import audit
from kb.services.access import Principal, can_edit, can_see, visibility_key, visible_reviews
from kb.services.cache import RESULTS, data_fingerprint
from kb.services.errors import Conflict, Forbidden
from kb.services.reviews import NotFound, get_review
from nlp.classifier import ThemeClassifier, train_from_examples
from nlp.embeddings import ModelNotFoundError, bundled_sentence_embedder, get_embedder
from nlp.evaluate import decision_impact, load_document_gold, load_gold, prepare_documents
from nlp.head_training import Unit, VectorCache, labelled_units, train_heads
from nlp.heads import BUNDLED_HEADS, NEVER, HeadsFormatError, ThemeHeads
from nlp.model_file import ModelFormatError, read_header
from nlp.tagger import Tagger, TagResult
from nlp.taxonomy import Taxonomy, load_taxonomy
from nlp.training_data import LabelledExample, examples_hash, load_training_passages

log = logging.getLogger(__name__)

MODEL_FILE = "themes.model"
HEADS_FILE = "theme_heads.npz"


@lru_cache(maxsize=4)
def _cached_tagger(
    taxonomy_files: tuple[Path, ...], model_path: Path, stamp: float, heads_path: Path | None
) -> Tagger:
    taxonomy = load_taxonomy(list(taxonomy_files))
    heads = _load_heads(heads_path) if heads_path is not None else None
    embed = get_embedder(get_settings().embedding_model).encode if heads else None
    return Tagger(taxonomy, model=_load_model(model_path), heads=heads, embed=embed)


def heads_path(settings: Settings) -> Path | None:
    """The theme heads in use: trained here (`kb train --gold`) or the shipped ones."""
    if not settings.theme_heads:
        return None
    local = settings.model_dir / HEADS_FILE
    if local.exists():
        return local
    return BUNDLED_HEADS if BUNDLED_HEADS.exists() else None


def _load_heads(path: Path) -> ThemeHeads | None:
    """Heads that may add tags, or None: heads whose thresholds are all NEVER would only
    change confidences, and are not worth loading the embedding model for on every tag run."""
    try:
        heads = ThemeHeads.load(path)
    except HeadsFormatError as exc:
        log.warning("ignoring theme heads %s (%s); tagging without them", path, exc)
        return None
    if not any(t < NEVER for t in heads.thresholds):
        return None
    try:
        model_id = get_embedder(get_settings().embedding_model).model_id
    except ModelNotFoundError as exc:
        log.warning("theme heads need the embedding model (%s); tagging without them", exc)
        return None
    if heads.embedder_id and heads.embedder_id != model_id:
        log.warning("theme heads were trained on %s, not %s; not used", heads.embedder_id, model_id)
        return None
    return heads


def _load_model(path: Path) -> ThemeClassifier | None:
    """The saved model, or None (rules only) when there is none or it cannot be used.

    An unusable model file must not stop ingest: tagging falls back to the rules, which carry
    the evidence anyway, and the log says why so `kb themes train --force` can be run.
    """
    if not path.exists():
        return None
    try:
        embed = bundled_sentence_embedder() if read_header(path).get("uses_embeddings") else None
        return ThemeClassifier.load(path, embed=embed)
    except (OSError, ModelFormatError, EOFError, ValueError) as exc:
        log.warning("ignoring theme model %s (%s); tagging with rules only", path, exc)
        return None


def get_tagger(settings: Settings | None = None) -> Tagger:
    """The tagger for the current taxonomy and trained model (reloaded when either changes)."""
    settings = settings or get_settings()
    model_path = settings.model_dir / MODEL_FILE
    stamp = model_path.stat().st_mtime if model_path.exists() else 0.0
    heads = heads_path(settings)
    if heads is not None:
        stamp += heads.stat().st_mtime
    return _cached_tagger(tuple(settings.taxonomy_files), model_path, stamp, heads)


@lru_cache(maxsize=4)
def _cached_taxonomy(taxonomy_files: tuple[Path, ...]) -> Taxonomy:
    return load_taxonomy(list(taxonomy_files))


def get_taxonomy(settings: Settings | None = None) -> Taxonomy:
    """The taxonomy alone: pages that only list themes must not load spaCy and the model."""
    settings = settings or get_settings()
    return _cached_taxonomy(tuple(settings.taxonomy_files))


def tagger_fingerprint(tagger: Tagger) -> str:
    """Identifies taxonomy + model, so passages tagged with an older one can be found."""
    return tagger.fingerprint()


def evidence_dicts(result: TagResult, passage: Passage) -> list[dict[str, Any]]:
    """Evidence as stored: document offsets for highlighting, passage offsets for display."""
    return [
        {
            "text": ev.text,
            "start": passage.start + ev.start,
            "end": passage.start + ev.end,
            "passage_start": ev.start,
            "passage_end": ev.end,
        }
        for ev in result.evidence
    ]


def tag_passages(
    session: Session,
    passages: list[Passage],
    tagger: Tagger,
    results: list[list[Any]] | None = None,
) -> int:
    """(Re-)tag ``passages``; suggestions are replaced, human decisions are kept.

    ``results`` are ``tagger.tag_many`` of the passages' texts when the caller computed them
    already, outside its write transaction (ingest does: kb/services/analysis.py).
    """
    if results is None:
        results = tagger.tag_many([p.text for p in passages])
    fingerprint = tagger_fingerprint(tagger)
    ids = [p.id for p in passages]
    existing: dict[tuple[int, str], ThemeTag] = {
        (t.passage_id, t.theme_id): t
        for t in session.exec(select(ThemeTag).where(col(ThemeTag.passage_id).in_(ids))).all()
    }
    suggested = 0
    for passage, tags in zip(passages, results, strict=True):
        fresh = {t.theme_id: t for t in tags if t.evidence}
        for (pid, theme_id), tag in list(existing.items()):
            if pid == passage.id and tag.status == TagStatus.SUGGESTED and theme_id not in fresh:
                session.delete(tag)
        for theme_id, result in fresh.items():
            tag = existing.get((passage.id, theme_id))  # type: ignore[arg-type]
            if tag is not None and tag.status != TagStatus.SUGGESTED:
                continue
            method, confidence = result.method, round(float(result.confidence), 4)
            evidence = evidence_dicts(result, passage)
            if tag is None:
                # Every field given: a default left to pydantic costs an inspect.signature()
                # call per object (list's is parsed from text), 4x the construction time, and
                # ingest builds thousands of these inside its write transaction.
                tag = ThemeTag(
                    passage_id=passage.id,  # type: ignore[arg-type]
                    review_id=passage.review_id,
                    theme_id=theme_id,
                    method=method,
                    confidence=confidence,
                    evidence=evidence,
                )
                session.add(tag)
            else:
                tag.method, tag.confidence, tag.evidence = method, confidence, evidence
            suggested += 1
        passage.tagged_with = fingerprint
        session.add(passage)
    session.flush()
    return suggested


@dataclass(frozen=True, slots=True)
class Decision:
    tag_id: int
    status: TagStatus
    expected_version: int | None = None


def decide_tag(
    session: Session,
    *,
    principal: Principal,
    tag_id: int,
    status: TagStatus,
    expected_version: int | None = None,
) -> ThemeTagPublic:
    """Confirm or reject a tag. ``expected_version`` guards against lost updates.

    The version check and the write are one conditional UPDATE: checking in Python first would
    let two deciders who read the same version both pass the check and both write.
    """
    tag = session.get(ThemeTag, tag_id)
    review = session.get(Review, tag.review_id) if tag is not None else None
    if tag is None or review is None or not can_see(principal, review):
        raise NotFound(f"tag {tag_id} not found")  # a hidden tag answers like a missing one
    if principal.role not in (Role.PANEL, Role.ADMIN):
        raise Forbidden("only panel members and admins may confirm or reject themes")
    if not can_edit(principal, review):
        raise Forbidden("panel members may only decide themes of their own partnership's reviews")
    guard = [col(ThemeTag.id) == tag_id]
    if expected_version is not None:
        guard.append(col(ThemeTag.version_id) == expected_version)
    result = session.execute(
        update(ThemeTag)
        .where(*guard)
        .values(
            status=status,
            decided_by=principal.username,
            decided_at=utcnow(),
            version_id=ThemeTag.version_id + 1,
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(tag)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"tag {tag_id} was changed by {tag.decided_by or 'someone else'} "
            f"(version {tag.version_id}, you had {expected_version}); reload and try again"
        )
    audit.record(
        session,
        principal=principal,
        action=f"tag.{'confirm' if status == TagStatus.CONFIRMED else 'reject'}",
        object_type="theme_tag",
        object_id=tag.id,
        detail={"review": tag.review_id, "theme": tag.theme_id, "version": tag.version_id},
    )
    return ThemeTagPublic.model_validate(tag)


def may_decide(session: Session, *, principal: Principal, review_id: int) -> bool:
    """Whether decision buttons should be offered on a review (the rule of :func:`decide_tag`)."""
    review = session.get(Review, review_id)
    return review is not None and can_see(principal, review) and can_edit(principal, review)


def review_tags(
    session: Session, *, principal: Principal, review_id: int, audit_via: str | None = None
) -> list[ThemeTagPublic]:
    """All tags on a review's passages (suggested, confirmed and rejected). Their evidence
    quotes the review, so with ``audit_via`` reading them is audited like a view."""
    review = get_review(session, principal=principal, review_id=review_id)
    if audit_via:
        summary = {"id": review.id, "status": review.status}
        audit.record_review_view(session, principal=principal, review=summary, via=audit_via)
    tags = session.exec(
        select(ThemeTag).where(ThemeTag.review_id == review_id).order_by(col(ThemeTag.id))
    ).all()
    return [ThemeTagPublic.model_validate(t) for t in tags]


def retag_all(
    engine: Engine,
    *,
    only_stale: bool = False,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Re-run tagging over the corpus (after a taxonomy or model change), in batches."""
    tagger = get_tagger()
    fingerprint = tagger_fingerprint(tagger)
    with session_scope(engine) as session:
        query = select(Passage.id)
        if only_stale:
            query = query.where(col(Passage.tagged_with).is_distinct_from(fingerprint))
        ids = list(session.exec(query.order_by(col(Passage.id))).all())
    done = 0
    for chunk in _chunks(ids, batch_size):
        with session_scope(engine) as session:
            passages = list(session.exec(select(Passage).where(col(Passage.id).in_(chunk))).all())
            tag_passages(session, passages, tagger)
        done += len(chunk)
        if progress:
            progress(done, len(ids))
    return len(ids)


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def decided_examples(session: Session) -> list[LabelledExample]:
    """Human decisions as training labels: confirmed → positive, rejected → negative."""
    rows = session.exec(
        select(Passage.id, Passage.text, ThemeTag.theme_id, ThemeTag.status)
        .join(ThemeTag, col(ThemeTag.passage_id) == Passage.id)
        .where(ThemeTag.status != TagStatus.SUGGESTED)
        .order_by(col(Passage.id))
    ).all()
    labels: dict[int, tuple[str, set[str], set[str]]] = {}
    for pid, text, theme_id, status in rows:
        _, positives, negatives = labels.setdefault(pid, (text, set(), set()))
        (positives if status == TagStatus.CONFIRMED else negatives).add(theme_id)
    return [
        LabelledExample(text=text, positives=frozenset(pos), negatives=frozenset(neg))
        for text, pos, neg in labels.values()
    ]


def passages_of(path: Path) -> list[tuple[int, str]]:
    """A document's passages as (start offset, text), split exactly as ingest splits it."""
    doc = read_document(path)
    return [(p.start, p.text) for section in segment(doc) for p in section.passages]


def train_heads_from_gold(
    engine: Engine, gold: Path, *, passage_gold: Path | None = None
) -> dict[str, Any]:
    """Train the theme heads on document-level gold (+ passage gold, bundled passages and human
    decisions) and save them in the model folder, where they replace the shipped heads.

    Thresholds for model-only tags come from inner cross-validation over the gold documents.
    """
    settings = get_settings()
    tagger = Tagger(load_taxonomy(list(settings.taxonomy_files)))
    theme_ids = [t.id for t in tagger.taxonomy]
    docs = prepare_documents(load_document_gold(gold), passages_of, tagger)
    with session_scope(engine) as session:
        decided = decided_examples(session)
    base = labelled_units([(e.text, e.positives) for e in load_training_passages()], theme_ids)
    if passage_gold is not None:
        base += labelled_units([(i.text, i.themes) for i in load_gold(passage_gold)], theme_ids)
    base += [Unit(e.text, set(e.positives), set(e.negatives)) for e in decided]
    embedder = get_embedder(settings.embedding_model)
    heads = train_heads(
        docs, base, VectorCache(embedder.encode), theme_ids, embedder_id=embedder.model_id
    )
    path = heads.save(settings.model_dir / HEADS_FILE)
    model_only = [t for t, th in zip(heads.theme_ids, heads.thresholds, strict=True) if th < NEVER]
    return {
        "trained": True,
        "documents": len(docs),
        "units": len(base),
        "path": str(path),
        "model_only_themes": model_only,
    }


def decision_report(engine: Engine, *, folds: int = 5) -> dict[str, Any]:
    """Per theme, cross-validated P/R/F1 on people's decisions before and after learning from
    them (see :func:`nlp.evaluate.decision_impact`)."""
    with session_scope(engine) as session:
        decided = decided_examples(session)
    base = load_training_passages()
    theme_ids = sorted({t for e in base for t in e.positives | e.negatives})
    return decision_impact(base, decided, theme_ids, folds=folds)


def train_model(engine: Engine, *, force: bool = False, embed: Any = None) -> dict[str, Any]:
    """Retrain the learned model from the bundled labels plus human decisions.

    Skipped when the labels are unchanged since the saved model (unless ``force``).
    """
    settings = get_settings()
    path = settings.model_dir / MODEL_FILE
    with session_scope(engine) as session:
        examples = load_training_passages() + decided_examples(session)
    digest = examples_hash(examples)
    if not force and _saved_hash(path) == digest:
        return {"trained": False, "reason": "labels unchanged", "examples": len(examples)}
    model = train_from_examples(examples, embed=embed)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return {"trained": True, "examples": len(examples), "path": str(path)}


def _saved_hash(path: Path) -> str | None:
    """Labels hash of the saved model, or None when there is no usable model."""
    try:
        return read_header(path).get("labels_hash")
    except (OSError, ModelFormatError):
        return None


def review_of(session: Session, passage_id: int) -> Review | None:
    passage = session.get(Passage, passage_id)
    return session.get(Review, passage.review_id) if passage else None


# --------------------------------------------------------------------------- learning from people


def uncertainty(confidence: float) -> float:
    """1 for a coin toss (0.5), 0 for a sure call (0 or 1): how much a decision would teach."""
    return 1.0 - abs(2.0 * float(confidence) - 1.0)


def tags_to_check(
    session: Session, *, principal: Principal, limit: int = 50, review_id: int | None = None
) -> list[ThemeTagPublic]:
    """Suggested tags on reviews ``principal`` may see, most informative first.

    Most informative = confidence nearest 0.5 (uncertainty sampling): a person's decision on a
    tag the tagger is unsure of changes the model most, while confirming a 0.99 rule hit
    teaches it almost nothing. Ties go to the older tag. The queue (all reviews) is audited,
    since its evidence quotes unpublished reviews; one review's tags are audited with its page.
    """
    query = (
        select(ThemeTag)
        .join(Review, col(Review.id) == ThemeTag.review_id)
        .where(ThemeTag.status == TagStatus.SUGGESTED, visible_reviews(principal))
    )
    if review_id is not None:
        query = query.where(ThemeTag.review_id == review_id)
    distance = func.abs(col(ThemeTag.confidence) - 0.5)
    rows = session.exec(query.order_by(distance, col(ThemeTag.id)).limit(limit)).all()
    if review_id is None:
        audit.record(
            session,
            principal=principal,
            action="tags.queue",
            object_type="theme_tag",
            object_id=None,
            detail={"count": len(rows)},
        )
    return [ThemeTagPublic.model_validate(t) for t in rows]


def theme_precision(session: Session, *, principal: Principal) -> dict[str, dict[str, Any]]:
    """Per theme: tags confirmed and rejected so far and the precision that measures.

    Only decisions on reviews ``principal`` may see are counted; ``precision`` is None until
    someone has decided at least one of that theme's tags. Cached by data version and who may
    see what: every review page shows it, and counting the decided tags scans every tag row
    (two thirds of a review page's time at 20k passages before it was cached).
    """
    key = ("theme_precision", visibility_key(principal), data_fingerprint(session))
    return RESULTS.get_or_compute(session, key, lambda: _theme_precision(session, principal))


def _theme_precision(session: Session, principal: Principal) -> dict[str, dict[str, Any]]:
    """:func:`theme_precision`, computed."""
    rows = session.exec(
        select(ThemeTag.theme_id, ThemeTag.status, func.count())
        .join(Review, col(Review.id) == ThemeTag.review_id)
        .where(ThemeTag.status != TagStatus.SUGGESTED, visible_reviews(principal))
        .group_by(ThemeTag.theme_id, ThemeTag.status)
    ).all()
    out: dict[str, dict[str, Any]] = {}
    for theme_id, status, count in rows:
        entry = out.setdefault(theme_id, {"confirmed": 0, "rejected": 0, "precision": None})
        entry["confirmed" if status == TagStatus.CONFIRMED else "rejected"] += int(count)
    for entry in out.values():
        decided = entry["confirmed"] + entry["rejected"]
        entry["precision"] = round(entry["confirmed"] / decided, 4) if decided else None
    return out
