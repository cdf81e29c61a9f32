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

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from kb.config import Settings, get_settings
from kb.db import session_scope
from kb.models import Passage, Review, TagStatus, ThemeTag, ThemeTagPublic, utcnow
from kb.services.access import Principal
from kb.services.errors import Conflict
from kb.services.reviews import NotFound, get_review
from nlp.classifier import (
    LabelledExample,
    ModelFormatError,
    ThemeClassifier,
    bundled_sentence_embedder,
    examples_hash,
    load_training_passages,
    read_header,
    train_from_examples,
)
from nlp.tagger import Tagger, TagResult
from nlp.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)

MODEL_FILE = "themes.model"


@lru_cache(maxsize=4)
def _cached_tagger(taxonomy_files: tuple[Path, ...], model_path: Path, stamp: float) -> Tagger:
    taxonomy = load_taxonomy(list(taxonomy_files))
    return Tagger(taxonomy, model=_load_model(model_path))


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
    return _cached_tagger(tuple(settings.taxonomy_files), model_path, stamp)


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
            if tag is None:
                tag = ThemeTag(
                    passage_id=passage.id, review_id=passage.review_id, theme_id=theme_id
                )  # type: ignore[arg-type]
                session.add(tag)
            tag.method, tag.confidence = result.method, round(float(result.confidence), 4)
            tag.evidence = evidence_dicts(result, passage)
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
    if tag is None:
        raise NotFound(f"tag {tag_id} not found")
    get_review(session, principal=principal, review_id=tag.review_id)  # access check
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
    return ThemeTagPublic.model_validate(tag)


def review_tags(session: Session, *, principal: Principal, review_id: int) -> list[ThemeTagPublic]:
    """All tags on a review's passages (suggested, confirmed and rejected)."""
    get_review(session, principal=principal, review_id=review_id)
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
