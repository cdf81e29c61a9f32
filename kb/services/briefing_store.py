"""Saved briefings: create, read, list, edit under optimistic locking, delete; and the
validation an edited briefing must pass (seven sections, items with text and valid citations).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from kb.models import (
    Briefing,
    BriefingPublic,
    Passage,
    utcnow,
)
from kb.services.access import Principal
from kb.services.briefing_access import (
    all_visible,
    any_unpublished,
    audit_use,
    may_see,
    review_labels,
    source_ids,
    visible_ids,
)
from kb.services.briefing_model import (
    MAX_HEADING_CHARS,
    MAX_ITEM_CHARS,
    SECTION_COUNT,
    BriefingDraft,
    InvalidBriefing,
    new_item,
)
from kb.services.briefing_rules import check_may_change
from kb.services.errors import Conflict
from kb.services.reviews import NotFound

if TYPE_CHECKING:
    pass


# --------------------------------------------------------------------------- saved drafts


def save_briefing(
    session: Session, *, principal: Principal, draft: BriefingDraft
) -> BriefingPublic:
    """Store a draft for editing. The saver must be able to see everything it draws on."""
    sections = draft.sections_json()
    validate_sections(sections)
    sources = source_ids(draft.review_id, sections)
    restricted = draft.restricted or any_unpublished(session, sources)
    if (restricted and not principal.sees_restricted) or not all_visible(
        session, principal, sources
    ):
        raise NotFound("the briefing draws on reviews not available to you")
    row = Briefing(
        title=_valid_title(draft.title),
        theme_id=draft.theme_id,
        review_id=draft.review_id,
        sections=sections,
        restricted=restricted,
        created_by=principal.username,
    )
    session.add(row)
    session.flush()
    audit_use(session, principal, "briefing.create", str(row.id), sources if restricted else set())
    return BriefingPublic.model_validate(row)


def get_briefing(session: Session, *, principal: Principal, briefing_id: int) -> BriefingPublic:
    """One saved briefing; hidden ones are simply not found."""
    return BriefingPublic.model_validate(_load(session, principal, briefing_id))


def list_briefings(
    session: Session,
    *,
    principal: Principal,
    theme_id: str | None = None,
    review_id: int | None = None,
) -> list[BriefingPublic]:
    """Saved briefings the principal may see, most recently updated first."""
    query = select(Briefing)
    if theme_id is not None:
        query = query.where(Briefing.theme_id == theme_id)
    if review_id is not None:
        query = query.where(Briefing.review_id == review_id)
    if not principal.sees_restricted:
        query = query.where(col(Briefing.restricted).is_(False))
    rows = session.exec(query.order_by(col(Briefing.updated_at).desc(), col(Briefing.id))).all()
    sources = {b.id: source_ids(b.review_id, b.sections) for b in rows}
    visible = visible_ids(session, principal, set().union(*sources.values()))
    return [BriefingPublic.model_validate(b) for b in rows if sources[b.id] <= visible]


def update_briefing(
    session: Session,
    *,
    principal: Principal,
    briefing_id: int,
    title: str | None = None,
    sections: list[dict[str, Any]] | None = None,
    expected_version: int,
) -> BriefingPublic:
    """Edit a saved briefing's title and sections under optimistic locking.

    The version check and the write are one conditional UPDATE, so two editors saving at the
    same moment cannot both win. Edited items may cite only reviews the editor can see; citing
    an unpublished one makes the briefing restricted, and a restricted briefing stays restricted.
    """
    row = _load(session, principal, briefing_id)
    check_may_change(principal, row.created_by, "edit")
    values: dict[str, Any] = {"updated_at": utcnow(), "version_id": Briefing.version_id + 1}
    if title is not None:
        values["title"] = _valid_title(title)
    if sections is not None:
        clean = _edited_sections(session, principal, row, sections)
        values["sections"] = clean
        sources = source_ids(row.review_id, clean)
        values["restricted"] = row.restricted or any_unpublished(session, sources)
        if values["restricted"] and not principal.sees_restricted:
            raise NotFound("the briefing draws on reviews not available to you")
    result = session.execute(
        update(Briefing)
        .where(col(Briefing.id) == briefing_id)
        .where(col(Briefing.version_id) == expected_version)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"briefing {briefing_id} was changed by someone else (version {row.version_id}, "
            f"you had {expected_version}); reload and try again"
        )
    session.flush()
    session.refresh(row)
    audit_use(session, principal, "briefing.update", str(row.id), set())
    return BriefingPublic.model_validate(row)


def delete_briefing(
    session: Session, *, principal: Principal, briefing_id: int, expected_version: int
) -> None:
    """Delete a saved briefing the principal may see, under the same optimistic lock as edits,
    so nobody deletes changes they have not seen. Only its author or an admin may delete it."""
    row = _load(session, principal, briefing_id)
    check_may_change(principal, row.created_by, "delete")
    result = session.execute(
        delete(Briefing)
        .where(col(Briefing.id) == briefing_id)
        .where(col(Briefing.version_id) == expected_version)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"briefing {briefing_id} was changed by someone else since version "
            f"{expected_version}; reload and try again"
        )
    session.flush()
    audit_use(session, principal, "briefing.delete", str(briefing_id), set())


def _load(session: Session, principal: Principal, briefing_id: int) -> Briefing:
    row = session.get(Briefing, briefing_id)
    if row is None or not may_see(session, principal, row):
        raise NotFound(f"briefing {briefing_id} not found")
    return row


def _valid_title(title: str) -> str:
    title = " ".join(str(title).split())
    if not title or len(title) > 300:
        raise InvalidBriefing("a briefing title needs 1 to 300 characters")
    return title


def _edited_sections(
    session: Session, principal: Principal, row: Briefing, sections: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Validate an edit and carry the sources over: what a section drew on stays recorded even
    when the editor deletes the item that showed it (e.g. a recurrence figure)."""
    validate_sections(sections)
    old_sources = {s["number"]: s.get("sources", []) for s in row.sections}
    cited = {i["review_id"] for s in sections for i in s["items"] if i["review_id"] is not None}
    if not all_visible(session, principal, cited):
        raise NotFound("an item cites a review not available to you")
    _check_passages(session, sections)
    labels = review_labels(session, cited, {})
    clean = []
    for section in sections:
        sources = {int(s["review_id"]): s["label"] for s in old_sources.get(section["number"], [])}
        for item in section["items"]:
            if item["review_id"] is not None:
                sources.setdefault(item["review_id"], labels[item["review_id"]])
        clean.append(
            {
                "number": section["number"],
                "heading": section["heading"].strip(),
                "items": [
                    new_item(
                        " ".join(i["text"].split()),
                        i["review_id"],
                        i["passage_id"],
                        _role(i),
                    )
                    for i in section["items"]
                ],
                "sources": [{"review_id": k, "label": v} for k, v in sorted(sources.items())],
            }
        )
    return clean


def validate_sections(sections: Any) -> None:
    if not isinstance(sections, list) or len(sections) != SECTION_COUNT:
        raise InvalidBriefing(f"a briefing has exactly {SECTION_COUNT} sections")
    for number, section in enumerate(sections, start=1):
        if not isinstance(section, Mapping) or section.get("number") != number:
            raise InvalidBriefing(f"section {number} is missing or out of order")
        heading = section.get("heading")
        if not isinstance(heading, str) or not heading.strip() or len(heading) > MAX_HEADING_CHARS:
            raise InvalidBriefing(f"section {number} needs a heading of 1 to 200 characters")
        items = section.get("items")
        if not isinstance(items, list):
            raise InvalidBriefing(f"section {number} needs a list of items")
        for item in items:
            _validate_item(number, item)


def _validate_item(number: int, item: Any) -> None:
    if not isinstance(item, Mapping):
        raise InvalidBriefing(f"section {number}: an item must be an object")
    text = item.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_ITEM_CHARS:
        raise InvalidBriefing(f"section {number}: item text needs 1 to {MAX_ITEM_CHARS} characters")
    for key in ("review_id", "passage_id"):
        value = item.get(key)
        if key not in item or not (
            value is None or (isinstance(value, int) and not isinstance(value, bool))
        ):
            raise InvalidBriefing(f"section {number}: item {key} must be an integer or null")
    if item["passage_id"] is not None and item["review_id"] is None:
        raise InvalidBriefing(f"section {number}: a cited passage needs its review id")


def _check_passages(session: Session, sections: list[dict[str, Any]]) -> None:
    """A cited passage must exist and belong to the review cited with it."""
    pairs = {
        (i["passage_id"], i["review_id"]) for s in sections for i in s["items"] if i["passage_id"]
    }
    if not pairs:
        return
    owners = dict(
        session.exec(
            select(Passage.id, Passage.review_id).where(col(Passage.id).in_([p for p, _ in pairs]))
        ).all()
    )
    for passage_id, review_id in pairs:
        if owners.get(passage_id) != review_id:
            raise InvalidBriefing(f"passage {passage_id} is not part of review {review_id}")


def _role(item: Mapping[str, Any]) -> str | None:
    """An edited item keeps the role of the passage it cites (a short string, else none)."""
    role = item.get("role")
    if item.get("passage_id") is None or not isinstance(role, str) or len(role) > 40:
        return None
    return role
