"""Ingest's analysis: one file read into everything its write will store, with no write at all.

Why: the write transaction of a document holds SQLite's only write lock (and, on PostgreSQL,
row locks other editors wait for). Everything slow — segmenting, metadata, case summaries,
roles, theme tags, vectors, findings — is computed here first, with at most read-only sessions
(the current role model, the version this file replaces), and handed to the short write in
kb/services/ingest_write.py as an :class:`AnalysedDocument` plus its :class:`Settled` rows.

Two steps because vectors arrive late: :func:`analyse_document` reads, segments, classifies
roles and starts the passage hook (tags now, embeddings on a background thread, so ``kb
ingest`` reads the next file meanwhile); :func:`settle` then combines the models' results with
people's earlier decisions on the replaced version (roles and tag decisions, carried by
passage text) and groups findings and recommendations — pure, and cheap enough to run again
inside the write in the rare case that the replaced version changed in between.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from corpus.cases import CaseSummary, find_case_summaries
from corpus.document import ExtractedDocument
from corpus.kinds import Period
from corpus.metadata import ReviewMeta, apply_overrides, infer_metadata
from corpus.passage_layout import LayoutIndex
from corpus.segment import Section, segment
from kb.config import get_settings
from kb.models import Document, Partnership, Passage, Review, ReviewType, TagStatus, ThemeTag
from kb.services.access import Principal, can_edit
from kb.services.analysis import PassageResults, run_lowered
from kb.services.embedding import to_bytes
from kb.services.findings import LearningDraft, drafts_of
from kb.services.roles import PERSON, current_model, person_roles
from kb.services.tagging import evidence_dicts
from nlp.learning_items import learning_items
from nlp.roles import RoleModel, classify_roles

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PassageDraft:
    """A passage as it will be stored; ``review`` indexes the document's reviews (0: its own,
    then one per case summary), ``order`` is its place in the document."""

    review: int
    section_title: str
    section_kind: str
    kind: str
    text: str
    order: int
    start: int
    end: int
    role: str = "other"
    role_source: str = "model"
    role_confidence: float = 0.0


@dataclass(slots=True)
class Previous:
    """What people decided on the version a file replaces, as far as the new version keeps it:
    roles and tag decisions by passage text, each old review's kind and where it came from."""

    document_id: int | None = None
    person_roles: dict[str, str] = field(default_factory=dict)
    decisions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    kinds: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(slots=True)
class AnalysedDocument:
    """One file analysed: what its write needs, computed before the write began."""

    extracted: ExtractedDocument
    #: True when these bytes were already stored at analysis time (nothing else computed).
    stored: bool = False
    meta: ReviewMeta | None = None  # type: ignore[assignment]
    sections: list[Section] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    passages: list[PassageDraft] = field(default_factory=list)
    previous: Previous = field(default_factory=Previous)
    role_model: RoleModel | None = None
    role_kind: str = ""
    #: The passage hook's preparation (kb/services/analysis.py), None without one.
    preparation: Any = None


@dataclass(slots=True)
class Settled:
    """The rows of an analysed document, ready for executemany (passage ids aside)."""

    passages: list[PassageDraft]
    vectors: list[bytes | None]
    embedding_model: str | None
    tagged_with: str | None
    #: (passage order, tag row) for suggestions and carried decisions.
    tags: list[tuple[int, dict[str, Any]]]
    #: Per review: its findings and recommendations, ``passage_id`` holding a passage order.
    learning: list[tuple[list[LearningDraft], list[LearningDraft]]]
    results: PassageResults | None = None


def analyse_document(
    engine: Engine,
    doc: ExtractedDocument,
    *,
    overrides: dict[str, Any],
    type_source: str,
    principal: Principal,
    hook: Any = None,
    force: bool = False,
) -> AnalysedDocument:
    """Everything slow about ``doc``, with read-only sessions only (``force``: analyse even
    if its bytes look stored already)."""
    if not force:
        with Session(engine) as session:
            if session.exec(select(Document.id).where(Document.sha256 == doc.sha256)).first():
                return AnalysedDocument(doc, stored=True)
    sections = segment(doc)
    meta = apply_overrides(infer_metadata(doc.text, doc.path.name), overrides)
    for warning in meta.warnings:
        log.warning("%s", warning)
    cases = (
        find_case_summaries(doc, sections) if meta.review_type == ReviewType.ANNUAL_REPORT else []
    )
    reviews = review_fields(meta, cases, doc)
    reviews[0]["type_source"] = type_source
    passages = passage_drafts(sections, cases)
    with Session(engine) as session:  # reads only: nothing here takes a write lock
        previous = _read_previous_for(session, doc.path.name, meta.partnership, principal)
        model = current_model(session)
    preparation = None
    begin = getattr(hook, "begin", None)
    if begin is not None and passages:
        texts = [p.text for p in passages]
        preparation = begin(texts, engine=engine, source_name=doc.path.name)
    analysed = AnalysedDocument(
        doc, meta=meta, sections=sections, reviews=reviews, passages=passages,
        previous=previous, role_model=model, preparation=preparation,
    )  # fmt: skip
    _classify(analysed, role_kind(reviews[0], previous))
    return analysed


def _classify(analysed: AnalysedDocument, kind: str) -> None:
    """The role classifier's decision on every passage (at KB_INGEST_NICE)."""
    analysed.role_kind = kind
    doc, passages = analysed.extracted, analysed.passages
    if not passages:
        return

    def classify() -> list[Any]:
        layout = LayoutIndex(len(doc.text), analysed.sections, kind)
        inputs = [layout.role_input(p.text, p.start, p.kind) for p in passages]
        return classify_roles(inputs, analysed.role_model)

    decisions = run_lowered(classify, get_settings().ingest_nice)
    for passage, decision in zip(passages, decisions, strict=True):
        passage.role = decision.role
        passage.role_source = decision.source
        passage.role_confidence = decision.confidence


def role_kind(own: dict[str, Any], previous: Previous) -> str:
    """The document kind roles are classified with: its own review's, or the kind a person
    gave the review this one replaces (kept by the write when this one is only inferred)."""
    kept = previous.kinds.get(own["pseudonym"])
    if kept is not None and kept[1] == PERSON and own["type_source"] == "inferred":
        return kept[0]
    return own["type"].value


def settle(
    analysed: AnalysedDocument, results: PassageResults | None, previous: Previous
) -> Settled:
    """The stored rows: models' results plus people's earlier decisions, findings grouped."""
    if previous != analysed.previous and role_kind(analysed.reviews[0], previous) != (
        analysed.role_kind
    ):
        _classify(analysed, role_kind(analysed.reviews[0], previous))
    analysed.previous = previous
    carried = previous.person_roles
    passages = [
        replace(p, role=carried[p.text], role_source=PERSON, role_confidence=1.0)
        if p.text in carried
        else p
        for p in analysed.passages
    ]
    tags = _tag_rows(passages, results)
    _carry_decisions(passages, tags, previous.decisions)
    themes: dict[int, set[str]] = {}
    for (order, theme_id), row in tags.items():
        if row["status"] != TagStatus.REJECTED:
            themes.setdefault(order, set()).add(theme_id)
    sorted_themes = {order: sorted(ids) for order, ids in themes.items()}
    learning = []
    for index in range(len(analysed.reviews)):
        findings, recs = learning_items([p for p in passages if p.review == index])
        learning.append(
            (
                drafts_of(findings, _order, sorted_themes),
                drafts_of(recs, _order, sorted_themes),
            )
        )
    vectors: list[bytes | None] = [None] * len(passages)
    if results is not None and results.embedding_model is not None:
        vectors = [to_bytes(results.vectors[p.text]) for p in passages]
    return Settled(
        passages=passages,
        vectors=vectors,
        embedding_model=results.embedding_model if results else None,
        tagged_with=results.tagged_with if results else None,
        tags=[(order, row) for (order, _), row in tags.items()],
        learning=learning,
        results=results,
    )


def _order(passage: PassageDraft) -> int:
    return passage.order


def _tag_rows(
    passages: list[PassageDraft], results: PassageResults | None
) -> dict[tuple[int, str], dict[str, Any]]:
    """Suggested tags (those with evidence) of each passage, keyed by (order, theme)."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    if results is None:
        return rows
    for passage in passages:
        for result in results.tags.get(passage.text, []):
            if not result.evidence:
                continue
            rows[(passage.order, result.theme_id)] = {
                "theme_id": result.theme_id,
                "method": result.method,
                "confidence": round(float(result.confidence), 4),
                "status": TagStatus.SUGGESTED,
                "evidence": evidence_dicts(result, passage),  # type: ignore[arg-type]
                "decided_by": None,
                "decided_at": None,
            }
    return rows


def _carry_decisions(
    passages: list[PassageDraft],
    rows: dict[tuple[int, str], dict[str, Any]],
    decisions: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Re-apply confirmations and rejections to unchanged passages of a new version."""
    by_text: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for (text, theme_id), old in decisions.items():
        by_text.setdefault(text, []).append((theme_id, old))
    for passage in passages:
        for theme_id, old in by_text.get(passage.text, []):
            row = rows.get((passage.order, theme_id))
            if row is None:
                row = rows[(passage.order, theme_id)] = {
                    "theme_id": theme_id,
                    "method": old["method"],
                    "confidence": old["confidence"],
                    "evidence": _shift_evidence(old["evidence"], passage),
                }
            row.update(
                status=old["status"], decided_by=old["decided_by"], decided_at=old["decided_at"]
            )


def _shift_evidence(evidence: list[dict[str, Any]], passage: PassageDraft) -> list[dict[str, Any]]:
    """Old evidence re-based onto the passage's new position in the new version's text."""
    out = []
    for item in evidence or []:
        rel_start = item.get("passage_start", 0)
        rel_end = item.get("passage_end", len(passage.text))
        out.append({**item, "start": passage.start + rel_start, "end": passage.start + rel_end})
    return out


def previous_version(
    session: Session, name: str, partnership_id: int | None, principal: Principal
) -> Document | None:
    """The current document this file is a new version of, or None for a new document.

    Same name, same partnership (of the document's own review), and an uploader who may edit
    that review: anything else is someone else's document that merely shares a name.
    """
    candidates = session.exec(
        select(Document, Review)
        .join(Review, col(Review.document_id) == Document.id)
        .where(
            Document.source_name == name,
            col(Document.is_current),
            col(Review.parent_review_id).is_(None),
        )
        .order_by(col(Document.id), col(Review.id))
    ).all()
    for document, review in candidates:
        if review.partnership_id == partnership_id and can_edit(principal, review):
            return document
    return None


def _read_previous_for(
    session: Session, name: str, partnership: str | None, principal: Principal
) -> Previous:
    """:func:`read_previous` of the version this file would replace, read before the write."""
    partnership_id = None
    if partnership:
        partnership_id = session.exec(
            select(Partnership.id).where(Partnership.name == partnership)
        ).first()
        if partnership_id is None:  # a partnership the write will create has no documents
            return Previous()
    found = previous_version(session, name, partnership_id, principal)
    return read_previous(session, found) if found is not None else Previous()


def read_previous(session: Session, previous: Document) -> Previous:
    """People's decisions on ``previous`` that its next version carries (three small reads)."""
    decided = session.exec(
        select(
            Passage.text,
            ThemeTag.theme_id,
            ThemeTag.status,
            ThemeTag.decided_by,
            ThemeTag.decided_at,
            ThemeTag.method,
            ThemeTag.confidence,
            ThemeTag.evidence,
        )
        .join(Passage, col(Passage.id) == ThemeTag.passage_id)
        .where(Passage.document_id == previous.id, ThemeTag.status != TagStatus.SUGGESTED)
        .order_by(col(ThemeTag.id))
    ).all()
    names = ("status", "decided_by", "decided_at", "method", "confidence", "evidence")
    kinds = session.exec(
        select(Review.pseudonym, Review.type, Review.type_source).where(
            Review.document_id == previous.id
        )
    ).all()
    return Previous(
        document_id=previous.id,
        person_roles=person_roles(session, previous.id),  # type: ignore[arg-type]
        decisions={(row[0], row[1]): dict(zip(names, row[2:], strict=True)) for row in decided},
        kinds={name: (ReviewType(kind).value, source) for name, kind, source in kinds},
    )


def review_fields(
    meta: ReviewMeta, cases: list[CaseSummary], doc: ExtractedDocument
) -> list[dict[str, Any]]:
    """The document's own review, then one per case summary it delimits (field values)."""
    own = _review_from_meta(meta, doc)
    reviews = [own]
    period = Period.parse(meta.period)
    for case in cases:
        # The summary's own facts, not the report's: "a 7-week-old ... admitted in June 2021".
        case_meta = infer_metadata(doc.text[case.start : case.end], "")
        # No date of its own: the report's period says when ("2020-21" -> 2020), flagged.
        own_year = _year(case_meta)
        reviews.append(
            {
                **own,
                "type": case.review_type,
                "pseudonym": case.pseudonym,
                "title": case.title,
                "age_band": case_meta.age_band,
                "incident_date": case_meta.incident_date,
                "review_date": None,
                "publication_date": None,
                "year": own_year or (period.case_year if period else own["year"]),
                "year_inferred": own_year is None and period is not None,
                "start": case.start,
                "end": case.end,
            }
        )
    return reviews


def _year(meta: ReviewMeta) -> int | None:
    for value in (meta.incident_date, meta.review_date, meta.publication_date):
        if value is not None:
            return value.year
    return None


def _review_from_meta(meta: ReviewMeta, doc: ExtractedDocument) -> dict[str, Any]:
    return {
        "type": meta.review_type,
        "pseudonym": meta.pseudonym or (meta.title or Path(doc.path.name).stem)[:120],
        "title": meta.title or doc.title,
        "incident_date": meta.incident_date,
        "review_date": meta.review_date,
        "publication_date": meta.publication_date,
        "age_band": meta.age_band,
        "status": meta.status,
        "year": _year(meta),
        "year_inferred": False,
        "period": meta.period,
        "type_source": "inferred",
        "start": 0,
        "end": len(doc.text),
    }


def passage_drafts(sections: list[Section], cases: list[CaseSummary]) -> list[PassageDraft]:
    """Passages in reading order, each owned by the case summary that contains it, if any."""
    drafts: list[PassageDraft] = []
    for section in sections:
        for span in section.passages:
            owner = next(
                (i for i, c in enumerate(cases, start=1) if c.start <= span.start < c.end), 0
            )
            drafts.append(
                PassageDraft(
                    review=owner,
                    section_title=section.title[:500],
                    section_kind=section.kind,
                    kind=span.kind,
                    text=span.text,
                    order=len(drafts),
                    start=span.start,
                    end=span.end,
                )
            )
    return drafts
