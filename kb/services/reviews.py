"""Reading reviews back: the lists and detail views the CLI, API and web pages share.

Also the small result cache the busy read paths (search allow-sets, the dashboard, signals)
share: results are keyed by *who may see what* and by a cheap fingerprint of the tables they
read, so a change anywhere (an ingest, a tag decision, a tracker edit, by this process or by
``kb`` in another) makes the next request recompute, and one role's results never serve
another's.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from kb.models import (
    Action,
    ActionCourseLink,
    ActionRecommendationLink,
    ActionThemeLink,
    CourseThemeLink,
    Partnership,
    Passage,
    Recommendation,
    Review,
    ReviewPublic,
    TagStatus,
    ThemeTag,
    TrainingCourse,
)
from kb.services.access import Principal, can_see, visible_reviews

T = TypeVar("T")


class NotFound(LookupError):
    """The object does not exist *for this principal* (hidden reviews are not found)."""


def list_reviews(
    session: Session, *, principal: Principal, offset: int = 0, limit: int | None = None
) -> list[ReviewPublic]:
    """Reviews the principal may see, oldest first, with passage counts."""
    counts = (
        select(Passage.review_id, func.count(col(Passage.id)).label("n"))
        .group_by(col(Passage.review_id))
        .subquery()
    )
    query = (
        select(Review, Partnership.name, counts.c.n)
        .join(Partnership, col(Review.partnership_id) == Partnership.id, isouter=True)
        .join(counts, counts.c.review_id == Review.id, isouter=True)
        .where(visible_reviews(principal))
        .order_by(col(Review.id))
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        _public(review, partnership, n or 0) for review, partnership, n in session.exec(query).all()
    ]


def get_review(session: Session, *, principal: Principal, review_id: int) -> Review:
    """The review, or NotFound when it does not exist or the principal may not see it."""
    review = session.get(Review, review_id)
    if review is None or not can_see(principal, review):
        raise NotFound(f"review {review_id} not found")
    return review


def review_detail(session: Session, *, principal: Principal, review_id: int) -> dict[str, Any]:
    """A review with its sections and passages in reading order."""
    review = get_review(session, principal=principal, review_id=review_id)
    passages = session.exec(
        select(Passage).where(Passage.review_id == review.id).order_by(col(Passage.order))
    ).all()
    partnership = session.get(Partnership, review.partnership_id) if review.partnership_id else None
    public = _public(review, partnership.name if partnership else None, len(passages))
    sections: list[dict[str, Any]] = []
    for passage in passages:
        if not sections or sections[-1]["title"] != passage.section_title:
            sections.append(
                {"title": passage.section_title, "kind": passage.section_kind, "passages": []}
            )
        sections[-1]["passages"].append(
            {"id": passage.id, "text": passage.text, "start": passage.start, "end": passage.end}
        )
    return {**review_summary(public), "sections": sections}


def review_summary(review: ReviewPublic) -> dict[str, Any]:
    """The stable JSON shape of one review in ``kb reviews list --json``."""
    return {
        "id": review.id,
        "type": str(review.type),
        "pseudonym": review.pseudonym,
        "title": review.title,
        "partnership": review.partnership,
        "year": review.year,
        "status": str(review.status),
        "age_band": str(review.age_band) if review.age_band else None,
        "document_id": review.document_id,
        "passages": review.passages,
    }


def _public(review: Review, partnership: str | None, passages: int) -> ReviewPublic:
    return ReviewPublic.model_validate(
        review, update={"partnership": partnership, "passages": passages}
    )


def review_facets(session: Session, *, principal: Principal) -> dict[str, list[Any]]:
    """Partnership names and years of the reviews the principal may see (filter dropdowns).

    Two small DISTINCT queries instead of listing every review with its passage count, cached
    per visibility key and data fingerprint.
    """
    key = ("review_facets", visibility_key(principal), data_fingerprint(session))
    return RESULTS.get_or_compute(session, key, lambda: _review_facets(session, principal))


def _review_facets(session: Session, principal: Principal) -> dict[str, list[Any]]:
    partnerships = session.exec(
        select(Partnership.name)
        .join(Review, col(Review.partnership_id) == Partnership.id)
        .where(visible_reviews(principal))
        .distinct()
    ).all()
    years = session.exec(
        select(Review.year)
        .where(visible_reviews(principal), col(Review.year).is_not(None))
        .distinct()
    ).all()
    return {
        "partnerships": sorted(name for name in partnerships if name),
        "years": sorted(year for year in years if year is not None),
    }


def visibility_key(principal: Principal) -> tuple[str, int | None]:
    """What :func:`kb.services.access.visible_reviews` depends on: role and partnership."""
    return (str(principal.role), principal.partnership_id)


# (table, columns aggregated). count + max(id) see inserts and deletes; sum(id) sees a delete
# replaced by an insert; sum(version_id) sees in-place edits (every edit bumps it). Tag
# decisions are seen through the sum of tag ids per status instead: the tags' version_id is
# not indexed, and summing it reads every tag row with its evidence (most of the cost).
_FINGERPRINTED: list[tuple[Any, list[Any]]] = [
    (Review, [Review.id, Review.version_id, Review.partnership_id]),
    (Passage, [Passage.id]),
    (ThemeTag, [ThemeTag.id]),
    (Partnership, [Partnership.id]),
    (Recommendation, [Recommendation.id]),
    (Action, [Action.id, Action.version_id]),
    (TrainingCourse, [TrainingCourse.id]),
]
_LINKS = [ActionRecommendationLink, ActionThemeLink, ActionCourseLink, CourseThemeLink]


def review_statuses(
    session: Session, *, principal: Principal, review_ids: list[int]
) -> dict[int, str]:
    """Review id → status for many reviews in one query; NotFound if any is hidden or gone."""
    rows = session.exec(
        select(Review.id, Review.status).where(
            col(Review.id).in_(review_ids), visible_reviews(principal)
        )
    ).all()
    found = {int(rid): str(status) for rid, status in rows if rid is not None}
    missing = [rid for rid in review_ids if rid not in found]
    if missing:
        raise NotFound(f"review {missing[0]} not found")
    return found


_WRITES = [0]  # statements other than SELECT run by this process, through any engine


@event.listens_for(Engine, "before_cursor_execute")
def _count_writes(
    conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool
) -> None:
    if not statement.lstrip()[:6].upper().startswith(("SELECT", "PRAGMA", "WITH")):
        _WRITES[0] += 1


def data_fingerprint(session: Session) -> tuple[int, ...]:
    """One cheap query over what cached results are computed from; any change changes it.

    Counts, max / sum of ids and sums of optimistic-lock counters per table, plus the row count
    of the tracker's link tables, as scalar subqueries of a single SELECT (built once). A page
    asking twice in one session gets the first answer unless this process wrote anything in
    between (another process's commit in between is seen by the next request).
    """
    memo = session.info.get("kb.data_fingerprint")
    if memo is not None and memo[0] == _WRITES[0]:
        return memo[1]  # type: ignore[no-any-return]
    writes = _WRITES[0]
    row = session.connection().execute(_fingerprint_query()).one()
    fingerprint = tuple(int(value or 0) for value in row)
    session.info["kb.data_fingerprint"] = (writes, fingerprint)
    return fingerprint


@lru_cache(maxsize=1)
def _fingerprint_query() -> Any:
    parts: list[Any] = []
    for table, columns in _FINGERPRINTED:
        parts.append(select(func.count()).select_from(table).scalar_subquery())
        for column in columns:
            parts.append(select(func.coalesce(func.sum(column), 0)).scalar_subquery())
        parts.append(select(func.coalesce(func.max(col(columns[0])), 0)).scalar_subquery())
    for status in TagStatus:
        parts.append(
            select(func.coalesce(func.sum(ThemeTag.id), 0))
            .where(col(ThemeTag.status) == status)
            .scalar_subquery()
        )
    for link in _LINKS:
        parts.append(select(func.count()).select_from(link).scalar_subquery())
    return select(*parts)


class ResultCache:
    """A small thread-safe LRU of computed results, per database.

    Callers put everything the result depends on into ``key``: the visibility key (never
    share across roles or partnerships), the filters, and :func:`data_fingerprint`. Values are
    kept pickled and each caller gets its own copy (unpickling is ~10x cheaper than
    ``deepcopy``), so a caller changing its result cannot change the cache; ``copy_out=False``
    shares the value itself, for values that cannot be changed (read-only arrays).
    """

    def __init__(self, size: int = 128) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def get_or_compute(
        self, session: Session, key: Hashable, compute: Callable[[], T], *, copy_out: bool = True
    ) -> T:
        """The cached value for ``key`` on this session's database, else ``compute()``."""
        bind = session.get_bind()
        full = (bind.url.render_as_string(hide_password=False), key)  # type: ignore[union-attr]
        with self._lock:
            stored = self._items.get(full)
            if stored is not None:
                self._items.move_to_end(full)
        if stored is not None:
            return pickle.loads(stored) if copy_out else stored  # type: ignore[no-any-return]
        value = compute()
        stored = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL) if copy_out else value
        with self._lock:
            self._items[full] = stored
            self._items.move_to_end(full)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


RESULTS = ResultCache()
